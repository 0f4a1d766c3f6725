//! STOW-RS (PS3.18 §10.5): a device stores instances by `POST /dicomweb/studies`, into the same
//! ingest path as every other front door.
//!
//! The body is `multipart/related; type="application/dicom"`; each part is one Part 10 file.
//! Parts are read as they arrive (`multer`), never whole: the first bytes of a part give its
//! file meta (SOP Instance UID, SOP class), then the part streams into
//! `yilian_ingest::Upload` exactly like a C-STORE's data set (a scratch upload: size unknown,
//! stored once verified). A part counts as stored only once the ingest path says it is durable
//! (hash + fsync + commit); anything else is a failure with its DICOM status (the mapping every
//! door uses, `yilian_ingest::dicom_status`), audited by the ingest path. Parts are independent:
//! a broken one does not stop the others.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use yilian_dimse::part10::{parse_file_meta, Part10Error};
use yilian_ingest::{Event, Ingest, Opened, Principal, UploadSpec};
use yilian_proto::{Refusal, RefuseCode};

/// Most bytes read looking for a part's file meta (the preamble, `DICM`, a meta group).
const MAX_HEAD: usize = 132 + 64 * 1024;

/// One part's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartOutcome {
    /// Durable (or already stored with these bytes).
    Stored {
        sop_class: String,
        sop_instance: String,
        study: String,
    },
    /// Not stored: the DICOM status (Failure Reason) and why.
    Failed {
        sop_class: Option<String>,
        sop_instance: Option<String>,
        status: u16,
        reason: String,
    },
}

/// Why a request could not be read at all (answered 400 or 415).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StowError {
    #[error(
        "STOW-RS takes multipart/related; type=\"application/dicom\" with a boundary (got {0:?})"
    )]
    MediaType(String),
    #[error("the multipart body is malformed: {0}")]
    Body(String),
    #[error("the request holds no instance")]
    Empty,
}

/// The boundary of a `multipart/related; type="application/dicom"` content type.
pub fn boundary(content_type: &str) -> Result<String, StowError> {
    let bad = || StowError::MediaType(content_type.to_string());
    let mut params = content_type.split(';').map(str::trim);
    if !params
        .next()
        .is_some_and(|m| m.eq_ignore_ascii_case("multipart/related"))
    {
        return Err(bad());
    }
    let mut boundary = None;
    for p in params {
        let Some((k, v)) = p.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"');
        match k.trim().to_ascii_lowercase().as_str() {
            "boundary" if !v.is_empty() => boundary = Some(v.to_string()),
            "type" if !v.eq_ignore_ascii_case("application/dicom") => return Err(bad()),
            _ => {}
        }
    }
    boundary.ok_or_else(bad)
}

/// Store every part of `body` for `principal`; one outcome per part, in order.
pub async fn store_parts<S>(
    ingest: &Arc<Ingest>,
    principal: Arc<Principal>,
    boundary: String,
    body: S,
    study: Option<String>,
) -> Result<Vec<PartOutcome>, StowError>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
{
    let mut multipart = multer::Multipart::new(body, boundary);
    let mut outcomes = Vec::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                if outcomes.is_empty() {
                    return Err(StowError::Body(e.to_string()));
                }
                // What was stored stays stored; the rest is reported as one failure.
                outcomes.push(PartOutcome::Failed {
                    sop_class: None,
                    sop_instance: None,
                    status: 0xC000,
                    reason: format!("the rest of the body is malformed: {e}"),
                });
                break;
            }
        };
        outcomes.push(store_part(ingest, &principal, field, study.as_deref()).await);
    }
    if outcomes.is_empty() {
        return Err(StowError::Empty);
    }
    Ok(outcomes)
}

fn failed(status: u16, reason: impl Into<String>) -> PartOutcome {
    PartOutcome::Failed {
        sop_class: None,
        sop_instance: None,
        status,
        reason: reason.into(),
    }
}

