//! One instance upload on its own stream, resuming at the offset the relay holds.

use bytes::Bytes;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;
use yilian_proto::{Offer, Refusal, Sender, SenderEvent};
use yilian_transport::priority;

use crate::send::{FileOutcome, Job};
use crate::write_order::WriteTurn;
use crate::Progress;

/// File read granularity.
const CHUNK: usize = 256 * 1024;

pub(crate) enum UploadError {
    /// The relay refused the instance.
    Refused(Refusal),
    /// A local problem with the file (unreadable, changed while sending).
    Local(String),
    /// The connection or stream broke: retry on a new connection, resuming.
    Link(String),
    /// The relay asked us to pause while data was queued on the stream: the stream was reset
    /// (dropping what QUIC had not sent yet, so the link frees up at once). Offer again right
    /// away; the relay answers with the offset it holds and keeps us paused until it resumes us.
    Yielded,
}

/// Stream reset code: paused for an urgent upload (the relay keeps what arrived).
const YIELD_CODE: u32 = 1;

fn link(e: impl std::fmt::Display) -> UploadError {
    UploadError::Link(e.to_string())
}

pub(crate) async fn upload_one(
    conn: &quinn::Connection,
    job: &Job,
    priority: u8,
    seq: u64,
    turn: &mut WriteTurn<'_>,
    progress: &dyn Progress,
    bytes_sent: &AtomicU64,
) -> Result<FileOutcome, UploadError> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(link)?;
    send.set_priority(priority::OFFER).map_err(link)?;
    let mut sender = Sender::new(Offer {
        instance: job.instance.clone(),
        size: job.size,
        priority,
        // Known up front only for a file whose SOP Instance UID another file of this run has:
        // the relay then answers at once whether it holds exactly this content.
        hash: job.hash,
        facts: Some(job.facts.clone()),
    });
    // Replies are read by their own task so that checkpoints arrive while we send.
    let (tx, mut replies) = mpsc::unbounded_channel::<Result<Option<Bytes>, String>>();
    let reader = tokio::spawn(async move {
        loop {
            let r = recv.read_chunk(64 * 1024, true).await;
            let end = !matches!(r, Ok(Some(_)));
            let _ = tx.send(r.map(|c| c.map(|c| c.bytes)).map_err(|e| e.to_string()));
            if end {
                return;
            }
        }
    });
    let _guard = AbortOnDrop(reader);
    let mut acked = 0u64;
    let mut written_here = 0u64;
    let mut paused = Paused {
        progress,
        on: false,
    };
    let mut resumed_from = 0u64;
    let mut file: Option<FileSend> = None;
    loop {
        while let Some(b) = sender.poll_transmit() {
            send.write_chunk(b).await.map_err(link)?;
        }
        while let Some(ev) = sender.poll_event() {
            match ev {
                SenderEvent::Accepted { offset } => {
                    tracing::debug!(sop_uid = %job.instance.sop_uid, offset, size = job.size, "accepted");
                    resumed_from = offset;
                    turn.accepted();
                    // In order behind the uploads started before (see `yilian_transport::priority`).
                    send.set_priority(priority::data(priority, seq))
                        .map_err(link)?;
                    report_ack(progress, &mut acked, offset);
                    let mut f = FileSend::open(&job.path, offset, job.size).await?;
                    if f.done() {
                        // The relay already holds every byte (e.g. it crashed while
                        // committing): only the hash is left to send.
                        let hash = f.finish();
                        sender.finish(hash).map_err(link)?;
                        turn.done();
                    }
                    file = Some(f);
                }
                SenderEvent::Checkpoint { durable } => report_ack(progress, &mut acked, durable),
                SenderEvent::Stored { hash } => {
                    let mine = file.as_ref().and_then(|f| f.hash);
                    if mine.is_some_and(|h| h != hash) {
                        return Err(UploadError::Local(
                            "the relay stored a different hash".into(),
                        ));
                    }
                    report_ack(progress, &mut acked, job.size);
                    let _ = send.finish();
                    return Ok(FileOutcome::Stored { resumed_from });
                }
                SenderEvent::Have { hash } => {
                    let path = job.path.clone();
                    let local = tokio::task::spawn_blocking(move || {
                        crate::hashing::hash_prefix(&path, u64::MAX)
                            .map(|h| *h.finalize().as_bytes())
                            .map_err(|e| {
                                UploadError::Local(format!("cannot read {}: {e}", path.display()))
                            })
                    })
                    .await
                    .map_err(|e| UploadError::Local(e.to_string()))??;
                    let _ = send.finish();
                    if local != hash {
                        return Ok(FileOutcome::Failed {
                            reason: "the relay already holds a different instance with this SOP Instance UID".into(),
                        });
                    }
                    report_ack(progress, &mut acked, job.size);
                    return Ok(FileOutcome::AlreadyStored);
                }
                SenderEvent::Refused(r) => return Err(UploadError::Refused(r)),
                SenderEvent::Held => {
                    tracing::info!(sop_uid = %job.instance.sop_uid, "paused: the relay gives an urgent upload from this site the link");
                    if written_here > 0 {
                        // Up to a send window of our data may still wait in QUIC's buffers;
                        // drop it so the urgent study gets the link now, and offer again.
                        let _ = send.reset(YIELD_CODE.into());
                        return Err(UploadError::Yielded);
                    }
                    // Out of the write order while held: the uploads behind it (the urgent
                    // one among them) must not wait for it.
                    turn.held(true);
                    paused.set(true);
                }
                SenderEvent::Resumed => {
                    tracing::info!(sop_uid = %job.instance.sop_uid, "resumed");
                    turn.held(false);
                    paused.set(false);
                }
            }
        }
        // Frames queued while handling events (a Finish right after Accept at the end).
        while let Some(b) = sender.poll_transmit() {
            send.write_chunk(b).await.map_err(link)?;
        }
        // Send the next chunk, taking any reply that is already there in between.
        if let Some(f) = file.as_mut().filter(|f| !f.done() && !sender.is_held()) {
            if !turn.ready() {
                // Uploads started earlier write first (write_order.rs); replies still count.
                tokio::select! {
                    _ = turn.wait() => {}
                    r = replies.recv() => match r {
                        Some(r) => feed(&mut sender, r)?,
                        None => return Err(link("stream closed by the relay")),
                    },
                }
                continue;
            }
            let chunk = f.next().await?;
            let n = chunk.len() as u64;
            let w = write_taking_replies(&mut send, chunk, &mut replies, &mut sender).await?;
            bytes_sent.fetch_add(w.written, Ordering::Relaxed);
            written_here += w.written;
            if w.held {
                // Held in the middle of a chunk: what we queued may wait in QUIC's buffers;
                // drop it so the urgent study gets the link now, and offer again.
                tracing::info!(sop_uid = %job.instance.sop_uid, "paused: the relay gives an urgent upload from this site the link");
                let _ = send.reset(YIELD_CODE.into());
                return Err(UploadError::Yielded);
            }
            sender.data_sent(n).map_err(link)?;
            if f.done() {
                tracing::debug!(sop_uid = %job.instance.sop_uid, "all bytes sent, finishing");
                let hash = f.finish();
                sender.finish(hash).map_err(link)?;
                turn.done();
            }
            match replies.try_recv() {
                Ok(r) => feed(&mut sender, r)?,
                Err(mpsc::error::TryRecvError::Empty) => {}
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    return Err(link("stream closed by the relay"))
                }
            }
            continue;
        }
        match replies.recv().await {
            Some(r) => feed(&mut sender, r)?,
            None => return Err(link("stream closed by the relay")),
        }
    }
}

