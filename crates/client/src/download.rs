//! One delivery from the relay, written through a resumable partial file.
//!
//! Files yilian writes are private to the reader's account: received instances and their
//! partial copies are created 0600, the folders it creates 0700.

use bytes::BytesMut;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use tokio::io::AsyncReadExt;
use yilian_proto::{
    valid_uid, FrameDecoder, InstanceRef, Receiver, ReceiverEvent, Refusal, RefuseCode, Request,
};

use crate::read::Counters;
use crate::sink::FileSink;
use crate::Progress;

/// Mode of the files a reader writes (received instances, partial copies, markers).
pub(crate) const FILE_MODE: u32 = 0o600;
/// Mode of the folders a reader creates.
pub(crate) const DIR_MODE: u32 = 0o700;

/// Why one delivery did not end with the instance stored.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DownloadError {
    /// This reader could not store the instance (its disk, its folders, a hash mismatch): a
    /// failure until a later delivery of the same instance succeeds. The relay was told why.
    #[error("{reason}")]
    NotStored {
        instance: InstanceRef,
        reason: String,
    },
    /// The transfer broke off (link lost, relay gone, protocol error); the relay sends the
    /// instance again, resuming at what the partial copy holds.
    #[error("{0}")]
    Interrupted(String),
}

/// How one step of a delivery failed: here (storing) or on the way (the transfer).
enum Step {
    Local(String),
    Link(String),
}

fn link(e: impl std::fmt::Display) -> Step {
    Step::Link(e.to_string())
}

/// "cannot WHAT PATH: REASON", the reason in plain words (without the OS error number).
pub(crate) fn io(what: &str, p: &Path, e: std::io::Error) -> String {
    format!("cannot {what} {}: {}", p.display(), io_words(&e))
}

/// An I/O error in plain words: "No space left on device", not "… (os error 28)".
pub(crate) fn io_words(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_string(),
        _ => s,
    }
}

/// Create `dir` (and its parents) 0700; a file in the way is said in words.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), String> {
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
    {
        Ok(()) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::NotADirectory
            ) =>
        {
            Err(format!(
                "cannot create folder {}: a file is in the way (a file, not a folder, has that name or the name of a folder above it)",
                dir.display()
            ))
        }
        Err(e) => Err(io("create folder", dir, e)),
    }
}

pub(crate) async fn download(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    out: &Path,
    counters: &Counters,
    progress: &dyn Progress,
) -> Result<InstanceRef, DownloadError> {
    let interrupted = |e: &dyn std::fmt::Display| DownloadError::Interrupted(e.to_string());
    let mut dec = FrameDecoder::new();
    let mut buf = BytesMut::with_capacity(256 * 1024);
    let offer = loop {
        if let Some(Request::Offer(o)) = dec
            .next_frame::<Request>("offer")
            .map_err(|e| interrupted(&e))?
        {
            break o;
        }
        buf.reserve(64 * 1024);
        if recv.read_buf(&mut buf).await.map_err(|e| interrupted(&e))? == 0 {
            return Err(interrupted(&"stream ended before the offer"));
        }
        dec.push(buf.split().freeze());
    };
    let mut rx = Receiver::new(offer.clone(), dec, u64::MAX).map_err(|e| interrupted(&e))?;
    let instance = offer.instance.clone();
    let (study, sop) = (&instance.study_uid, &instance.sop_uid);
    if !valid_uid(study) || !valid_uid(sop) {
        rx.refuse(Refusal {
            code: RefuseCode::Malformed,
            reason: "invalid UID in the offer".into(),
        });
        flush(&mut rx, &mut send)
            .await
            .map_err(|e| interrupted(&e))?;
        return Err(interrupted(
            &"the relay offered an instance with invalid UIDs",
        ));
    }
    let dir = out.join(study);
    let final_path = dir.join(format!("{sop}.dcm"));
    let part_path = dir.join(format!(".{sop}.dcm.part"));
    let r = store(
        &mut rx,
        &mut send,
        &mut recv,
        buf,
        &dir,
        &part_path,
        &final_path,
        counters,
    )
    .await;
    match r {
        Ok(()) => {
            let _ = send.finish();
            progress.received(study, sop, offer.size);
            Ok(instance)
        }
        Err(Step::Local(reason)) => {
            // Tell the relay why (it retries later and reports it); best effort: the link may
            // be what failed too.
            rx.refuse(Refusal {
                code: RefuseCode::Internal,
                reason: reason.clone(),
            });
            if flush(&mut rx, &mut send).await.is_ok() {
                let _ = send.finish();
            }
            Err(DownloadError::NotStored { instance, reason })
        }
        Err(Step::Link(e)) => Err(DownloadError::Interrupted(e)),
    }
}

