//! Settling (`settle.rs`): a sealed commit's object folder is fsync'ed after the answer, in
//! bulk, and its pooled copy stays until then. These tests hold the settler's timer off
//! (`settle_after` of an hour) so that every settle happens where the test says, except the
//! one that checks the timer itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use yilian_store::*;

const STUDY: &str = "1.2.77";
const READER: &str = "county-radiology";

fn options(settle_after: Duration) -> StoreOptions {
    StoreOptions {
        ready_files: 32,
        settle_after,
        ..StoreOptions::default()
    }
}

/// A store whose settles happen only when asked (or when it closes, or before a prune).
fn open(dir: &Path) -> Store {
    Store::open_with(dir, options(Duration::from_secs(3600))).unwrap()
}

fn inst(sop: &str) -> NewInstance {
    NewInstance {
        sop_uid: sop.into(),
        study_uid: STUDY.into(),
        series_uid: "1.2.77.1".into(),
        sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
        modality: "CT".into(),
        source_site: "township-a".into(),
        source_identity: "township-a-device".into(),
        priority: 0,
    }
}

fn bytes_of(sop: &str) -> Vec<u8> {
    format!("DICM instance {sop} ").repeat(40).into_bytes()
}

/// Write and seal `sop` in the pool (what a C-STORE or a STOW-RS part does before its
/// answer); returns the commit to make and the pooled name.
fn sealed(s: &Store, sop: &str) -> (InstanceCommit, PathBuf) {
    let bytes = bytes_of(sop);
    let mut p = s.open_scratch("township-a", sop).unwrap();
    assert!(
        p.is_sealable(),
        "this filesystem keeps no user.* attributes"
    );
    p.write(&bytes).unwrap();
    p.seal(b"tag").unwrap();
    let pooled = p.path().to_path_buf();
    let commit = InstanceCommit {
        partial: p,
        hash: *blake3::hash(&bytes).as_bytes(),
        instance: inst(sop),
        readers: vec![READER.to_string()],
        catalog: Catalog::default(),
    };
    (commit, pooled)
}

/// Seal and commit `sop` alone; returns its pooled name.
fn commit_one(s: &Store, sop: &str) -> PathBuf {
    let (c, pooled) = sealed(s, sop);
    s.commit_many(vec![c]).remove(0).unwrap();
    pooled
}

/// Pooled files with data (sealed uploads) in the store at `dir`.
fn pooled_with_data(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir.join("scratch/ready"))
        .unwrap()
        .flatten()
        .filter(|e| e.metadata().map(|m| m.len() > 0).unwrap_or(false))
        .map(|e| e.path())
        .collect()
}

fn assert_stored(s: &Store, sop: &str) {
    let rec = s
        .instance("township-a", sop)
        .unwrap()
        .unwrap_or_else(|| panic!("{sop} is not indexed"));
    let on_disk = std::fs::read(s.object_path(&rec.hash))
        .unwrap_or_else(|e| panic!("{sop}: indexed, but its object cannot be read: {e}"));
    assert_eq!(on_disk, bytes_of(sop), "{sop} is stored exactly");
}

#[test]
fn a_sealed_commit_keeps_its_pooled_copy_until_settled() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let sops = ["1.1", "1.2", "1.3"];
    let commits: Vec<InstanceCommit> = sops.iter().map(|sop| sealed(&s, sop).0).collect();
    for r in s.commit_many(commits) {
        assert!(matches!(r.unwrap(), Stored::New { .. }));
    }
    for sop in sops {
        assert_stored(&s, sop);
    }
    assert_eq!(
        pooled_with_data(dir.path()).len(),
        3,
        "each pooled copy stays until its object's folder is fsync'ed"
    );
    assert_eq!(s.unsettled(), (3, 0));
    assert_eq!(s.settle().unwrap(), 3);
    assert!(pooled_with_data(dir.path()).is_empty());
    assert_eq!(s.unsettled(), (0, 3));
    assert_eq!(s.settle().unwrap(), 0, "nothing left");
    for sop in sops {
        assert_stored(&s, sop);
    }
}

