//! The reader's file writer: hashing and disk writes off the async threads.
//!
//! A delivery hands received chunks to a blocking thread through a small bounded queue (which
//! bounds memory; QUIC flow control does the rest). The thread hashes with BLAKE3, appends to
//! the partial file, and starts write-back every [`WRITEBACK_EVERY`] bytes so the final fsync
//! waits for the last few MiB only, not for the whole instance.

use bytes::Bytes;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use tokio::sync::{mpsc, oneshot};

/// Chunks queued between the stream and the writer thread.
const QUEUE: usize = 8;
/// Start kernel write-back after this many bytes.
const WRITEBACK_EVERY: u64 = 8 << 20;

enum Cmd {
    Data(Bytes),
    /// Hash what was written, fsync, and answer with the hash.
    Finish(oneshot::Sender<Result<[u8; 32], String>>),
}

/// A partial file being written on a blocking thread.
pub(crate) struct FileSink {
    tx: mpsc::Sender<Cmd>,
    failed: Option<oneshot::Receiver<String>>,
    thread: tokio::task::JoinHandle<()>,
}

impl FileSink {
    /// Take over `file`, positioned at its end, whose first bytes hashed to `hasher`.
    pub(crate) fn spawn(file: File, hasher: blake3::Hasher, path: PathBuf, offset: u64) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (fail_tx, fail_rx) = oneshot::channel();
        let thread = tokio::task::spawn_blocking(move || {
            if let Err(e) = run(file, hasher, &path, offset, rx) {
                let _ = fail_tx.send(e);
            }
        });
        FileSink {
            tx,
            failed: Some(fail_rx),
            thread,
        }
    }

    /// Queue a chunk (waits while the writer is behind).
    pub(crate) async fn write(&mut self, bytes: Bytes) -> Result<(), String> {
        if self.tx.send(Cmd::Data(bytes)).await.is_err() {
            return Err(self.failure().await);
        }
        Ok(())
    }

    /// Everything written: hash, fsync, and return the hash.
    pub(crate) async fn finish(mut self) -> Result<[u8; 32], String> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Cmd::Finish(tx)).await.is_err() {
            return Err(self.failure().await);
        }
        match rx.await {
            Ok(r) => r,
            Err(_) => Err(self.failure().await),
        }
    }

    /// The delivery broke off: let the thread write what is queued and close the file, so the
    /// next attempt finds a partial file nobody else is writing.
    pub(crate) async fn close(self) {
        drop(self.tx);
        if let Err(e) = self.thread.await {
            tracing::warn!("the file writer of a broken-off delivery ended abnormally: {e}");
        }
    }

    async fn failure(&mut self) -> String {
        match self.failed.take() {
            Some(rx) => rx
                .await
                .unwrap_or_else(|_| "the file writer stopped".into()),
            None => "the file writer stopped".into(),
        }
    }
}

fn run(
    mut file: File,
    mut hasher: blake3::Hasher,
    path: &std::path::Path,
    mut offset: u64,
    mut rx: mpsc::Receiver<Cmd>,
) -> Result<(), String> {
    let err = |what: &str, e: std::io::Error| crate::download::io(what, path, e);
    let mut written_back = offset;
    while let Some(cmd) = rx.blocking_recv() {
        match cmd {
            Cmd::Data(b) => {
                hasher.update(&b);
                file.write_all(&b).map_err(|e| err("write", e))?;
                offset += b.len() as u64;
                if offset - written_back >= WRITEBACK_EVERY {
                    start_writeback(&file, written_back, offset - written_back);
                    written_back = offset;
                }
            }
            Cmd::Finish(answer) => {
                let r = file
                    .sync_all()
                    .map(|_| *hasher.finalize().as_bytes())
                    .map_err(|e| err("save to disk", e));
                let _ = answer.send(r);
                return Ok(());
            }
        }
    }
    // The delivery was interrupted: what was written stays for the resumed attempt.
    Ok(())
}

#[cfg(target_os = "linux")]
fn start_writeback(file: &File, from: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: valid fd for the lifetime of `file`; the call only schedules write-back, and a
    // failure is harmless (the final fsync writes everything).
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            from as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _from: u64, _len: u64) {}
