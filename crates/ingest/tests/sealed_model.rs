//! A seeded model of the sealed path's waits, over many interleavings.
//!
//! An upload of unknown size (a C-STORE) is acknowledged once sealed and committed after; its
//! lease of (site, SOP Instance UID) is held until that commit is done, so a second upload of
//! the same instance waits, then sees the first one's outcome (same content: already stored;
//! other content: a conflict). Front doors may also let go at any moment: before the first
//! byte (the writer has not opened its partial yet), mid-data, or right after the last byte,
//! while the writer seals.
//!
//! Each seed draws a scenario — which uploads of which instances (two contents per UID), in
//! what pieces, with what pauses, ending how — and runs it on a two-thread runtime against a
//! real store. Whatever the interleaving:
//! * every scenario ends (no upload waits forever for a lease);
//! * an acknowledged upload's content is what the store holds for that UID, and all
//!   acknowledgements of one UID agree;
//! * a refusal is only ever a conflict with the content stored;
//! * nothing is left behind: no lease, no sealed file waiting for a commit, no scratch data.

mod common;

use bytes::Bytes;
use common::{config, console};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use yilian_ingest::{next_conn, Event, Ingest, Opened, UploadSpec};
use yilian_proto::{Hash, RefuseCode};
use yilian_route::Topology;
use yilian_store::Store;

/// A small deterministic generator (xorshift64*), so a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Copy, Debug)]
enum Ending {
    /// Wait for the answer, then close.
    Answer,
    /// Let go right after the last byte, while the writer seals.
    DropAfterFinish,
    /// Let go mid-data.
    DropMidData,
    /// Close mid-data.
    CloseMidData,
    /// Let go right after the open, before any byte (the writer of an upload that cannot
    /// resume opens its partial only with its first bytes: it must still end, and the lease
    /// pass on).
    DropBeforeData,
}

#[derive(Debug)]
enum Outcome {
    Stored(Hash),
    Refused(RefuseCode, String),
    LetGo,
}

#[derive(Clone, Debug)]
struct Plan {
    instance: usize,
    variant: usize,
    ending: Ending,
    /// Piece sizes are drawn from this seed.
    pieces: u64,
    /// Pause before starting, in ms.
    start_after: u64,
}

/// Files with data under `dir` (the pool's empty files do not count).
fn with_data(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(with_data(&p));
        } else if e.metadata().map(|m| m.len() > 0).unwrap_or(false) {
            out.push(p.display().to_string());
        }
    }
    out
}

async fn run_upload(
    ingest: Arc<Ingest>,
    sop_uid: String,
    bytes: Bytes,
    plan: Plan,
) -> (Plan, Outcome) {
    let mut rng = Rng::new(plan.pieces);
    tokio::time::sleep(Duration::from_millis(plan.start_after)).await;
    let spec = UploadSpec {
        sop_uid,
        ..UploadSpec::default()
    };
    let mut up = match ingest.begin(Arc::new(console()), spec, next_conn()).await {
        Ok(u) => u,
        Err(r) => return (plan, Outcome::Refused(r.code, r.reason)),
    };
    if let Err(r) = up.lease().await {
        return (plan, Outcome::Refused(r.code, r.reason));
    }
    match up.open().await {
        Ok(Opened::At(0)) => {}
        Ok(other) => panic!("an upload of unknown size opened as {other:?}"),
        Err(r) => return (plan, Outcome::Refused(r.code, r.reason)),
    }
    if let Ending::DropBeforeData = plan.ending {
        drop(up);
        return (plan, Outcome::LetGo);
    }
    let cut_at = match plan.ending {
        Ending::DropMidData | Ending::CloseMidData => rng.below(bytes.len() as u64) as usize,
        _ => bytes.len(),
    };
    let mut at = 0;
    while at < cut_at {
        let n = (1 + rng.below(48 * 1024) as usize).min(cut_at - at);
        if !up.data(bytes.slice(at..at + n)).await {
            break;
        }
        at += n;
        match rng.below(4) {
            0 => tokio::task::yield_now().await,
            1 => tokio::time::sleep(Duration::from_micros(rng.below(500))).await,
            _ => {}
        }
    }
    match plan.ending {
        Ending::DropMidData => {
            drop(up);
            return (plan, Outcome::LetGo);
        }
        Ending::CloseMidData => {
            up.close().await;
            return (plan, Outcome::LetGo);
        }
        Ending::Answer | Ending::DropAfterFinish | Ending::DropBeforeData => {}
    }
    up.finish(None).await;
    if let Ending::DropAfterFinish = plan.ending {
        drop(up);
        return (plan, Outcome::LetGo);
    }
    let outcome = loop {
        match up.next_event().await {
            Event::Stored(h) => break Outcome::Stored(h),
            Event::Refused(r) => break Outcome::Refused(r.code, r.reason),
            Event::Hold(_) | Event::Checkpoint(_) => {}
        }
    };
    up.close().await;
    (plan, outcome)
}