#[test]
fn the_settler_settles_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_with(dir.path(), options(Duration::from_millis(20))).unwrap();
    let pooled = commit_one(&s, "2.1");
    // Guards against a hang only: the settler's timer is 20 ms.
    let deadline = Instant::now() + Duration::from_secs(60);
    while pooled.exists() {
        assert!(Instant::now() < deadline, "never settled");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(s.unsettled(), (0, 1));
    assert_stored(&s, "2.1");
}

#[test]
fn closing_the_store_settles() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open(dir.path());
        commit_one(&s, "3.1");
        assert_eq!(pooled_with_data(dir.path()).len(), 1);
    }
    assert!(pooled_with_data(dir.path()).is_empty());
    let s = open(dir.path());
    assert!(s.sealed_leftovers().is_empty(), "nothing to commit again");
    assert_stored(&s, "3.1");
}

/// The next start commits a leftover again, as the ingest path does (`yilian_ingest::sealed`).
fn recover(s: &Store, bytes: &BTreeMap<PathBuf, String>) -> usize {
    let leftovers = s.sealed_leftovers();
    for (path, _tag) in &leftovers {
        let sop = bytes
            .get(path)
            .unwrap_or_else(|| panic!("unknown leftover {}", path.display()));
        let data = bytes_of(sop);
        let partial = s.adopt_sealed(path, "township-a", sop).unwrap();
        let stored = s
            .commit(
                partial,
                *blake3::hash(&data).as_bytes(),
                &inst(sop),
                &[READER.to_string()],
            )
            .unwrap();
        assert!(
            matches!(stored, Stored::AlreadyStored(_)),
            "{sop} was indexed before the crash"
        );
    }
    leftovers.len()
}

/// A crash after the commit but before the settle: the object's name may be lost with its
/// folder's unsynced entry. The pooled copy is still there, and the next start makes the
/// name again from it.
#[test]
fn an_object_name_lost_before_its_settle_is_made_again_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut names = BTreeMap::new();
    let object = {
        let s = open(dir.path());
        let (c, pooled) = sealed(&s, "4.1");
        names.insert(pooled, "4.1".to_string());
        let hash = c.hash;
        s.commit_many(vec![c]).remove(0).unwrap();
        let object = s.object_path(&hash);
        // The crash: no settle, and the folder's new entry never reached the disk.
        s.crash();
        std::fs::remove_file(&object).unwrap();
        object
    };
    let s = open(dir.path());
    assert_eq!(recover(&s, &names), 1);
    assert!(object.exists(), "made again from the pooled copy");
    assert_stored(&s, "4.1");
    assert_eq!(s.pending_for(READER).unwrap().len(), 1, "indexed once");
    assert_eq!(
        s.settle().unwrap(),
        1,
        "the pooled copy goes after a settle"
    );
    assert!(pooled_with_data(dir.path()).is_empty());
    drop(s);
    assert!(open(dir.path()).sealed_leftovers().is_empty());
}

/// A prune settles first: a pooled copy left behind would bring a pruned instance back after
/// a crash.
#[test]
fn a_prune_settles_first() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let pooled = commit_one(&s, "5.1");
    s.mark_delivered(READER, STUDY, "5.1").unwrap();
    let pruned = s.prune_delivered(i64::MAX, "test").unwrap();
    assert_eq!(pruned.instances, 1);
    assert!(!pooled.exists(), "settled before the rows went");
    s.crash();
    let s = open(dir.path());
    assert!(s.sealed_leftovers().is_empty(), "nothing comes back");
    assert!(s.instance("township-a", "5.1").unwrap().is_none());
}