fn feed(sender: &mut Sender, r: Result<Option<Bytes>, String>) -> Result<(), UploadError> {
    match r {
        Ok(Some(b)) => sender.handle_input(b).map_err(link),
        Ok(None) => {
            sender.handle_end().map_err(link)?;
            Err(link("the relay ended the stream early"))
        }
        Err(e) => Err(link(e)),
    }
}

/// How far [`write_taking_replies`] got.
struct Wrote {
    /// Bytes of the chunk written to the stream.
    written: u64,
    /// The relay held us before the whole chunk was written.
    held: bool,
}

/// Write `chunk`, feeding the relay's replies to `sender` as they arrive: with the send buffer
/// full (uploads queue behind each other on the link) a write can wait for seconds, and a
/// `Hold` must not wait with it. Stops early, with `held`, if the relay holds us. Replies other
/// than `Hold` stay queued as events for the caller; nothing is transmitted here, so frames
/// never land inside the data.
async fn write_taking_replies(
    send: &mut quinn::SendStream,
    chunk: Bytes,
    replies: &mut mpsc::UnboundedReceiver<Result<Option<Bytes>, String>>,
    sender: &mut Sender,
) -> Result<Wrote, UploadError> {
    let len = chunk.len() as u64;
    let mut bufs = [chunk];
    let mut replies_open = true;
    while !bufs[0].is_empty() {
        tokio::select! {
            biased;
            r = replies.recv(), if replies_open => match r {
                Some(r) => {
                    feed(sender, r)?;
                    if sender.is_held() {
                        return Ok(Wrote { written: len - bufs[0].len() as u64, held: true });
                    }
                }
                // The reader task ended (stream finished or broken): the write will tell.
                None => replies_open = false,
            },
            // Cancel-safe: what was written is taken off the front of `bufs`.
            w = send.write_chunks(&mut bufs) => {
                w.map_err(link)?;
            }
        }
    }
    Ok(Wrote {
        written: len,
        held: false,
    })
}

