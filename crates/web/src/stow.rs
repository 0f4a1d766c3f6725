//! STOW-RS (PS3.18 §10.5): a device stores instances by `POST /dicomweb/studies`, into the same
//! ingest path as every other front door.
//!
//! The body is `multipart/related; type="application/dicom"`; each part is one Part 10 file.
//! Parts are read as they arrive (`multipart.rs`, their data never copied), never whole: the first bytes of a part give its
//! file meta (SOP Instance UID, SOP class), then the part streams into
//! `yilian_ingest::Upload` exactly like a C-STORE's data set (a scratch upload: size unknown,
//! stored once verified). A part counts as stored only once the ingest path says it is durable
//! (hash + fsync + commit); anything else is a failure with its DICOM status (the mapping every
//! door uses, `yilian_ingest::dicom_status`), audited by the ingest path. Parts are independent:
//! a broken one does not stop the others.

use std::sync::Arc;

use crate::multipart::{Multipart, PartHead};
use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use yilian_dimse::part10::{parse_file_meta_of, Part10Error};
use yilian_ingest::{Event, Ingest, Opened, Principal, Upload, UploadSpec};
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

/// Parts of one request whose data has arrived and whose verdict (seal, commit) is awaited
/// while the next part is read. A request's parts then share fsyncs with each other, as the
/// uploads of concurrent senders do, instead of each waiting for the last one's.
pub const PARTS_IN_FLIGHT: usize = 8;

/// Store every part of `body` for `principal`; one outcome per part, in order.
///
/// A part is read and handed to the ingest path; its verdict is awaited in a task of its own
/// while the next part is read, at most [`PARTS_IN_FLIGHT`] at once. A part whose SOP Instance
/// UID is still in flight waits for that verdict first, so a request holding one instance
/// twice is judged as if its parts came one after the other. A request that is dropped
/// half-way (the client went away) leaves its parts in flight to finish: what is durable is
/// committed.
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
    let mut multipart =
        Multipart::new(Box::pin(body), &boundary).map_err(|e| StowError::Body(e.to_string()))?;
    let mut parts = InFlight::default();
    loop {
        let head = match multipart.next_part().await {
            Ok(Some(h)) => h,
            Ok(None) => {
                multipart.finish().await;
                break;
            }
            Err(e) => {
                if parts.is_empty() {
                    return Err(StowError::Body(e.to_string()));
                }
                // What was stored stays stored; the rest is reported as one failure.
                parts.done(failed(
                    0xC000,
                    format!("the rest of the body is malformed: {e}"),
                ));
                break;
            }
        };
        store_part(
            ingest,
            &principal,
            &head,
            &mut multipart,
            study.as_deref(),
            &mut parts,
        )
        .await;
    }
    if parts.is_empty() {
        return Err(StowError::Empty);
    }
    Ok(parts.outcomes().await)
}

/// The outcomes of a request's parts, in order; the ones still in flight as tasks.
#[derive(Default)]
struct InFlight {
    outcomes: Vec<Option<PartOutcome>>,
    /// Index into `outcomes`, SOP Instance UID, and the task awaiting the verdict.
    pending: std::collections::VecDeque<(usize, String, tokio::task::JoinHandle<PartOutcome>)>,
}

impl InFlight {
    fn is_empty(&self) -> bool {
        self.outcomes.is_empty()
    }

    /// A part with its outcome known at once.
    fn done(&mut self, outcome: PartOutcome) {
        self.outcomes.push(Some(outcome));
    }

    /// A part whose verdict `task` awaits.
    fn push(&mut self, sop_uid: String, task: tokio::task::JoinHandle<PartOutcome>) {
        self.pending.push_back((self.outcomes.len(), sop_uid, task));
        self.outcomes.push(None);
    }

    /// Before a part of `sop_uid` starts: its earlier parts in flight are judged, and there
    /// is room for one more.
    async fn make_way(&mut self, sop_uid: &str) {
        while let Some(i) = self.pending.iter().position(|(_, uid, _)| uid == sop_uid) {
            if let Some(p) = self.pending.remove(i) {
                self.settle(p).await;
            }
        }
        while self.pending.len() >= PARTS_IN_FLIGHT {
            if let Some(p) = self.pending.pop_front() {
                self.settle(p).await;
            }
        }
    }

