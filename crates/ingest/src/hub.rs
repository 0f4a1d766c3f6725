//! The fan-out hub: instances still arriving, and the readers connected right now.

use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc, watch};
use yilian_proto::{Hash, InstanceRef};

/// Capacity of a live instance's broadcast, in chunks (each ≤ 256 KiB): the memory a live
/// instance may pin for readers that are up to date. Readers behind it read from the file.
pub const LIVE_WINDOW_CHUNKS: usize = 32;

/// How a live instance ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LiveOutcome {
    Stored(Hash),
    Failed,
}

/// An instance being uploaded right now, routed, that connected readers may receive as it
/// arrives (cut-through).
#[derive(Debug)]
pub struct LiveInstance {
    pub instance: InstanceRef,
    pub size: u64,
    pub priority: u8,
    /// Readers it is routed to.
    pub readers: Vec<String>,
    /// The partial file, open for reading (stays valid after the rename into `objects/`).
    pub file: File,
    chunks: broadcast::Sender<(u64, Bytes)>,
    written: watch::Sender<u64>,
    outcome: watch::Sender<Option<LiveOutcome>>,
    /// The published bytes not in the file yet.
    unflushed: Mutex<Unflushed>,
}

/// The published bytes of a live instance that its file does not hold yet: the spool writes
/// directly, gathering up to a buffer's worth before it writes (`yilian-store`'s `direct.rs`).
/// The chunks are shared with the broadcast (no copy); there is at most a buffer's worth and
/// one chunk of them.
#[derive(Debug, Default)]
struct Unflushed {
    /// The file holds the instance's bytes before this offset.
    in_file: u64,
    /// Published chunks that end after `in_file`, in order and contiguous.
    chunks: VecDeque<(u64, Bytes)>,
}

impl Unflushed {
    fn advance(&mut self, in_file: u64) {
        self.in_file = self.in_file.max(in_file);
        while let Some((o, b)) = self.chunks.front() {
            if o + b.len() as u64 > self.in_file {
                break;
            }
            self.chunks.pop_front();
        }
    }
}

/// Where a reader finds the bytes from an offset on ([`LiveInstance::held`]).
#[derive(Debug)]
pub enum Held {
    /// In the file, up to `until`.
    File { until: u64 },
    /// Only in memory: these pieces, in order (empty if those bytes were never published).
    Memory(Vec<Bytes>),
}

impl LiveInstance {
    /// `in_file` bytes are in `file`; `unwritten` (published nowhere yet) follow them.
    pub fn new(
        instance: InstanceRef,
        size: u64,
        priority: u8,
        readers: Vec<String>,
        file: File,
        in_file: u64,
        unwritten: Bytes,
    ) -> Self {
        let written = in_file + unwritten.len() as u64;
        let mut unflushed = Unflushed {
            in_file,
            chunks: VecDeque::new(),
        };
        if !unwritten.is_empty() {
            unflushed.chunks.push_back((in_file, unwritten));
        }
        Self {
            instance,
            size,
            priority,
            readers,
            file,
            chunks: broadcast::channel(LIVE_WINDOW_CHUNKS).0,
            written: watch::channel(written).0,
            outcome: watch::channel(None).0,
            unflushed: Mutex::new(unflushed),
        }
    }

    fn unflushed(&self) -> std::sync::MutexGuard<'_, Unflushed> {
        self.unflushed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes `[offset, offset + len)` were written; the file holds the first `in_file` bytes
    /// of the instance: publish them.
    ///
    /// Kept until in the file, then broadcast, then `written` advanced: a reader that finds
    /// nothing in its broadcast queue and `written` ahead of it really missed those bytes (it
    /// joined late or lagged) and reads them from the file or the unflushed chunks
    /// ([`held`](Self::held)); one that keeps up never touches either.
    pub fn publish(&self, offset: u64, bytes: Bytes, in_file: u64) {
        let end = offset + bytes.len() as u64;
        {
            let mut u = self.unflushed();
            if end > in_file {
                u.chunks.push_back((offset, bytes.clone()));
            }
            u.advance(in_file);
        }
        // No receiver is fine: nobody is watching live.
        let _ = self.chunks.send((offset, bytes));
        self.written.send_replace(end);
    }

    /// The file now holds the instance's first `in_file` bytes (a flush, a checkpoint).
    pub fn in_file(&self, in_file: u64) {
        self.unflushed().advance(in_file);
    }