fn report_ack(progress: &dyn Progress, acked: &mut u64, now: u64) {
    if now > *acked {
        progress.acknowledged(now - *acked);
        *acked = now;
    }
}

/// Reports this upload's pause to the progress, and its end when the upload ends held.
struct Paused<'a> {
    progress: &'a dyn Progress,
    on: bool,
}

impl Paused<'_> {
    fn set(&mut self, on: bool) {
        if self.on != on {
            self.on = on;
            self.progress.paused(on);
        }
    }
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        self.set(false);
    }
}

/// Aborts a task when dropped.
pub(crate) struct AbortOnDrop<T = ()>(pub(crate) tokio::task::JoinHandle<T>);
impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Streams `[offset, size)` of a file, hashing the whole file as it goes. Reading and hashing
/// run ahead on a blocking thread (a few chunks), so the async side only moves `Bytes`.
struct FileSend {
    chunks: mpsc::Receiver<Result<Read, String>>,
    pos: u64,
    size: u64,
    hash: Option<[u8; 32]>,
}

/// What the read-ahead thread produces.
enum Read {
    Chunk(Bytes),
    /// The whole file has been hashed.
    End([u8; 32]),
}

/// Chunks read ahead of the network.
const READ_AHEAD: usize = 4;

impl FileSend {
    async fn open(path: &Path, offset: u64, size: u64) -> Result<FileSend, UploadError> {
        let (tx, chunks) = mpsc::channel(READ_AHEAD);
        let p = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = read_ahead(&p, offset, size, &tx) {
                let _ = tx.blocking_send(Err(format!("cannot read {}: {e}", p.display())));
            }
        });
        let mut f = FileSend {
            chunks,
            pos: offset,
            size,
            hash: None,
        };
        if f.done() {
            f.take_end().await?;
        }
        Ok(f)
    }

    fn done(&self) -> bool {
        self.pos >= self.size
    }

    async fn recv(&mut self) -> Result<Read, UploadError> {
        match self.chunks.recv().await {
            Some(Ok(r)) => Ok(r),
            Some(Err(e)) => Err(UploadError::Local(e)),
            None => Err(UploadError::Local("the file reader stopped".into())),
        }
    }

    async fn take_end(&mut self) -> Result<(), UploadError> {
        match self.recv().await? {
            Read::End(h) => {
                self.hash = Some(h);
                Ok(())
            }
            Read::Chunk(_) => Err(UploadError::Local(
                "the file got longer while it was being sent".into(),
            )),
        }
    }

    async fn next(&mut self) -> Result<Bytes, UploadError> {
        let Read::Chunk(chunk) = self.recv().await? else {
            return Err(UploadError::Local(
                "the file got shorter while it was being sent".into(),
            ));
        };
        self.pos += chunk.len() as u64;
        if self.done() {
            self.take_end().await?;
        }
        Ok(chunk)
    }

    /// The whole file's hash (known once every chunk was read).
    fn finish(&mut self) -> [u8; 32] {
        self.hash.unwrap_or_default()
    }
}

/// The read-ahead thread: hash `[0, offset)`, then read, hash and hand over `[offset, size)`.
fn read_ahead(
    path: &Path,
    offset: u64,
    size: u64,
    tx: &mpsc::Sender<Result<Read, String>>,
) -> std::io::Result<()> {
    use std::io::{Read as _, Seek};
    let mut hasher = crate::hashing::hash_prefix(path, offset)?;
    let mut file = std::fs::File::open(path)?;
    file.seek(std::io::SeekFrom::Start(offset))?;
    let mut pos = offset;
    while pos < size {
        let want = ((size - pos) as usize).min(CHUNK);
        let mut buf = Vec::with_capacity(want);
        // `take` stops at `want` without an extra probing read.
        let got = (&mut file).take(want as u64).read_to_end(&mut buf)?;
        let short = got < want;
        let chunk = Bytes::from(buf);
        hasher.update(&chunk);
        pos += chunk.len() as u64;
        if !chunk.is_empty() && tx.blocking_send(Ok(Read::Chunk(chunk))).is_err() {
            return Ok(()); // the upload stopped
        }
        if short {
            let _ = tx.blocking_send(Err("the file got shorter while it was being sent".into()));
            return Ok(());
        }
    }
    let _ = tx.blocking_send(Ok(Read::End(*hasher.finalize().as_bytes())));
    Ok(())
}
