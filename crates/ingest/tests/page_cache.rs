//! Where a stored instance's bytes are right after its commit. Uploads are written directly,
//! past the page cache (`yilian-store`'s `direct.rs`): nobody reads them now, and copying them
//! into fresh pages costs more CPU than the rest of the write. But when a reader the instance
//! is routed to is connected, it reads the instance at once (live, or right after the commit),
//! and would read it back from the disk: then the upload is written through the page cache.
//! Both for a yilian/1 upload (size known, resumable) and a C-STORE (sealed).

mod common;

use bytes::Bytes;
use common::{config, console};
use std::path::Path;
use std::sync::Arc;
use yilian_ingest::{next_conn, Door, Event, Ingest, Opened, Principal, UploadSpec};
use yilian_proto::Hash;
use yilian_route::Topology;
use yilian_store::Store;
use yilian_testkit::{large_instance, takes_direct_writes, Generated, StudySpec};

/// Township A's device over yilian/1.
fn device() -> Principal {
    Principal {
        door: Door::Quic,
        ..console()
    }
}

async fn upload(ingest: &Arc<Ingest>, g: &Generated, resumable: bool) -> Hash {
    let bytes = Bytes::from(std::fs::read(&g.path).unwrap());
    let (principal, spec) = if resumable {
        let spec = UploadSpec {
            sop_uid: g.sop_instance_uid.clone(),
            study_uid: Some(g.study_instance_uid.clone()),
            size: Some(g.size),
            ..UploadSpec::default()
        };
        (device(), spec)
    } else {
        let spec = UploadSpec {
            sop_uid: g.sop_instance_uid.clone(),
            ..UploadSpec::default()
        };
        (console(), spec)
    };
    let mut up = ingest
        .begin(Arc::new(principal), spec, next_conn())
        .await
        .unwrap();
    up.lease().await.unwrap();
    assert!(matches!(up.open().await.unwrap(), Opened::At(0)));
    let mut at = 0;
    while at < bytes.len() {
        let n = (256 << 10).min(bytes.len() - at);
        assert!(up.data(bytes.slice(at..at + n)).await);
        at += n;
    }
    up.finish(resumable.then_some(g.blake3)).await;
    let hash = loop {
        match up.next_event().await {
            Event::Stored(h) => break h,
            Event::Refused(r) => panic!("refused: {}", r.reason),
            Event::Hold(_) | Event::Checkpoint(_) => {}
        }
    };
    up.close().await;
    // A sealed upload is acknowledged before its commit: wait for its object (a hang guard,
    // not a timing bound).
    let store = ingest.store.clone();
    let object = store.object_path(&hash);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while store
        .instance("township-a", &g.sop_instance_uid)
        .unwrap()
        .is_none()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "never committed: {}",
            object.display()
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    hash
}

/// Pages of `path` in the page cache, and its pages in all.
fn resident(path: &Path) -> (usize, usize) {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path).unwrap();
    let len = file.metadata().unwrap().len() as usize;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let pages = len.div_ceil(page);
    // SAFETY: a read-only shared mapping of an open file of `len` > 0 bytes, unmapped below;
    // mincore fills one byte per page of it.
    unsafe {
        let map = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        );
        assert_ne!(map, libc::MAP_FAILED);
        let mut v = vec![0u8; pages];
        assert_eq!(libc::mincore(map, len, v.as_mut_ptr()), 0);
        libc::munmap(map, len);
        (v.iter().filter(|b| *b & 1 == 1).count(), pages)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_a_connected_reader_will_read_stays_in_memory_and_no_other() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(
        Store::open_with(
            &tmp.path().join("data"),
            yilian_store::StoreOptions::with_ready_files(32),
        )
        .unwrap(),
    );
    let ingest = Arc::new(Ingest::new(
        store.clone(),
        Arc::new(Topology::example()),
        config(),
    ));
    let direct = takes_direct_writes(tmp.path());
    let mut n = 0;
    let mut instance = || {
        n += 1;
        large_instance(
            &tmp.path().join(format!("ct{n}.dcm")),
            &StudySpec::new("CT", 40 + n),
            4 << 20,
            40 + n,
        )
        .unwrap()
    };
    for resumable in [true, false] {
        // Nobody connected: straight to the disk (the last partial block excepted).
        let g = instance();
        let hash = upload(&ingest, &g, resumable).await;
        assert_eq!(hash, g.blake3);
        let (cached, pages) = resident(&store.object_path(&hash));
        if direct {
            assert!(
                cached * 2 < pages,
                "resumable {resumable}: {cached} of {pages} pages cached, nobody reads them"
            );
        }
        // County radiology connected (CT from township A is routed to it): kept in memory.
        let (session, _jobs, _) = ingest.hub.connect_reader("county-radiology");
        let g = instance();
        let hash = upload(&ingest, &g, resumable).await;
        assert_eq!(hash, g.blake3);
        let (cached, pages) = resident(&store.object_path(&hash));
        assert_eq!(
            cached, pages,
            "resumable {resumable}: the connected reader reads it back from the disk"
        );
        ingest.hub.disconnect_reader("county-radiology", session);
    }
}