/// Seeded sequences of commits (in batches), settles, deliveries, prunes, clean stops and
/// crashes that lose any of the object names not yet settled. Whatever the order, after each
/// start and its recovery:
/// * every instance committed and not pruned is indexed once, and its object holds its bytes;
/// * no pruned instance comes back;
/// * nothing is left to commit again once the recovery is settled.
#[test]
fn settles_commits_prunes_and_crashes_in_any_order_lose_nothing() {
    for seed in 0..60u64 {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = yilian_testkit::Rng::new(seed, 0x5e771e);
        let mut s = open(dir.path());
        // Pooled name → SOP of every sealed file handed to a commit.
        let mut pooled: BTreeMap<PathBuf, String> = BTreeMap::new();
        // What the index must hold, and what was pruned.
        let mut live: Vec<String> = Vec::new();
        let mut delivered: Vec<String> = Vec::new();
        let mut pruned: Vec<String> = Vec::new();
        // Object names committed since the last settle (a crash may lose them).
        let mut unsettled: Vec<PathBuf> = Vec::new();
        let mut next = 0;
        for step in 0..40 {
            match rng.below(10) {
                0..=3 => {
                    let n = 1 + rng.below(4) as usize;
                    let mut commits = Vec::new();
                    for _ in 0..n {
                        next += 1;
                        let sop = format!("9.{seed}.{next}");
                        let (c, name) = sealed(&s, &sop);
                        pooled.insert(name, sop.clone());
                        unsettled.push(s.object_path(&c.hash));
                        live.push(sop);
                        commits.push(c);
                    }
                    for r in s.commit_many(commits) {
                        assert!(
                            matches!(r, Ok(Stored::New { .. })),
                            "seed {seed} step {step}: {r:?}"
                        );
                    }
                }
                4 => {
                    s.settle().unwrap();
                    unsettled.clear();
                }
                5 if !live.is_empty() => {
                    let i = rng.below(live.len() as u64) as usize;
                    let sop = live[i].clone();
                    if !delivered.contains(&sop) {
                        s.mark_delivered(READER, STUDY, &sop).unwrap();
                        delivered.push(sop);
                    }
                }
                6 => {
                    let p = s.prune_delivered(i64::MAX, "model").unwrap();
                    assert_eq!(p.instances as usize, delivered.len(), "seed {seed}");
                    live.retain(|sop| !delivered.contains(sop));
                    pruned.append(&mut delivered);
                    // A prune settles first.
                    unsettled.clear();
                }
                7 => {
                    // A clean stop: the store closes (and settles).
                    drop(s);
                    unsettled.clear();
                    s = open(dir.path());
                    assert_eq!(recover(&s, &pooled), 0, "seed {seed} step {step}");
                }
                8 | 9 => {
                    // A crash: the object names not yet settled may not have reached the disk.
                    s.crash();
                    for object in unsettled.drain(..) {
                        if rng.below(2) == 0 {
                            std::fs::remove_file(&object).unwrap();
                        }
                    }
                    s = open(dir.path());
                    recover(&s, &pooled);
                    s.settle().unwrap();
                    assert!(
                        pooled_with_data(dir.path()).is_empty(),
                        "seed {seed} step {step}: recovered and settled, nothing is left"
                    );
                }
                _ => {}
            }
            for sop in &live {
                assert_stored(&s, sop);
            }
            for sop in &pruned {
                assert!(
                    s.instance("township-a", sop).unwrap().is_none(),
                    "seed {seed} step {step}: pruned {sop} came back"
                );
            }
        }
        let pending = s.pending_for(READER).unwrap();
        assert_eq!(
            pending.len(),
            live.len() - delivered.len(),
            "seed {seed}: each instance indexed once"
        );
        drop(s);
    }
}