    async fn settle(
        &mut self,
        (i, sop_uid, task): (usize, String, tokio::task::JoinHandle<PartOutcome>),
    ) {
        let outcome = task.await.unwrap_or_else(|e| {
            tracing::error!(sop_uid = %sop_uid, "a STOW-RS part's task failed: {e}");
            PartOutcome::Failed {
                sop_class: None,
                sop_instance: Some(sop_uid),
                status: yilian_ingest::dicom_status(RefuseCode::Internal),
                reason: "the relay failed while storing this part (see its log); send it again"
                    .into(),
            }
        });
        self.outcomes[i] = Some(outcome);
    }

    /// Every outcome, in the parts' order, once all are known.
    async fn outcomes(mut self) -> Vec<PartOutcome> {
        while let Some(p) = self.pending.pop_front() {
            self.settle(p).await;
        }
        self.outcomes.into_iter().flatten().collect()
    }
}

fn failed(status: u16, reason: impl Into<String>) -> PartOutcome {
    PartOutcome::Failed {
        sop_class: None,
        sop_instance: None,
        status,
        reason: reason.into(),
    }
}

/// The UIDs a part's file meta gave.
struct PartIds {
    sop_class: String,
    sop_instance: String,
}

impl PartIds {
    fn failed(&self, r: Refusal) -> PartOutcome {
        PartOutcome::Failed {
            sop_class: Some(self.sop_class.clone()),
            sop_instance: Some(self.sop_instance.clone()),
            status: yilian_ingest::dicom_status(r.code),
            reason: r.reason,
        }
    }
}

/// Read one part into the ingest path; its outcome, or the task awaiting it, goes to `parts`.
async fn store_part<S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin>(
    ingest: &Arc<Ingest>,
    principal: &Arc<Principal>,
    part: &PartHead,
    body: &mut Multipart<S>,
    study: Option<&str>,
    parts: &mut InFlight,
) {
    if let (Some(t), Some(essence)) = (&part.content_type, part.essence()) {
        if essence != "application/dicom" {
            return parts.done(failed(
                0xC000,
                format!("a part of type {t} (each part must be application/dicom)"),
            ));
        }
    }
    // The part's first bytes, until its file meta can be read. Usually the first slice holds
    // it (often the whole part): that slice is taken as it is, and bytes are gathered only
    // when the file meta spans slices. The slices of a batch after the file meta stay as
    // they came (`rest`), for the spool writer.
    let mut head = Head::default();
    let mut rest = std::collections::VecDeque::new();
    let mut more = true;
    let meta = loop {
        let whole = !more && rest.is_empty();
        match parse_file_meta_of(head.bytes(), whole) {
            Ok(m) => break m,
            Err(Part10Error::Incomplete) if whole => {
                return parts.done(failed(
                    0xC000,
                    "not a DICOM Part 10 file: the part ends inside its file meta",
                ))
            }
            Err(Part10Error::Incomplete) if head.bytes().len() < MAX_HEAD => {}
            Err(e) => return parts.done(failed(0xC000, format!("not a DICOM Part 10 file: {e}"))),
        }
        if let Some(slice) = rest.pop_front() {
            head.push(slice);
            continue;
        }
        let mut got = Vec::new();
        match body.chunks(&mut got).await {
            Ok(m) => more = m,
            Err(e) => return parts.done(failed(0xC000, format!("the part is malformed: {e}"))),
        }
        rest.extend(got);
    };
    let ids = PartIds {
        sop_class: meta.sop_class,
        sop_instance: meta.sop_instance,
    };
    if !yilian_proto::valid_uid(&ids.sop_instance) {
        return parts.done(ids.failed(yilian_ingest::refusal(
            RefuseCode::Malformed,
            "the file meta's SOP Instance UID is not a valid UID",
        )));
    }
    parts.make_way(&ids.sop_instance).await;
    let spec = UploadSpec {
        sop_uid: ids.sop_instance.clone(),
        study_uid: study.map(str::to_string),
        ..UploadSpec::default()
    };
    let fed = feed(
        ingest,
        principal.clone(),
        spec,
        head.into_bytes(),
        rest.into(),
        more,
        body,
    )
    .await;
    let (ingest, principal) = (ingest.clone(), principal.clone());
    let study = study.map(str::to_string);
    let sop_uid = ids.sop_instance.clone();
    parts.push(
        sop_uid,
        tokio::spawn(async move {
            let r = match fed {
                Ok(Fed::AlreadyStored(up)) => settled(up).await,
                Ok(Fed::Finished(up)) => verdict(up).await,
                Err(r) => Err(r),
            };
            match r {
                Ok(study) => PartOutcome::Stored {
                    sop_class: ids.sop_class,
                    sop_instance: ids.sop_instance,
                    study,
                },
                Err(r) => {
                    ingest
                        .refused(&principal, study, Some(ids.sop_instance.clone()), &r)
                        .await;
                    ids.failed(r)
                }
            }
        }),
    );
}