async fn store_part(
    ingest: &Arc<Ingest>,
    principal: &Arc<Principal>,
    mut field: multer::Field<'_>,
    study: Option<&str>,
) -> PartOutcome {
    if let Some(t) = field.content_type() {
        if t.essence_str() != "application/dicom" {
            return failed(
                0xC000,
                format!("a part of type {t} (each part must be application/dicom)"),
            );
        }
    }
    // The part's first bytes, until its file meta can be read.
    let mut head = BytesMut::new();
    let meta = loop {
        match parse_file_meta(&head) {
            Ok(m) => break m,
            Err(Part10Error::Incomplete) if head.len() < MAX_HEAD => {}
            Err(e) => return failed(0xC000, format!("not a DICOM Part 10 file: {e}")),
        }
        match field.chunk().await {
            Ok(Some(c)) => head.extend_from_slice(&c),
            Ok(None) => {
                return failed(
                    0xC000,
                    "not a DICOM Part 10 file: the part ends inside its file meta",
                )
            }
            Err(e) => return failed(0xC000, format!("the part is malformed: {e}")),
        }
    };
    let (sop_class, sop_instance) = (meta.sop_class.clone(), meta.sop_instance.clone());
    let with_uids = |r: Refusal| PartOutcome::Failed {
        sop_class: Some(sop_class.clone()),
        sop_instance: Some(sop_instance.clone()),
        status: yilian_ingest::dicom_status(r.code),
        reason: r.reason,
    };
    if !yilian_proto::valid_uid(&sop_instance) {
        return with_uids(yilian_ingest::refusal(
            RefuseCode::Malformed,
            "the file meta's SOP Instance UID is not a valid UID",
        ));
    }
    let spec = UploadSpec {
        sop_uid: sop_instance.clone(),
        study_uid: study.map(str::to_string),
        ..UploadSpec::default()
    };
    match upload(ingest, principal.clone(), spec, head.freeze(), &mut field).await {
        Ok(study) => PartOutcome::Stored {
            sop_class,
            sop_instance,
            study,
        },
        Err(r) => {
            ingest
                .refused(
                    principal,
                    study.map(str::to_string),
                    Some(sop_instance.clone()),
                    &r,
                )
                .await;
            with_uids(r)
        }
    }
}

/// How long a part waits for its device's upload slot before it fails as busy (0xA700).
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// One part through the ingest path; its Study Instance UID once durable.
async fn upload(
    ingest: &Arc<Ingest>,
    principal: Arc<Principal>,
    spec: UploadSpec,
    head: Bytes,
    field: &mut multer::Field<'_>,
) -> Result<String, Refusal> {
    let conn = yilian_ingest::next_conn();
    // A device at its cap of uploads in progress (instances answered but not yet in the
    // catalog count too) waits for a slot: a STOW request sends its parts one after another,
    // so waiting is the natural back-pressure, where refusing would fail instances a
    // QUIC sender would simply retry. Only for so long, then the part fails with the reason.
    let mut waited = std::time::Duration::ZERO;
    let mut pause = std::time::Duration::from_millis(5);
    let mut up = loop {
        match ingest.begin(principal.clone(), spec.clone(), conn).await {
            Err(r) if r.code == RefuseCode::Busy && waited < BUSY_WAIT => {
                tokio::time::sleep(pause).await;
                waited += pause;
                pause = (pause * 2).min(std::time::Duration::from_millis(200));
            }
            other => break other?,
        }
    };
    let outcome = async {
        up.lease().await?;
        if let Opened::AlreadyStored(_) = up.open().await? {
            return Ok(());
        }
        let mut accepted = up.data(head).await;
        while accepted {
            match field.chunk().await {
                Ok(Some(c)) => accepted = up.data(c).await,
                Ok(None) => break,
                Err(e) => {
                    return Err(yilian_ingest::refusal(
                        RefuseCode::Truncated,
                        format!("the part was cut off: {e}"),
                    ))
                }
            }
        }
        if accepted {
            up.finish(None).await;
        }
        loop {
            match up.next_event().await {
                Event::Hold(_) | Event::Checkpoint(_) => continue,
                Event::Stored(_) => return Ok(()),
                Event::Refused(r) => return Err(r),
            }
        }
    }
    .await;
    let study = up.study_uid().map(str::to_string);
    up.close().await;
    outcome?;
    study.ok_or_else(|| {
        yilian_ingest::refusal(RefuseCode::Internal, "stored, but its study is unknown")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boundary_comes_from_a_dicom_multipart_type_only() {
        assert_eq!(
            boundary("multipart/related; type=\"application/dicom\"; boundary=abc").unwrap(),
            "abc"
        );
        assert_eq!(
            boundary("Multipart/Related; boundary=\"x y\"").unwrap(),
            "x y"
        );
        for bad in [
            "application/dicom",
            "multipart/related; type=\"application/dicom+json\"; boundary=a",
            "multipart/related; type=\"application/dicom\"",
            "multipart/form-data; boundary=a",
        ] {
            assert!(boundary(bad).is_err(), "{bad}");
        }
    }
}