    /// Where the published bytes from `pos` to `end` are: the file up to where it holds them,
    /// else shared pieces of the chunks it does not hold yet.
    pub fn held(&self, pos: u64, end: u64) -> Held {
        let u = self.unflushed();
        if pos < u.in_file {
            return Held::File {
                until: end.min(u.in_file),
            };
        }
        let mut pieces = Vec::new();
        for (o, b) in &u.chunks {
            let chunk_end = o + b.len() as u64;
            if chunk_end <= pos {
                continue;
            }
            if *o >= end {
                break;
            }
            let from = pos.max(*o) - o;
            let to = end.min(chunk_end) - o;
            pieces.push(b.slice(from as usize..to as usize));
        }
        Held::Memory(pieces)
    }

    pub fn finish(&self, outcome: LiveOutcome) {
        self.outcome.send_replace(Some(outcome));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<(u64, Bytes)> {
        self.chunks.subscribe()
    }

    pub fn written(&self) -> watch::Receiver<u64> {
        self.written.subscribe()
    }

    pub fn outcome(&self) -> watch::Receiver<Option<LiveOutcome>> {
        self.outcome.subscribe()
    }
}

/// Work for a reader session.
#[derive(Debug, Clone)]
pub enum Job {
    /// Deliver this instance while it arrives.
    Live(Arc<LiveInstance>),
    /// This instance was stored and routed to the reader.
    Stored(InstanceRef),
    /// This study may have become complete: check whether to tell the reader.
    Study(String),
}

#[derive(Default)]
struct Inner {
    /// By (study, SOP Instance UID): within a study, which belongs to one site, unique.
    live: HashMap<InstanceRef, Arc<LiveInstance>>,
    readers: HashMap<String, (u64, mpsc::UnboundedSender<Job>)>,
    next_session: u64,
}

/// Shared between ingest tasks and reader sessions.
#[derive(Default)]
pub struct Hub {
    inner: Mutex<Inner>,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Announce a routed live instance to the readers connected now.
    pub fn start_live(&self, live: Arc<LiveInstance>) {
        let mut g = self.lock();
        for r in &live.readers {
            if let Some((_, tx)) = g.readers.get(r) {
                let _ = tx.send(Job::Live(live.clone()));
            }
        }
        g.live.insert(live.instance.clone(), live);
    }

    /// The instance is no longer arriving.
    pub fn end_live(&self, instance: &InstanceRef) {
        self.lock().live.remove(instance);
    }

    /// Tell connected readers that an instance was stored for them.
    pub fn stored(&self, instance: &InstanceRef, readers: &[String]) {
        let g = self.lock();
        for r in readers {
            if let Some((_, tx)) = g.readers.get(r) {
                let _ = tx.send(Job::Stored(instance.clone()));
            }
        }
    }

    /// Ask every connected reader session to check whether `study_uid` is complete for it.
    pub fn study_progress(&self, study_uid: &str) {
        let g = self.lock();
        for (_, tx) in g.readers.values() {
            let _ = tx.send(Job::Study(study_uid.to_string()));
        }
    }

    /// Register a reader session; a newer session of the same reader replaces the older one
    /// (whose channel closes). Returns the session id, its job channel and the live instances
    /// routed to it right now.
    pub fn connect_reader(
        &self,
        reader: &str,
    ) -> (u64, mpsc::UnboundedReceiver<Job>, Vec<Arc<LiveInstance>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut g = self.lock();
        g.next_session += 1;
        let id = g.next_session;
        g.readers.insert(reader.to_string(), (id, tx));
        let live = g
            .live
            .values()
            .filter(|l| l.readers.iter().any(|r| r == reader))
            .cloned()
            .collect();
        (id, rx, live)
    }

    pub fn disconnect_reader(&self, reader: &str, session: u64) {
        let mut g = self.lock();
        if g.readers.get(reader).is_some_and(|(id, _)| *id == session) {
            g.readers.remove(reader);
        }
    }

    /// Whether any of `readers` is connected now.
    pub fn any_connected(&self, readers: &[String]) -> bool {
        let g = self.lock();
        readers.iter().any(|r| g.readers.contains_key(r))
    }

