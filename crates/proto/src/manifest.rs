//! Manifests in pieces.
//!
//! A thin-slice CT holds thousands of instances; their SOP Instance UIDs (up to 64 characters
//! each) do not fit one control frame ([`MAX_FRAME_LEN`]). So a manifest travels as a header
//! ([`Manifest`]: the study and how many UIDs follow) and [`ManifestPart`] frames of at most
//! [`MANIFEST_PART_UIDS`] UIDs; the answer lists what the relay misses in
//! [`ManifestReply::Missing`] pieces before its final frame. Both directions are assembled
//! here, sans-IO: [`ManifestAssembler`] (the relay) and [`ManifestAnswer`] (the sender).

use bytes::Bytes;

use crate::frame::{encode_frame, MAX_FRAME_LEN};
use crate::message::{Manifest, ManifestPart, ManifestReply, Request};
use crate::{valid_uid, ProtoError};

/// UIDs per [`ManifestPart`] (or [`ManifestReply::Missing`]) frame: 900 UIDs of 64
/// characters encode to ≈ 59 KiB, under [`MAX_FRAME_LEN`].
pub const MANIFEST_PART_UIDS: usize = 900;

// A full part must fit a frame: 1 length byte + 64 characters per UID, plus the vector length.
const _: () = assert!(MANIFEST_PART_UIDS * 65 + 8 < MAX_FRAME_LEN as usize);

/// The frames of a manifest: the header as a [`Request`], then its parts.
pub fn encode_manifest(study_uid: &str, sop_uids: &[String]) -> Vec<Bytes> {
    let mut frames = vec![encode_frame(&Request::Manifest(Manifest {
        study_uid: study_uid.to_string(),
        instances: u32::try_from(sop_uids.len()).unwrap_or(u32::MAX),
    }))];
    for part in sop_uids.chunks(MANIFEST_PART_UIDS) {
        frames.push(encode_frame(&ManifestPart {
            sop_uids: part.to_vec(),
        }));
    }
    frames
}

/// The frames of an answer: `missing` in pieces, then `last` (which must be final).
pub fn encode_manifest_reply(missing: &[String], last: &ManifestReply) -> Vec<Bytes> {
    let mut frames: Vec<Bytes> = missing
        .chunks(MANIFEST_PART_UIDS)
        .map(|part| {
            encode_frame(&ManifestReply::Missing {
                sop_uids: part.to_vec(),
            })
        })
        .collect();
    frames.push(encode_frame(last));
    frames
}

/// Why a manifest cannot be accepted as sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("the manifest lists no instances")]
    Empty,
    #[error("the manifest lists {instances} instances; this relay accepts at most {max} per study (limits.max_manifest_instances)")]
    TooMany { instances: u32, max: u32 },
    #[error("the manifest's Study Instance UID is not a valid DICOM UID")]
    BadStudyUid,
    #[error(
        "the manifest lists an invalid SOP Instance UID (digits and dots, at most 64 characters)"
    )]
    BadSopUid,
    #[error("the manifest's parts carry more UIDs than its header announced ({announced})")]
    TooManyParts { announced: u32 },
    #[error("a manifest part carries more than {MANIFEST_PART_UIDS} UIDs")]
    PartTooLarge,
}

/// Receiving end of a manifest: checks the header, then collects its parts.
#[derive(Debug)]
pub struct ManifestAssembler {
    study_uid: String,
    announced: u32,
    sop_uids: Vec<String>,
}

impl ManifestAssembler {
    /// Start from the header; refuses empty, oversized or invalid manifests before any part.
    pub fn new(header: Manifest, max_instances: u32) -> Result<Self, ManifestError> {
        if !valid_uid(&header.study_uid) {
            return Err(ManifestError::BadStudyUid);
        }
        if header.instances == 0 {
            return Err(ManifestError::Empty);
        }
        if header.instances > max_instances {
            return Err(ManifestError::TooMany {
                instances: header.instances,
                max: max_instances,
            });
        }
        Ok(Self {
            study_uid: header.study_uid,
            announced: header.instances,
            sop_uids: Vec::new(),
        })
    }

    pub fn study_uid(&self) -> &str {
        &self.study_uid
    }

    /// Add one part; `true` once every announced UID arrived.
    pub fn push(&mut self, part: ManifestPart) -> Result<bool, ManifestError> {
        if part.sop_uids.len() > MANIFEST_PART_UIDS {
            return Err(ManifestError::PartTooLarge);
        }
        if self.sop_uids.len() + part.sop_uids.len() > self.announced as usize {
            return Err(ManifestError::TooManyParts {
                announced: self.announced,
            });
        }
        if part.sop_uids.iter().any(|u| !valid_uid(u)) {
            return Err(ManifestError::BadSopUid);
        }
        self.sop_uids.extend(part.sop_uids);
        Ok(self.is_complete())
    }

    pub fn is_complete(&self) -> bool {
        self.sop_uids.len() == self.announced as usize
    }