/// A part's first bytes: its first chunk as it came, or the chunks gathered so far.
#[derive(Default)]
struct Head {
    first: Bytes,
    gathered: BytesMut,
}

impl Head {
    fn bytes(&self) -> &[u8] {
        if self.gathered.is_empty() {
            &self.first
        } else {
            &self.gathered
        }
    }

    fn push(&mut self, chunk: Bytes) {
        if self.first.is_empty() && self.gathered.is_empty() {
            self.first = chunk;
            return;
        }
        if self.gathered.is_empty() {
            self.gathered
                .extend_from_slice(&std::mem::take(&mut self.first));
        }
        self.gathered.extend_from_slice(&chunk);
    }

    fn into_bytes(self) -> Bytes {
        if self.gathered.is_empty() {
            self.first
        } else {
            self.gathered.freeze()
        }
    }
}

/// How far a part got while its data was read.
enum Fed {
    /// The site holds this very instance already.
    AlreadyStored(Upload),
    /// Every byte went in; the verdict follows.
    Finished(Upload),
}

/// How long a part waits for its device's upload slot before it fails as busy (0xA700).
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// One part's data into the ingest path: `head`, the slices already read after it (`rest`),
/// then (if `more`) the rest of the part.
async fn feed<S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin>(
    ingest: &Arc<Ingest>,
    principal: Arc<Principal>,
    spec: UploadSpec,
    head: Bytes,
    rest: Vec<Bytes>,
    mut more: bool,
    body: &mut Multipart<S>,
) -> Result<Fed, Refusal> {
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
    let fed = async {
        up.lease().await?;
        if let Opened::AlreadyStored(_) = up.open().await? {
            return Ok(false);
        }
        let mut accepted = up.data(head).await;
        if accepted && !rest.is_empty() {
            accepted = up.data_many(rest).await;
        }
        let mut got = Vec::new();
        while accepted && more {
            match body.chunks(&mut got).await {
                Ok(m) => more = m,
                Err(e) => {
                    return Err(yilian_ingest::refusal(
                        RefuseCode::Truncated,
                        format!("the part was cut off: {e}"),
                    ))
                }
            }
            if !got.is_empty() {
                accepted = up.data_many(std::mem::take(&mut got)).await;
            }
        }
        if accepted {
            up.finish(None).await;
        }
        Ok(true)
    }
    .await;
    match fed {
        Ok(true) => Ok(Fed::Finished(up)),
        Ok(false) => Ok(Fed::AlreadyStored(up)),
        Err(r) => {
            up.close().await;
            Err(r)
        }
    }
}

/// The verdict of a part whose data went in (or that the ingest path refused on the way).
async fn verdict(mut up: Upload) -> Result<String, Refusal> {
    let outcome = loop {
        match up.next_event().await {
            Event::Hold(_) | Event::Checkpoint(_) => continue,
            Event::Stored(_) => break Ok(()),
            Event::Refused(r) => break Err(r),
        }
    };
    match outcome {
        Ok(()) => settled(up).await,
        Err(r) => {
            up.close().await;
            Err(r)
        }
    }
}