/// The settler's thread (a timer of 0–40 ms), commits from three threads and a fourth that
/// delivers, prunes and settles, all at once, over seeded schedules; then a crash that may
/// lose the object name of every instance whose pooled copy is still there (its folder was
/// not settled: once a pooled copy is gone, its object's name is durable). After the next
/// start's recovery and a settle: every committed instance not pruned reads back exactly,
/// none pruned comes back, and the pool is empty.
///
/// A final batch committed after the threads, without a timer on even seeds, makes sure the
/// crash finds commits still waiting for their settle.
#[test]
fn commits_settles_and_prunes_on_threads_then_a_crash_lose_nothing() {
    use std::sync::{Arc, Mutex};
    // Object names the crashes took, over all seeds: the model must reach that case (the even
    // seeds' final batches do, whatever the threads' timing).
    let mut lost = 0;
    for seed in 0..24u64 {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = yilian_testkit::Rng::new(seed, 0x5e771f);
        // Odd seeds: the settler's timer at 0–40 ms. Even ones: no timer (only the explicit
        // settles and the prunes'), so the final batch below is surely unsettled at the crash.
        let after = if seed % 2 == 0 {
            Duration::from_secs(3600)
        } else {
            Duration::from_micros(rng.below(40_000))
        };
        let s = Arc::new(Store::open_with(dir.path(), options(after)).unwrap());
        // SOP → pooled name, for every instance committed.
        let committed: Arc<Mutex<BTreeMap<String, PathBuf>>> = Default::default();
        let mut threads = Vec::new();
        for t in 0..3u64 {
            let (s, committed) = (s.clone(), committed.clone());
            let mut rng = yilian_testkit::Rng::new(seed, t);
            threads.push(std::thread::spawn(move || {
                for b in 0..6 {
                    let n = 1 + rng.below(3);
                    let (commits, names): (Vec<_>, Vec<_>) = (0..n)
                        .map(|i| {
                            let sop = format!("8.{seed}.{t}.{b}.{i}");
                            let (c, pooled) = sealed(&s, &sop);
                            (c, (sop, pooled))
                        })
                        .unzip();
                    for r in s.commit_many(commits) {
                        assert!(matches!(r, Ok(Stored::New { .. })), "seed {seed}: {r:?}");
                    }
                    committed.lock().unwrap().extend(names);
                    std::thread::sleep(Duration::from_micros(rng.below(2000)));
                }
            }));
        }
        let pruned = {
            let (s, committed) = (s.clone(), committed.clone());
            let mut rng = yilian_testkit::Rng::new(seed, 9);
            std::thread::spawn(move || {
                let mut delivered = Vec::new();
                let mut pruned = Vec::new();
                for _ in 0..12 {
                    match rng.below(3) {
                        0 => {
                            let known: Vec<String> =
                                committed.lock().unwrap().keys().cloned().collect();
                            if let Some(sop) =
                                known.get(rng.below(known.len().max(1) as u64) as usize)
                            {
                                if !delivered.contains(sop) && !pruned.contains(sop) {
                                    s.mark_delivered(READER, STUDY, sop).unwrap();
                                    delivered.push(sop.clone());
                                }
                            }
                        }
                        1 => {
                            let p = s.prune_delivered(i64::MAX, "model").unwrap();
                            assert_eq!(p.instances as usize, delivered.len(), "seed {seed}");
                            pruned.append(&mut delivered);
                        }
                        _ => {
                            s.settle().unwrap();
                        }
                    }
                    std::thread::sleep(Duration::from_micros(rng.below(3000)));
                }
                pruned
            })
        };
        for t in threads {
            t.join().unwrap();
        }
        let pruned = pruned.join().unwrap();
        let last: Vec<InstanceCommit> = (0..3)
            .map(|i| {
                let sop = format!("8.{seed}.last.{i}");
                let (c, pooled) = sealed(&s, &sop);
                committed.lock().unwrap().insert(sop, pooled);
                c
            })
            .collect();
        for r in s.commit_many(last) {
            assert!(matches!(r, Ok(Stored::New { .. })), "seed {seed}: {r:?}");
        }
        let committed = std::mem::take(&mut *committed.lock().unwrap());
        let objects: BTreeMap<&String, PathBuf> = committed
            .keys()
            .map(|sop| (sop, s.object_path(blake3::hash(&bytes_of(sop)).as_bytes())))
            .collect();
        // The crash, with the settler's thread stopped wherever it was.
        let Ok(store) = Arc::try_unwrap(s) else {
            panic!("seed {seed}: the store is still shared")
        };
        store.crash();
        for (sop, pooled) in &committed {
            // A pooled copy still there: its object's folder may not have been settled. Which
            // of those lose their name is drawn per instance (not in the order found).
            if pooled.exists() && blake3::hash(sop.as_bytes()).as_bytes()[0] & 1 == 0 {
                std::fs::remove_file(&objects[sop]).unwrap();
                lost += 1;
            }
        }
        let by_pooled: BTreeMap<PathBuf, String> = committed
            .iter()
            .map(|(sop, p)| (p.clone(), sop.clone()))
            .collect();
        let s = open(dir.path());
        recover(&s, &by_pooled);
        s.settle().unwrap();
        assert!(
            pooled_with_data(dir.path()).is_empty(),
            "seed {seed}: recovered and settled, nothing is left"
        );
        for sop in committed.keys() {
            if pruned.contains(sop) {
                assert!(
                    s.instance("township-a", sop).unwrap().is_none(),
                    "seed {seed}: pruned {sop} came back"
                );
            } else {
                assert_stored(&s, sop);
            }
        }
    }
    assert!(lost > 0, "no crash took an unsettled object name");
}
