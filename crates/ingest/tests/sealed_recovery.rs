//! An upload of unknown size is acknowledged once sealed (one fsync), before its commit. If the
//! relay dies in between, the next start commits it: nothing acknowledged is lost.

mod common;

use common::{config, console};
use std::sync::Arc;
use yilian_ingest::Ingest;
use yilian_route::Topology;
use yilian_store::Store;

#[tokio::test]
async fn a_sealed_upload_left_by_a_crash_is_committed_at_the_next_start() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let fixture = yilian_testkit::ct_series(
        &tmp.path().join("ct"),
        &yilian_testkit::StudySpec::new("CT", 5),
        1,
        16,
        16,
        5,
    )
    .unwrap()
    .remove(0);
    let bytes = std::fs::read(&fixture.path).unwrap();
    let principal = console();
    {
        // Written and sealed; then the process dies before the commit.
        let store =
            Store::open_with(&data, yilian_store::StoreOptions::with_ready_files(32)).unwrap();
        let mut partial = store
            .open_scratch("township-a", &fixture.sop_instance_uid)
            .unwrap();
        assert!(
            partial.is_sealable(),
            "the pool needs user extended attributes"
        );
        partial.write(&bytes).unwrap();
        let tag = serde_json::json!({ "principal": principal, "priority": 0 });
        partial.seal(&serde_json::to_vec(&tag).unwrap()).unwrap();
        std::mem::forget(partial);
    }
    let store = Arc::new(
        Store::open_with(&data, yilian_store::StoreOptions::with_ready_files(32)).unwrap(),
    );
    assert!(store
        .instance("township-a", &fixture.sop_instance_uid)
        .unwrap()
        .is_none());
    let ingest = Arc::new(Ingest::new(
        store.clone(),
        Arc::new(Topology::example()),
        config(),
    ));
    assert_eq!(yilian_ingest::sealed::recover(&ingest).await, 1);
    let rec = store
        .instance("township-a", &fixture.sop_instance_uid)
        .unwrap()
        .expect("committed at start");
    assert_eq!(rec.hash, fixture.blake3);
    assert_eq!(
        std::fs::read(store.object_path(&rec.hash)).unwrap(),
        bytes,
        "stored exactly"
    );
    // Routed like any upload: county radiology has it waiting.
    let pending = store
        .pending_one(
            "county-radiology",
            &fixture.study_instance_uid,
            &fixture.sop_instance_uid,
        )
        .unwrap();
    assert!(pending.is_some());
    // And only once: after a stop (which settles), a second start finds nothing left.
    drop(ingest);
    drop(store);
    let store2 = Store::open_with(&data, yilian_store::StoreOptions::with_ready_files(32)).unwrap();
    assert!(store2.sealed_leftovers().is_empty());
}

/// A kill -9 after the index holds the instance but before its pooled file is removed: the
/// next start finds the sealed file again, recognises the very instance already stored, and
/// removes the file, with one instance, one outbox entry and the object intact.
#[tokio::test]
async fn a_sealed_file_whose_instance_is_already_indexed_is_only_removed_at_the_next_start() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let fixture = yilian_testkit::ct_series(
        &tmp.path().join("ct"),
        &yilian_testkit::StudySpec::new("CT", 6),
        1,
        16,
        16,
        6,
    )
    .unwrap()
    .remove(0);
    let bytes = std::fs::read(&fixture.path).unwrap();
    let principal = console();
    let pooled = {
        let store =
            Store::open_with(&data, yilian_store::StoreOptions::with_ready_files(32)).unwrap();
        let mut partial = store
            .open_scratch("township-a", &fixture.sop_instance_uid)
            .unwrap();
        assert!(
            partial.is_sealable(),
            "the pool needs user extended attributes"
        );
        partial.write(&bytes).unwrap();
        let tag = serde_json::json!({ "principal": principal, "priority": 0 });
        partial.seal(&serde_json::to_vec(&tag).unwrap()).unwrap();
        let pooled = partial.path().to_path_buf();
        std::mem::forget(partial);
        pooled
    };
    // The first start commits it (the object is a link of the pooled file, tag included)...
    {
        let store = Arc::new(
            Store::open_with(&data, yilian_store::StoreOptions::with_ready_files(32)).unwrap(),
        );
        let ingest = Arc::new(Ingest::new(
            store.clone(),
            Arc::new(Topology::example()),
            config(),
        ));
        assert_eq!(yilian_ingest::sealed::recover(&ingest).await, 1);
        // The pooled name goes once the object's folder is settled (`yilian_store`'s
        // `settle.rs`).
        assert!(pooled.exists());
        store.settle().unwrap();
        assert!(!pooled.exists());
        // ...and the crash point is recreated: indexed, the pooled file not yet removed.
        std::fs::hard_link(store.object_path(&fixture.blake3), &pooled).unwrap();
    }
    let store = Arc::new(
        Store::open_with(&data, yilian_store::StoreOptions::with_ready_files(32)).unwrap(),
    );
    let ingest = Arc::new(Ingest::new(
        store.clone(),
        Arc::new(Topology::example()),
        config(),
    ));
    assert_eq!(yilian_ingest::sealed::recover(&ingest).await, 1);
    store.settle().unwrap();
    assert!(!pooled.exists(), "the pooled file is removed once settled");
    let rec = store
        .instance("township-a", &fixture.sop_instance_uid)
        .unwrap()
        .expect("still stored");
    assert_eq!(rec.hash, fixture.blake3);
    assert_eq!(
        std::fs::read(store.object_path(&rec.hash)).unwrap(),
        bytes,
        "the object survives the pooled file's removal"
    );
    assert!(store
        .pending_one(
            "county-radiology",
            &fixture.study_instance_uid,
            &fixture.sop_instance_uid,
        )
        .unwrap()
        .is_some());
    drop(ingest);
    drop(store);
    assert!(
        Store::open_with(&data, yilian_store::StoreOptions::with_ready_files(32))
            .unwrap()
            .sealed_leftovers()
            .is_empty()
    );
}

#[tokio::test]
async fn an_unsealed_file_in_the_pool_is_an_upload_cut_off_and_is_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    {
        let store =
            Store::open_with(&data, yilian_store::StoreOptions::with_ready_files(32)).unwrap();
        let mut partial = store.open_scratch("township-a", "1.2.3.4").unwrap();
        partial.write(b"half an instance").unwrap();
        std::mem::forget(partial);
    }
    let store = Store::open_with(&data, yilian_store::StoreOptions::with_ready_files(32)).unwrap();
    assert!(store.sealed_leftovers().is_empty());
    let with_data: Vec<_> = std::fs::read_dir(data.join("scratch/ready"))
        .unwrap()
        .flatten()
        .filter(|e| e.metadata().map(|m| m.len() > 0).unwrap_or(false))
        .collect();
    assert!(with_data.is_empty(), "{with_data:?}");
}