/// A stored part: its study, and the upload closed.
async fn settled(up: Upload) -> Result<String, Refusal> {
    let study = up.study_uid().map(str::to_string);
    up.close().await;
    study.ok_or_else(|| {
        yilian_ingest::refusal(RefuseCode::Internal, "stored, but its study is unknown")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A part's head is its first chunk itself when that chunk is enough (no copy of a
    /// whole CT slice), and the chunks in order when the file meta spans several.
    #[test]
    fn a_head_takes_its_first_chunk_as_it_is_and_gathers_only_when_needed() {
        let whole = Bytes::from(vec![7u8; 300_000]);
        let mut h = Head::default();
        h.push(whole.clone());
        assert_eq!(h.bytes().as_ptr(), whole.as_ptr(), "the chunk was copied");
        assert_eq!(h.into_bytes().as_ptr(), whole.as_ptr());

        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        for cuts in [
            vec![1usize],
            vec![0, 10, 11],
            vec![132, 133, 4000],
            vec![2500],
        ] {
            let mut h = Head::default();
            let mut at = 0;
            for &c in cuts.iter().chain([data.len()].iter()) {
                h.push(Bytes::copy_from_slice(&data[at..c]));
                at = c;
                assert_eq!(h.bytes(), &data[..at]);
            }
            assert_eq!(h.into_bytes(), &data[..]);
        }
    }

    /// A seeded model of a request's parts in flight: verdicts arrive in any order, yet the
    /// outcomes keep the parts' order, at most `PARTS_IN_FLIGHT` wait at once, and two parts of
    /// one instance are never in flight together.
    #[tokio::test(start_paused = true)]
    async fn parts_in_flight_keep_their_order_and_one_instance_at_a_time() {
        use std::collections::HashSet;
        use std::sync::Mutex;
        for seed in 1..=300u64 {
            let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut next = move || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            let running = Arc::new(Mutex::new(HashSet::new()));
            let mut parts = InFlight::default();
            let n = 1 + (next() % 40) as usize;
            for i in 0..n {
                if next() % 7 == 0 {
                    parts.done(failed(0xC000, i.to_string()));
                    continue;
                }
                let uid = format!("1.2.{}", next() % 5);
                parts.make_way(&uid).await;
                assert!(parts.pending.len() < PARTS_IN_FLIGHT, "seed {seed}");
                assert!(
                    !running.lock().unwrap().contains(&uid),
                    "seed {seed}: {uid} twice"
                );
                let delay = std::time::Duration::from_micros(next() % 5_000);
                let running = running.clone();
                let task_uid = uid.clone();
                running.lock().unwrap().insert(uid.clone());
                parts.push(
                    uid,
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        running.lock().unwrap().remove(&task_uid);
                        failed(0, i.to_string())
                    }),
                );
            }
            let reasons: Vec<String> = parts
                .outcomes()
                .await
                .into_iter()
                .map(|o| match o {
                    PartOutcome::Failed { reason, .. } => reason,
                    PartOutcome::Stored { .. } => unreachable!(),
                })
                .collect();
            assert_eq!(
                reasons,
                (0..n).map(|i| i.to_string()).collect::<Vec<_>>(),
                "seed {seed}"
            );
        }
    }

    /// A part whose task failed still gets its verdict, in its place.
    #[tokio::test]
    async fn a_part_whose_task_failed_is_reported_as_such() {
        let mut parts = InFlight::default();
        parts.push("1.2.3".into(), tokio::spawn(async { panic!("boom") }));
        parts.done(failed(0xC000, "next"));
        let out = parts.outcomes().await;
        assert!(
            matches!(&out[0], PartOutcome::Failed { status, sop_instance: Some(s), reason, .. }
                if *status == yilian_ingest::dicom_status(RefuseCode::Internal)
                    && s == "1.2.3" && reason.contains("send it again")),
            "{out:?}"
        );
        assert_eq!(out.len(), 2);
    }

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
