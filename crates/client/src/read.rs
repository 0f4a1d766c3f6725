//! `yilian read`: receive everything routed to this reader.
//!
//! Deliveries that could not be stored are tracked (`failures.rs`): the reader's own (disk
//! full, a file in the way, a hash mismatch) and the ones the relay reports in its backlog
//! notice; a later success clears one. `--once` ends with them in the report (the CLI exits 1
//! and names them); a reader that keeps running logs each once and lets the relay retry.
//!
//! The relay refuses a second subscription of one reader identity while the first answers,
//! closing the connection with a final code and where the first is connected from: `read`
//! returns [`ClientError::Refused`] with that reason instead of reconnecting.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::task::JoinSet;
use tracing::{info, warn};
use yilian_proto::{encode_frame, FrameDecoder, Notice, Request, Subscribe};

use crate::connect::{self, Backoff, ClientConfig};
use crate::download::{create_private_dir, download, DownloadError, FILE_MODE};
use crate::failures::{DeliveryFailure, Failures};
use crate::{ClientError, Progress};

#[derive(Clone)]
pub struct ReadOptions {
    pub client: ClientConfig,
    /// Instances go to `out/<StudyInstanceUID>/<SOPInstanceUID>.dcm`.
    pub out: PathBuf,
    /// Leave once the backlog is delivered.
    pub once: bool,
}

#[derive(Debug, Default, Clone)]
pub struct ReadReport {
    pub instances: u64,
    pub bytes: u64,
    pub studies_complete: Vec<String>,
    /// Instances routed to this reader that it does not hold at the end (it could not store
    /// them, or the relay could not deliver them): they stay in the relay's outbox.
    pub failures: Vec<DeliveryFailure>,
    /// More instances the relay could not deliver, beyond those it listed.
    pub failures_unlisted: u64,
}

impl ReadReport {
    /// Whether every delivery ended with the instance stored.
    pub fn all_stored(&self) -> bool {
        self.failures.is_empty() && self.failures_unlisted == 0
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    pub instances: AtomicU64,
    pub bytes: AtomicU64,
}

/// Run a reader until the backlog is delivered (`once`) or forever, reconnecting when the link
/// drops.
pub async fn read(
    opts: &ReadOptions,
    progress: Arc<dyn Progress>,
) -> Result<ReadReport, ClientError> {
    create_private_dir(&opts.out).map_err(|reason| ClientError::OutputFolder {
        path: opts.out.clone(),
        reason,
    })?;
    let endpoint = connect::endpoint(&opts.client)?;
    let counters = Arc::new(Counters::default());
    let failures = Arc::new(Failures::default());
    let mut studies = Vec::new();
    let mut backoff = Backoff::default();
    loop {
        let conn = connect::connect(
            &endpoint,
            &opts.client,
            progress.as_ref(),
            connect::Handover::Confirmed,
        )
        .await?;
        match session(&conn, opts, &counters, &failures, &progress, &mut studies).await {
            Ok(()) => {
                connect::close(&endpoint, &conn, b"backlog delivered").await;
                let (failed, unlisted) = failures.outstanding();
                return Ok(ReadReport {
                    instances: counters.instances.load(Ordering::Relaxed),
                    bytes: counters.bytes.load(Ordering::Relaxed),
                    studies_complete: studies,
                    failures: failed,
                    failures_unlisted: unlisted,
                });
            }
            Err(SessionEnd::Refused(e)) => return Err(ClientError::Refused(e)),
            Err(SessionEnd::Link(e)) => {
                let d = backoff.next_delay();
                progress.status(&format!(
                    "link to the relay lost ({e}); reconnecting in {:.1} s",
                    d.as_secs_f32()
                ));
                tokio::time::sleep(d).await;
            }
        }
    }
}

enum SessionEnd {
    Refused(String),
    Link(String),
}

async fn session(
    conn: &quinn::Connection,
    opts: &ReadOptions,
    counters: &Arc<Counters>,
    failures: &Arc<Failures>,
    progress: &Arc<dyn Progress>,
    studies: &mut Vec<String>,
) -> Result<(), SessionEnd> {
    let link = |e: &dyn std::fmt::Display| SessionEnd::Link(e.to_string());
    // Whichever stream notices first: the relay closing on purpose (certificate revoked,
    // identity unknown) is final, anything else is the link.
    let ended = |e: &quinn::ConnectionError| {
        let why = yilian_transport::explain(e);
        if connect::refused_for_good(e) {
            SessionEnd::Refused(why)
        } else {
            SessionEnd::Link(why)
        }
    };
    let (mut ctl_send, mut ctl_recv) = conn.open_bi().await.map_err(|e| ended(&e))?;
    ctl_send
        .write_chunk(encode_frame(&Request::Subscribe(Subscribe {
            once: opts.once,
        })))
        .await
        .map_err(|e| match e {
            quinn::WriteError::ConnectionLost(e) => ended(&e),
            e => link(&e),
        })?;
    let mut downloads = JoinSet::new();
    let mut dec = FrameDecoder::new();
    loop {
        tokio::select! {
            s = conn.accept_bi() => {
                let (send, recv) = s.map_err(|e| ended(&e))?;
                let (out, counters, progress) = (opts.out.clone(), counters.clone(), progress.clone());
                let failures = failures.clone();
                downloads.spawn(async move {
                    match download(send, recv, &out, &counters, progress.as_ref()).await {
                        Ok(instance) => failures.stored(&instance),
                        Err(DownloadError::NotStored { instance, reason }) => {
                            failures.reader_failed(&instance, &reason);
                        }
                        // The relay sends it again; a broken link is reported by the session.
                        Err(DownloadError::Interrupted(e)) => warn!("delivery interrupted (the relay sends it again): {e}"),
                    }
                });
            }
            Some(_) = downloads.join_next(), if !downloads.is_empty() => {}
            chunk = ctl_recv.read_chunk(64 * 1024, true) => {
                match chunk {
                    Ok(Some(c)) => dec.push(c.bytes),
                    Ok(None) => return Err(SessionEnd::Link("the relay ended the subscription".into())),
                    Err(quinn::ReadError::ConnectionLost(e)) => return Err(ended(&e)),
                    Err(e) => return Err(link(&e)),
                }
                while let Some(n) = dec.next_frame::<Notice>("notice").map_err(|e| link(&e))? {
                    match n {
                        Notice::BacklogDelivered { instances, not_delivered, not_delivered_total } => {
                            info!(instances, not_delivered = not_delivered_total, "backlog delivered");
                            if opts.once {
                                while downloads.join_next().await.is_some() {}
                                failures.relay_reported(&not_delivered, not_delivered_total);
                                return Ok(());
                            }
                            // Still connected: the relay keeps retrying them.
                            failures.relay_reported(&not_delivered, not_delivered_total);
                        }
                        Notice::StudyComplete { study_uid, instances } => {
                            if yilian_proto::valid_uid(&study_uid) {
                                let marker = opts.out.join(&study_uid).join(".study-complete");
                                if let Err(e) = write_private(&marker, format!("{instances}\n").as_bytes()) {
                                    warn!(study_uid = %study_uid, "cannot mark the study complete: {}", crate::download::io("write", &marker, e));
                                }
                                info!(study_uid = %study_uid, instances, "study complete");
                                progress.status(&format!("study {study_uid} complete ({instances} instances)"));
                                studies.push(study_uid);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Write a small file readable by this account only.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)?
        .write_all(bytes)
}
