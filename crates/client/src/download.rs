//! One delivery from the relay, written through a resumable partial file.

use bytes::BytesMut;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use tokio::io::AsyncReadExt;
use yilian_proto::{
    valid_uid, FrameDecoder, Receiver, ReceiverEvent, Refusal, RefuseCode, Request,
};

use crate::read::Counters;
use crate::sink::FileSink;
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
    let (file, hasher, len) = open_partial(part_path.clone(), offer.size).await?;
    let mut sink = Some(FileSink::spawn(file, hasher, part_path.clone(), len));
    let r = receive(
        &mut rx, &mut send, &mut recv, buf, len, &mut sink, &part_path, counters,
    )
    .await;
    if let Some(s) = sink {
        s.close().await;
    }
    let h = r?;
    commit(&part_path, &final_path, &dir).await?;
    rx.stored(h).map_err(|e| e.to_string())?;
    flush(&mut rx, &mut send).await?;
    let _ = send.finish();
    counters.instances.fetch_add(1, Ordering::Relaxed);
    progress.received(study, sop, offer.size);
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
) -> Result<[u8; 32], String> {
    rx.accept(offset).map_err(|e| e.to_string())?;
    flush(rx, send).await?;
    loop {
        while let Some(ev) = rx.poll_event() {
            match ev {
                ReceiverEvent::Data { bytes, .. } => {
                    let n = bytes.len() as u64;
                    let Some(w) = sink.as_mut() else {
                        return Err("data after the end of the instance".into());
                    };
                    w.write(bytes).await?;
                    counters.bytes.fetch_add(n, Ordering::Relaxed);
                }
                ReceiverEvent::Finish(h) => {
                    let Some(w) = sink.take() else {
                        return Err("the instance ended twice".into());
                    };
                    if w.finish().await? != h {
                        let _ = tokio::fs::remove_file(part_path).await;
                        rx.refuse(Refusal {
                            code: RefuseCode::HashMismatch,
                            reason: "received bytes do not match the relay's hash".into(),
                        });
                        flush(rx, send).await?;
                        return Err("hash mismatch; the partial copy was discarded".into());
                    }
                    return Ok(h);
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
            // What arrived stays in the partial file for the next attempt to resume.
            Err(e) => return Err(e.to_string()),
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
            .open(&path)
            .map_err(|e| io("open", &path, e))?;
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