    /// Readers connected now.
    pub fn connected_readers(&self) -> Vec<String> {
        let mut v: Vec<String> = self.lock().readers.keys().cloned().collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;
    use yilian_store::{PartialInfo, Store, StoreOptions};
    use yilian_testkit::Rng;

    /// Bytes `[pos, end)` as a reader that missed them gets them: from the file as far as it
    /// holds them, the rest from memory.
    fn missed(live: &LiveInstance, mut pos: u64, end: u64, seen: &mut (usize, usize)) -> Vec<u8> {
        let mut out = Vec::new();
        while pos < end {
            match live.held(pos, end) {
                Held::File { until } => {
                    let mut buf = vec![0u8; (until - pos) as usize];
                    live.file.read_exact_at(&mut buf, pos).unwrap();
                    out.extend_from_slice(&buf);
                    pos = until;
                    seen.0 += 1;
                }
                Held::Memory(pieces) => {
                    assert!(
                        !pieces.is_empty(),
                        "bytes {pos}..{end} are neither in the file nor in memory"
                    );
                    for p in pieces {
                        pos += p.len() as u64;
                        out.extend_from_slice(&p);
                    }
                    seen.1 += 1;
                }
            }
        }
        out
    }

    /// The spool writes live uploads directly, so the newest bytes (up to a buffer's worth)
    /// are in no file until the buffer is full, flushed at a checkpoint or parked. A reader
    /// that missed bytes (it joined late, or fell out of the broadcast) at any moment of any
    /// interleaving of writes, checkpoints and parks finds every published byte, exactly, in
    /// the file or in the chunks kept in memory, and memory keeps no more than a buffer's
    /// worth and one chunk.
    #[test]
    fn a_reader_that_missed_bytes_finds_each_one_in_the_file_or_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with(dir.path(), StoreOptions::with_ready_files(32)).unwrap();
        let mut seen = (0usize, 0usize);
        let mut direct_seen = false;
        for seed in 0..24u64 {
            let mut rng = Rng::new(seed, 0);
            let size = 1 + rng.below(4 << 20);
            let data: Vec<u8> = (0..size)
                .map(|i| (i as u8).wrapping_mul(29) ^ (i >> 11) as u8 ^ seed as u8)
                .collect();
            let mut p = store
                .open_partial(PartialInfo {
                    source_site: "township-a".into(),
                    study_uid: "1.2.9".into(),
                    sop_uid: format!("1.2.9.{seed}"),
                    size,
                })
                .unwrap();
            let max_piece = 1 + rng.below(300_000);
            let piece = |rng: &mut Rng, at: u64| (1 + rng.below(max_piece)).min(size - at);
            // Routed (made live) after its header: some bytes in, perhaps not in the file.
            let route_at = rng.below(size / 3 + 1);
            while p.len() < route_at {
                let at = p.len();
                let n = piece(&mut rng, at);
                p.write(&data[at as usize..(at + n) as usize]).unwrap();
            }
            let live = LiveInstance::new(
                InstanceRef {
                    study_uid: "1.2.9".into(),
                    sop_uid: format!("1.2.9.{seed}"),
                },
                size,
                0,
                Vec::new(),
                File::open(p.path()).unwrap(),
                p.readable(),
                Bytes::from(p.unwritten()),
            );
            assert_eq!(*live.written().borrow(), p.len());
            while p.len() < size {
                let at = p.len();
                let n = piece(&mut rng, at);
                let bytes = Bytes::copy_from_slice(&data[at as usize..(at + n) as usize]);
                p.write(&bytes).unwrap();
                direct_seen |= p.readable() < p.len();
                live.publish(at, bytes, p.readable());
                match rng.below(8) {
                    0 => {
                        p.sync().unwrap();
                        live.in_file(p.readable());
                    }
                    1 => {
                        p.park().unwrap();
                        live.in_file(p.readable());
                    }
                    _ => {}
                }
                let kept: u64 = live
                    .unflushed()
                    .chunks
                    .iter()
                    .map(|(_, b)| b.len() as u64)
                    .sum();
                assert!(
                    kept <= (1 << 20) + max_piece,
                    "seed {seed}: {kept} bytes kept in memory"
                );
                let len = p.len();
                let from = rng.below(len);
                let got = missed(&live, from, len, &mut seen);
                assert!(
                    got == data[from as usize..len as usize],
                    "seed {seed}: bytes {from}..{len} differ"
                );
            }
            p.discard();
        }
        assert!(seen.0 > 0, "no bytes came from the file");
        if direct_seen {
            assert!(seen.1 > 0, "no bytes came from memory");
        }
    }
}