async fn scenario(seed: u64, files: &[Vec<(Bytes, Hash)>], sops: &[String], root: &Path) {
    let data = root.join(format!("seed-{seed}"));
    let store = Arc::new(
        Store::open_with(&data, yilian_store::StoreOptions::with_ready_files(32)).unwrap(),
    );
    let ingest = Arc::new(Ingest::new(
        store.clone(),
        Arc::new(Topology::example()),
        config(),
    ));
    let mut rng = Rng::new(seed);
    let uploads = 3 + rng.below(6) as usize;
    let mut tasks = Vec::new();
    for _ in 0..uploads {
        let ending = match rng.below(9) {
            0 => Ending::DropAfterFinish,
            1 => Ending::DropMidData,
            2 => Ending::CloseMidData,
            3 => Ending::DropBeforeData,
            _ => Ending::Answer,
        };
        let plan = Plan {
            instance: rng.below(sops.len() as u64) as usize,
            // Mostly the same content (a console sending again), sometimes another.
            variant: usize::from(rng.below(4) == 0),
            ending,
            pieces: rng.next(),
            start_after: rng.below(4),
        };
        let (bytes, _) = files[plan.instance][plan.variant].clone();
        tasks.push(tokio::spawn(run_upload(
            ingest.clone(),
            sops[plan.instance].clone(),
            bytes,
            plan,
        )));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        let r = tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .unwrap_or_else(|_| {
                panic!("seed {seed}: an upload never ended (a wait that never returns)")
            })
            .unwrap_or_else(|e| panic!("seed {seed}: an upload task failed: {e}"));
        outcomes.push(r);
    }
    // Commits after acknowledgements, and those of uploads let go, finish on their own.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        // Committed copies leave the pool once settled (the store's timer would take a second).
        store.settle().unwrap();
        let left = with_data(&data.join("scratch"));
        if left.is_empty() && ingest.uploads_in_gate() == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "seed {seed}: left behind: {left:?}, {} uploads in the gate\n{outcomes:#?}",
            ingest.uploads_in_gate()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut acknowledged: BTreeMap<usize, Hash> = BTreeMap::new();
    for (plan, outcome) in &outcomes {
        let stored = store
            .instance("township-a", &sops[plan.instance])
            .unwrap()
            .map(|r| r.hash);
        match outcome {
            Outcome::Stored(h) => {
                assert_eq!(
                    *h, files[plan.instance][plan.variant].1,
                    "seed {seed}: acknowledged with another hash than its content's"
                );
                assert_eq!(
                    stored,
                    Some(*h),
                    "seed {seed}: acknowledged but not what the store holds\n{outcomes:#?}"
                );
                if let Some(prev) = acknowledged.insert(plan.instance, *h) {
                    assert_eq!(
                        prev, *h,
                        "seed {seed}: two contents acknowledged for one UID"
                    );
                }
            }
            Outcome::Refused(code, reason) => {
                assert_eq!(
                    *code,
                    RefuseCode::Conflict,
                    "seed {seed}: refused for another reason than a conflict: {reason}"
                );
                assert!(
                    stored.is_some_and(|h| h != files[plan.instance][plan.variant].1),
                    "seed {seed}: a conflict with nothing else stored\n{outcomes:#?}"
                );
            }
            Outcome::LetGo => {}
        }
        if let Some(h) = stored {
            let object = store.object_path(&h);
            let on_disk = std::fs::read(&object).unwrap_or_else(|e| {
                panic!("seed {seed}: indexed but missing {}: {e}", object.display())
            });
            assert_eq!(
                *blake3::hash(&on_disk).as_bytes(),
                h,
                "seed {seed}: stored exactly"
            );
        }
    }
    drop(ingest);
    // A restart finds nothing acknowledged and uncommitted.
    drop(store);
    assert!(
        Store::open_with(&data, yilian_store::StoreOptions::with_ready_files(32))
            .unwrap()
            .sealed_leftovers()
            .is_empty()
    );
    std::fs::remove_dir_all(&data).unwrap();
}

#[test]
fn sealed_uploads_of_one_instance_wait_for_each_other_over_many_interleavings() {
    let tmp = tempfile::tempdir().unwrap();
    let series = yilian_testkit::ct_series(
        &tmp.path().join("ct"),
        &yilian_testkit::StudySpec::new("CT", 41),
        3,
        32,
        32,
        41,
    )
    .unwrap();
    // Two contents per UID: the file as generated, and one with its last pixel changed.
    let files: Vec<Vec<(Bytes, Hash)>> = series
        .iter()
        .map(|g| {
            let a = std::fs::read(&g.path).unwrap();
            let mut b = a.clone();
            if let Some(last) = b.last_mut() {
                *last ^= 0xff;
            }
            [a, b]
                .into_iter()
                .map(|v| {
                    let h = *blake3::hash(&v).as_bytes();
                    (Bytes::from(v), h)
                })
                .collect()
        })
        .collect();
    let sops: Vec<String> = series.iter().map(|g| g.sop_instance_uid.clone()).collect();
    let seeds: u64 = std::env::var("YILIAN_MODEL_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for seed in 0..seeds {
        rt.block_on(scenario(seed, &files, &sops, tmp.path()));
    }
}
