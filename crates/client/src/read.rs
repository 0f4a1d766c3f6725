//! `yilian read`: receive everything routed to this reader.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::task::JoinSet;
use tracing::{info, warn};
use yilian_proto::{encode_frame, FrameDecoder, Notice, Request, Subscribe};

use crate::connect::{self, Backoff, ClientConfig};
use crate::download::download;
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
    std::fs::create_dir_all(&opts.out).map_err(|source| ClientError::Output {
        path: opts.out.clone(),
        source,
    })?;
    let endpoint = connect::endpoint(&opts.client)?;
    let counters = Arc::new(Counters::default());
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
        match session(&conn, opts, &counters, &progress, &mut studies).await {
            Ok(()) => {
                connect::close(&endpoint, &conn, b"backlog delivered").await;
                return Ok(ReadReport {
                    instances: counters.instances.load(Ordering::Relaxed),
                    bytes: counters.bytes.load(Ordering::Relaxed),
                    studies_complete: studies,
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
                downloads.spawn(async move {
                    if let Err(e) = download(send, recv, &out, &counters, progress.as_ref()).await {
                        warn!("delivery failed (the relay will send it again): {e}");
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
                        Notice::BacklogDelivered { instances } => {
                            info!(instances, "backlog delivered");
                            if opts.once {
                                while downloads.join_next().await.is_some() {}
                                return Ok(());
                            }
                        }
                        Notice::StudyComplete { study_uid, instances } => {
                            if yilian_proto::valid_uid(&study_uid) {
                                let marker = opts.out.join(&study_uid).join(".study-complete");
                                let _ = std::fs::write(&marker, format!("{instances}\n"));
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
