//! One delivery from the relay, written through a resumable partial file.

use bytes::BytesMut;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use yilian_proto::{
    valid_uid, FrameDecoder, Receiver, ReceiverEvent, Refusal, RefuseCode, Request,
};

use crate::read::Counters;
use crate::Progress;

fn io(what: &str, p: &Path, e: std::io::Error) -> String {
    format!("cannot {what} {}: {e}", p.display())
}

pub(crate) async fn download(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    out: &Path,
    counters: &Counters,
    progress: &dyn Progress,
) -> Result<(), String> {
    let mut dec = FrameDecoder::new();
    let mut buf = BytesMut::with_capacity(256 * 1024);
    let offer = loop {
        if let Some(Request::Offer(o)) = dec
            .next_frame::<Request>("offer")
            .map_err(|e| e.to_string())?
        {
            break o;
        }
        buf.reserve(64 * 1024);
        if recv.read_buf(&mut buf).await.map_err(|e| e.to_string())? == 0 {
            return Err("stream ended before the offer".into());
        }
        dec.push(buf.split().freeze());
    };
    let mut rx = Receiver::new(offer.clone(), dec, u64::MAX).map_err(|e| e.to_string())?;
    let (study, sop) = (&offer.instance.study_uid, &offer.instance.sop_uid);
    if !valid_uid(study) || !valid_uid(sop) {
        rx.refuse(Refusal {
            code: RefuseCode::Malformed,
            reason: "invalid UID in the offer".into(),
        });
        flush(&mut rx, &mut send).await?;
        return Err("the relay offered an instance with invalid UIDs".into());
    }
    let dir = out.join(study);
    let final_path = dir.join(format!("{sop}.dcm"));
    let part_path = dir.join(format!(".{sop}.dcm.part"));
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| io("create", &dir, e))?;

    if let Ok(existing) = hash_file(&final_path).await {
        if offer.hash.is_none_or(|h| h == existing) {
            rx.have(existing).map_err(|e| e.to_string())?;
            flush(&mut rx, &mut send).await?;
            let _ = send.finish();
            return Ok(());
        }
    }
    let mut len = tokio::fs::metadata(&part_path)
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    if len > offer.size {
        len = 0;
    }
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&part_path)
        .await
        .map_err(|e| io("open", &part_path, e))?;
    file.set_len(len)
        .await
        .map_err(|e| io("truncate", &part_path, e))?;
    let mut hasher = hash_prefix(&part_path, len).await?;
    use tokio::io::AsyncSeekExt;
    file.seek(std::io::SeekFrom::Start(len))
        .await
        .map_err(|e| io("seek", &part_path, e))?;
    rx.accept(len).map_err(|e| e.to_string())?;
    flush(&mut rx, &mut send).await?;
    loop {
        while let Some(ev) = rx.poll_event() {
            match ev {
                ReceiverEvent::Data { bytes, .. } => {
                    hasher.update(&bytes);
                    file.write_all(&bytes)
                        .await
                        .map_err(|e| io("write", &part_path, e))?;
                    counters
                        .bytes
                        .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                }
                ReceiverEvent::Finish(h) => {
                    if *hasher.finalize().as_bytes() != h {
                        drop(file);
                        let _ = tokio::fs::remove_file(&part_path).await;
                        rx.refuse(Refusal {
                            code: RefuseCode::HashMismatch,
                            reason: "received bytes do not match the relay's hash".into(),
                        });
                        flush(&mut rx, &mut send).await?;
                        return Err("hash mismatch; the partial copy was discarded".into());
                    }
                    file.flush().await.map_err(|e| io("write", &part_path, e))?;
                    file.sync_all()
                        .await
                        .map_err(|e| io("fsync", &part_path, e))?;
                    drop(file);
                    commit(&part_path, &final_path, &dir).await?;
                    rx.stored(h).map_err(|e| e.to_string())?;
                    flush(&mut rx, &mut send).await?;
                    let _ = send.finish();
                    counters.instances.fetch_add(1, Ordering::Relaxed);
                    progress.received(study, sop, offer.size);
                    return Ok(());
                }
            }
        }
        buf.reserve(256 * 1024);
        match recv.read_buf(&mut buf).await {
            Ok(0) => {
                rx.handle_end().map_err(|e| e.to_string())?;
                return Err("the relay ended the delivery early".into());
            }
            Ok(_) => rx
                .handle_input(buf.split().freeze())
                .map_err(|e| e.to_string())?,
            Err(e) => {
                // Keep what arrived (flushed) for the next attempt to resume.
                let _ = file.flush().await;
                return Err(e.to_string());
            }
        }
    }
}

async fn commit(part: &Path, final_path: &Path, dir: &Path) -> Result<(), String> {
    tokio::fs::rename(part, final_path)
        .await
        .map_err(|e| io("rename", part, e))?;
    let d: PathBuf = dir.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(&d).and_then(|f| f.sync_all()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| io("fsync", dir, e))
}

async fn flush(rx: &mut Receiver, send: &mut quinn::SendStream) -> Result<(), String> {
    while let Some(b) = rx.poll_transmit() {
        send.write_chunk(b).await.map_err(|e| e.to_string())?;
    }
    Ok(())
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