    /// The study and its UIDs (duplicates removed, first occurrence kept).
    pub fn into_parts(self) -> (String, Vec<String>) {
        let mut seen = std::collections::HashSet::with_capacity(self.sop_uids.len());
        let uids = self
            .sop_uids
            .into_iter()
            .filter(|u| seen.insert(u.clone()))
            .collect();
        (self.study_uid, uids)
    }
}

/// Sending end: collects the relay's answer from its frames.
#[derive(Debug, Default)]
pub struct ManifestAnswer {
    missing: Vec<String>,
}

/// A complete answer to a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestOutcome {
    Complete { instances: u32 },
    Pending { missing: Vec<String> },
    Refused(crate::Refusal),
}

impl ManifestAnswer {
    /// Add one reply frame; `Some` once the final frame arrived.
    pub fn push(&mut self, reply: ManifestReply) -> Result<Option<ManifestOutcome>, ProtoError> {
        Ok(match reply {
            ManifestReply::Missing { sop_uids } => {
                self.missing.extend(sop_uids);
                None
            }
            ManifestReply::Complete { instances } => Some(ManifestOutcome::Complete { instances }),
            ManifestReply::Pending { missing } => {
                if missing as usize != self.missing.len() {
                    return Err(ProtoError::Unexpected {
                        what: "a pending count that differs from the missing list",
                        state: "reading a manifest answer",
                    });
                }
                Some(ManifestOutcome::Pending {
                    missing: std::mem::take(&mut self.missing),
                })
            }
            ManifestReply::Refused(r) => Some(ManifestOutcome::Refused(r)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FrameDecoder;

    fn uids(n: usize) -> Vec<String> {
        // 64-character UIDs, the longest allowed.
        (0..n)
            .map(|i| format!("1.2.826.0.1.3680043.10.1234.{:036}", i))
            .collect()
    }

    #[test]
    fn a_manifest_of_5000_longest_uids_travels_in_frames_under_the_cap_and_assembles() {
        let all = uids(5000);
        assert!(all.iter().all(|u| u.len() == 64 && valid_uid(u)));
        let frames = encode_manifest("1.2.3", &all);
        assert!(frames.len() > 5);
        let mut d = FrameDecoder::new();
        for f in &frames {
            assert!(f.len() <= MAX_FRAME_LEN as usize + 4);
            d.push(f.clone());
        }
        let Some(Request::Manifest(h)) = d.next_frame::<Request>("request").unwrap() else {
            panic!("header first")
        };
        let mut a = ManifestAssembler::new(h, 100_000).unwrap();
        let mut done = false;
        while let Some(p) = d.next_frame::<ManifestPart>("part").unwrap() {
            done = a.push(p).unwrap();
        }
        assert!(done);
        let (study, got) = a.into_parts();
        assert_eq!(study, "1.2.3");
        assert_eq!(got, all);
    }

    #[test]
    fn bad_manifests_are_refused_with_reasons() {
        let h = |study: &str, n| Manifest {
            study_uid: study.into(),
            instances: n,
        };
        assert_eq!(
            ManifestAssembler::new(h("1.2", 0), 10).unwrap_err(),
            ManifestError::Empty
        );
        assert!(matches!(
            ManifestAssembler::new(h("1.2", 11), 10),
            Err(ManifestError::TooMany { .. })
        ));
        assert_eq!(
            ManifestAssembler::new(h("x", 1), 10).unwrap_err(),
            ManifestError::BadStudyUid
        );
        let mut a = ManifestAssembler::new(h("1.2", 2), 10).unwrap();
        assert_eq!(
            a.push(ManifestPart {
                sop_uids: vec!["../etc".into()]
            })
            .unwrap_err(),
            ManifestError::BadSopUid
        );
        assert!(matches!(
            a.push(ManifestPart { sop_uids: uids(3) }),
            Err(ManifestError::TooManyParts { .. })
        ));
    }

    #[test]
    fn duplicates_in_a_manifest_count_once() {
        let mut a = ManifestAssembler::new(
            Manifest {
                study_uid: "1.2".into(),
                instances: 3,
            },
            10,
        )
        .unwrap();
        a.push(ManifestPart {
            sop_uids: vec!["1.2.1".into(), "1.2.2".into(), "1.2.1".into()],
        })
        .unwrap();
        assert_eq!(a.into_parts().1, vec!["1.2.1", "1.2.2"]);
    }

    #[test]
    fn a_long_missing_list_comes_back_in_pieces() {
        let missing = uids(2000);
        let frames = encode_manifest_reply(
            &missing,
            &ManifestReply::Pending {
                missing: missing.len() as u32,
            },
        );
        let mut d = FrameDecoder::new();
        let mut answer = ManifestAnswer::default();
        let mut out = None;
        for f in frames {
            d.push(f);
            while let Some(r) = d.next_frame::<ManifestReply>("reply").unwrap() {
                out = answer.push(r).unwrap();
            }
        }
        assert_eq!(out, Some(ManifestOutcome::Pending { missing }));
    }
}