/// Everything from the decision to the acknowledgement: `Have` when the instance is already
/// here, else receive into the partial file, verify, commit, `Stored`.
#[allow(clippy::too_many_arguments)]
async fn store(
    rx: &mut Receiver,
    send: &mut quinn::SendStream,
    recv: &mut quinn::RecvStream,
    buf: BytesMut,
    dir: &Path,
    part_path: &Path,
    final_path: &Path,
    counters: &Counters,
) -> Result<(), Step> {
    let d = dir.to_path_buf();
    tokio::task::spawn_blocking(move || create_private_dir(&d))
        .await
        .map_err(|e| Step::Local(e.to_string()))?
        .map_err(Step::Local)?;
    if let Ok(existing) = hash_file(final_path).await {
        if rx.offer().hash.is_none_or(|h| h == existing) {
            rx.have(existing).map_err(link)?;
            return flush(rx, send).await.map_err(link);
        }
    }
    let size = rx.offer().size;
    let (file, hasher, len) = open_partial(part_path.to_path_buf(), size)
        .await
        .map_err(Step::Local)?;
    let mut sink = Some(FileSink::spawn(file, hasher, part_path.to_path_buf(), len));
    let r = receive(rx, send, recv, buf, len, &mut sink, part_path, counters).await;
    if let Some(s) = sink {
        s.close().await;
    }
    let h = r?;
    commit(part_path, final_path, dir)
        .await
        .map_err(Step::Local)?;
    rx.stored(h).map_err(link)?;
    flush(rx, send).await.map_err(link)?;
    counters.instances.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Receive the instance's bytes into `sink`; returns its verified, fsync'ed hash.
#[allow(clippy::too_many_arguments)]
async fn receive(
    rx: &mut Receiver,
    send: &mut quinn::SendStream,
    recv: &mut quinn::RecvStream,
    mut buf: BytesMut,
    offset: u64,
    sink: &mut Option<FileSink>,
    part_path: &Path,
    counters: &Counters,
) -> Result<[u8; 32], Step> {
    rx.accept(offset).map_err(link)?;
    flush(rx, send).await.map_err(link)?;
    loop {
        while let Some(ev) = rx.poll_event() {
            match ev {
                ReceiverEvent::Data { bytes, .. } => {
                    let n = bytes.len() as u64;
                    let Some(w) = sink.as_mut() else {
                        return Err(link("data after the end of the instance"));
                    };
                    w.write(bytes).await.map_err(Step::Local)?;
                    counters.bytes.fetch_add(n, Ordering::Relaxed);
                }
                ReceiverEvent::Finish(h) => {
                    let Some(w) = sink.take() else {
                        return Err(link("the instance ended twice"));
                    };
                    if w.finish().await.map_err(Step::Local)? != h {
                        if let Err(e) = tokio::fs::remove_file(part_path).await {
                            tracing::warn!(
                                "cannot remove a damaged partial copy: {}",
                                io("remove", part_path, e)
                            );
                        }
                        rx.refuse(Refusal {
                            code: RefuseCode::HashMismatch,
                            reason: "received bytes do not match the relay's hash".into(),
                        });
                        // The refusal says it; the caller's refusal is then a no-op.
                        return Err(Step::Local(
                            "the received copy did not match the relay's hash (it was discarded; the relay sends it again)".into(),
                        ));
                    }
                    return Ok(h);
                }
            }
        }
        buf.reserve(256 * 1024);
        match recv.read_buf(&mut buf).await {
            Ok(0) => {
                rx.handle_end().map_err(link)?;
                return Err(link("the relay ended the delivery early"));
            }
            Ok(_) => rx.handle_input(buf.split().freeze()).map_err(link)?,
            // What arrived stays in the partial file for the next attempt to resume.
            Err(e) => return Err(link(e)),
        }
    }
}

async fn commit(part: &Path, final_path: &Path, dir: &Path) -> Result<(), String> {
    tokio::fs::rename(part, final_path)
        .await
        .map_err(|e| io("move into place", part, e))?;
    let d: PathBuf = dir.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(&d).and_then(|f| f.sync_all()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| io("save to disk the folder", dir, e))
}

async fn flush(rx: &mut Receiver, send: &mut quinn::SendStream) -> Result<(), String> {
    while let Some(b) = rx.poll_transmit() {
        send.write_chunk(b).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Open (or resume) the partial copy: the file positioned at its end, the hash of what it holds,
/// and its length (a partial longer than the instance starts over).
async fn open_partial(
    path: PathBuf,
    size: u64,
) -> Result<(std::fs::File, blake3::Hasher, u64), String> {
    tokio::task::spawn_blocking(move || {
        use std::io::Seek;
        let mut len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len > size {
            len = 0;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .mode(FILE_MODE)
            .open(&path)
            .map_err(|e| io("write", &path, e))?;
        // A partial copy left by an older version may be more open than that.
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
            .map_err(|e| io("restrict access to", &path, e))?;
        file.set_len(len).map_err(|e| io("truncate", &path, e))?;
        let hasher = crate::hashing::hash_prefix(&path, len).map_err(|e| io("read", &path, e))?;
        file.seek(std::io::SeekFrom::Start(len))
            .map_err(|e| io("seek", &path, e))?;
        Ok((file, hasher, len))
    })
    .await
    .map_err(|e| e.to_string())?
}

async fn hash_prefix(path: &Path, len: u64) -> Result<blake3::Hasher, String> {
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        crate::hashing::hash_prefix(&p, len).map_err(|e| io("read", &p, e))
    })
    .await
    .map_err(|e| e.to_string())?
}

async fn hash_file(path: &Path) -> Result<[u8; 32], String> {
    if !path.exists() {
        return Err("absent".into());
    }
    Ok(*hash_prefix(path, u64::MAX).await?.finalize().as_bytes())
}
