//! The relay driven by hand over real QUIC (in-process): cut-through delivery, resuming an
//! upload whose bytes all arrived before a crash, and refusals of bad uploads that a
//! well-behaved `yilian send` would never make (the relay must not rely on its clients).

mod common;
use common::*;
use std::sync::Arc;
use std::time::Duration;
use yilian_proto::{InstanceRef, Offer, RefuseCode, SenderEvent};
use yilian_route::Topology;
use yilian_testkit::{ct_series, large_instance, StudySpec};

fn offer_for(g: &yilian_testkit::Generated) -> Offer {
    Offer {
        instance: InstanceRef {
            study_uid: g.study_instance_uid.clone(),
            sop_uid: g.sop_instance_uid.clone(),
        },
        size: g.size,
        priority: 0,
        hash: None,
        facts: None,
    }
}

/// The example topology plus a second radiology reader (fan-out).
fn two_radiologists() -> Topology {
    let toml = Topology::example_toml().to_string()
        + "\n[[identity]]\nname = \"county-radiology-2\"\nsite = \"county\"\nrole = \"reader\"\ndepartment = \"radiology\"\n";
    Topology::from_toml_str(&toml).unwrap()
}

/// A relay whose topology has two radiology readers, and a large CT instance (`pixel_bytes`
/// of pixel data) with its bytes.
fn relay_and_large_ct(
    tmp: &std::path::Path,
    pki: &Pki,
    pixel_bytes: u64,
    seed: u64,
) -> (InProcessRelay, yilian_testkit::Generated, Vec<u8>) {
    let relay = InProcessRelay::start(&tmp.join("relay"), pki, two_radiologists(), |_| {});
    let g = large_instance(
        &tmp.join("big.dcm"),
        &StudySpec::new("CT", seed),
        pixel_bytes,
        seed,
    )
    .unwrap();
    let bytes = std::fs::read(&g.path).unwrap();
    (relay, g, bytes)
}

/// Wait until a reader writing into `out` has `g`, then check it is byte-identical.
async fn wait_delivered(out: &std::path::Path, g: &yilian_testkit::Generated) {
    let path = out
        .join(&g.study_instance_uid)
        .join(format!("{}.dcm", g.sop_instance_uid));
    wait_for(|| path.exists()).await;
    assert_eq!(yilian_testkit::blake3_file(&path).unwrap(), g.blake3);
}

/// A reader session (`yilian read`, not once) writing into `out`, in the background.
fn spawn_reader(client: yilian_client::ClientConfig, out: std::path::PathBuf) {
    let opts = yilian_client::ReadOptions {
        client,
        out,
        once: false,
    };
    tokio::spawn(
        async move { yilian_client::read(&opts, Arc::new(yilian_client::NoProgress)).await },
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connected_readers_receive_an_instance_while_it_is_still_arriving() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    pki.issue(
        &yilian_transport::PeerIdentity::new(
            "county-radiology-2",
            "county",
            yilian_transport::Role::Reader,
            Some("radiology"),
        )
        .unwrap(),
        "county-radiology-2",
        false,
    );
    let (relay, g, bytes) = relay_and_large_ct(tmp.path(), &pki, 32 << 20, 5);

    // Two radiology readers online before the upload starts.
    let mut outs = Vec::new();
    for who in ["county-radiology", "county-radiology-2"] {
        let out = tmp.path().join(who);
        spawn_reader(relay.client(&pki, who), out.clone());
        outs.push(out);
    }
    wait_for(|| relay.relay.metrics().snapshot().deliveries_active == 0 && connected(&relay) == 2)
        .await;

    // Upload half of the instance, then stop sending: both readers must already be receiving.
    let conn = raw_connect(&relay, &pki, "township-a-device").await;
    let study = g.study_instance_uid.clone();
    let sop = g.sop_instance_uid.clone();
    let outs2 = outs.clone();
    let half = bytes.len() / 2;
    let paused = async move {
        for out in &outs2 {
            let part = out.join(&study).join(format!(".{sop}.dcm.part"));
            wait_for(|| {
                std::fs::metadata(&part)
                    .map(|m| m.len() > 0)
                    .unwrap_or(false)
            })
            .await;
        }
    };
    let ev = raw_upload(&conn, offer_for(&g), &bytes, g.blake3, Some(half), paused).await;
    assert_eq!(ev, SenderEvent::Stored { hash: g.blake3 });

    // Then both complete, byte-identical.
    for out in &outs {
        wait_delivered(out, &g).await;
    }
    // Delivered live: nothing left in their outboxes.
    let store = relay.relay.store();
    wait_for(|| store.queue_depths().unwrap().is_empty()).await;
    // The counters saw it: one instance in, two deliveries out, each of the whole size.
    let m = relay.relay.metrics().snapshot();
    assert_eq!(m.instances_stored, 1);
    assert_eq!(m.instances_delivered, 2);
    assert!(m.bytes_in >= g.size, "{m:?}");
    assert_eq!(m.bytes_out, 2 * g.size, "{m:?}");
    // Readers that keep up get the shared chunks (how much depends on how far each falls
    // behind the bounded broadcast; the rest comes from the file): the shared path is used.
    assert!(
        m.bytes_out_shared > 0,
        "cut-through from shared memory: {m:?}"
    );
    assert!(m.bytes_out_shared <= m.bytes_out);
    assert_eq!(m.uploads_active, 0);
}

/// A reader that connects in the middle of an upload gets the bytes that arrived before it
/// came, then the rest, byte-identical. The relay writes uploads directly (past the page
/// cache), so the newest bytes may be in its buffer and not yet in the file: the reader takes
/// those from memory (`LiveInstance::held`, whose seeded model covers every interleaving).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_connects_mid_upload_gets_the_bytes_so_far_and_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let (relay, g, bytes) = relay_and_large_ct(tmp.path(), &pki, 12 << 20, 6);
    let conn = raw_connect(&relay, &pki, "township-a-device").await;
    // Not a multiple of the relay's 1 MiB write buffer: its last bytes are in the buffer.
    let first = (5 << 20) + 12_345;
    let out = tmp.path().join("county-radiology");
    let part = out
        .join(&g.study_instance_uid)
        .join(format!(".{}.dcm.part", g.sop_instance_uid));
    let client = relay.client(&pki, "county-radiology");
    let out2 = out.clone();
    let late_reader = async move {
        // Only now, with the upload paused after `first` bytes, does the reader connect.
        spawn_reader(client, out2);
        wait_for_or(
            || std::fs::metadata(&part).is_ok_and(|m| m.len() >= first as u64),
            || "the late reader did not get the bytes that arrived before it".into(),
        )
        .await;
    };
    let ev = raw_upload(
        &conn,
        offer_for(&g),
        &bytes,
        g.blake3,
        Some(first),
        late_reader,
    )
    .await;
    assert_eq!(ev, SenderEvent::Stored { hash: g.blake3 });
    wait_delivered(&out, &g).await;
    // Delivered live: nothing left in this reader's outbox (the second radiologist of this
    // topology never connected).
    let store = relay.relay.store();
    let waiting = || {
        store
            .queue_depths()
            .unwrap()
            .iter()
            .any(|q| q.reader == "county-radiology")
    };
    wait_for(|| !waiting()).await;
    let m = relay.relay.metrics().snapshot();
    assert_eq!(m.instances_delivered, 1);
    assert_eq!(m.bytes_out, g.size, "{m:?}");
}

fn connected(relay: &InProcessRelay) -> usize {
    // Two subscriptions show up as two "subscribe" audit entries.
    relay
        .relay
        .store()
        .audit_entries(yilian_store::AuditAction::Subscribe)
        .map(|v| v.len())
        .unwrap_or(0)
}

async fn wait_for(f: impl FnMut() -> bool) {
    wait_for_or(f, || "timed out".into()).await
}

/// Wait until `f` holds (a hang guard of 60 s, not a speed bound); `why` says what failed.
async fn wait_for_or(mut f: impl FnMut() -> bool, why: impl Fn() -> String) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "{}", why());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_whose_bytes_all_arrived_before_a_crash_completes_on_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay_dir = tmp.path().join("relay");
    std::fs::create_dir_all(tmp.path().join("ct")).unwrap();
    let ct = ct_series(
        &tmp.path().join("ct"),
        &StudySpec::new("CT", 7),
        2,
        64,
        64,
        7,
    )
    .unwrap();
    // What a relay killed between receiving the last byte and committing leaves behind: a
    // complete partial file.
    {
        let store = yilian_store::Store::open(&relay_dir.join("data")).unwrap();
        let mut p = store
            .open_partial(yilian_store::PartialInfo {
                source_site: "township-a".into(),
                study_uid: ct[0].study_instance_uid.clone(),
                sop_uid: ct[0].sop_instance_uid.clone(),
                size: ct[0].size,
            })
            .unwrap();
        p.write(&std::fs::read(&ct[0].path).unwrap()).unwrap();
        p.sync().unwrap();
    }
    let relay = InProcessRelay::start(&relay_dir, &pki, Topology::example(), |_| {});
    let opts = yilian_client::SendOptions {
        client: relay.client(&pki, "township-a-device"),
        priority: 0,
        concurrency: 2,
        manifests: true,
    };
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        yilian_client::send(
            &[ct[0].path.clone(), ct[1].path.clone()],
            &opts,
            Arc::new(yilian_client::NoProgress),
        ),
    )
    .await
    .expect("the resumed upload must finish, not wait forever")
    .unwrap();
    assert!(report.all_ok(), "{report:?}");
    assert_eq!(
        report.files[0].outcome,
        yilian_client::FileOutcome::Stored {
            resumed_from: ct[0].size
        }
    );
    assert_eq!(
        report.bytes_sent, ct[1].size,
        "only the second file's bytes travel"
    );
    let rec = relay
        .relay
        .store()
        .instance("township-a", &ct[0].sop_instance_uid)
        .unwrap()
        .unwrap();
    assert_eq!(rec.hash, ct[0].blake3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_are_refused_with_reasons_and_the_relay_keeps_working() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay = InProcessRelay::start(&tmp.path().join("relay"), &pki, Topology::example(), |c| {
        c.limits.max_instance_bytes = 8 << 20;
    });
    std::fs::create_dir_all(tmp.path().join("ct")).unwrap();
    let ct = ct_series(
        &tmp.path().join("ct"),
        &StudySpec::new("CT", 9),
        3,
        128,
        128,
        9,
    )
    .unwrap();
    let good = std::fs::read(&ct[0].path).unwrap();
    let conn = raw_connect(&relay, &pki, "township-a-device").await;

    let refused = |ev: SenderEvent| match ev {
        SenderEvent::Refused(r) => r,
        other => panic!("expected a refusal, got {other:?}"),
    };

    // Not DICOM at all.
    let text = b"Patient report, not an image\n".repeat(100);
    let mut o = offer_for(&ct[1]);
    o.size = text.len() as u64;
    let r = refused(
        raw_upload(
            &conn,
            o,
            &text,
            *blake3::hash(&text).as_bytes(),
            None,
            async {},
        )
        .await,
    );
    assert_eq!(r.code, RefuseCode::NotDicom);
    assert!(r.reason.contains("DICM"), "{}", r.reason);

    // Truncated inside Pixel Data, although the sender claims it complete.
    let cut = &good[..good.len() - 1000];
    let mut o = offer_for(&ct[0]);
    o.size = cut.len() as u64;
    let r = refused(raw_upload(&conn, o, cut, *blake3::hash(cut).as_bytes(), None, async {}).await);
    assert_eq!(r.code, RefuseCode::Truncated, "{}", r.reason);

    // Bytes that do not match the hash the sender announces.
    let r = refused(raw_upload(&conn, offer_for(&ct[0]), &good, [7u8; 32], None, async {}).await);
    assert_eq!(r.code, RefuseCode::HashMismatch);

    // The offer names another instance than the file holds.
    let mut o = offer_for(&ct[0]);
    o.instance.sop_uid = ct[2].sop_instance_uid.clone();
    let r = refused(raw_upload(&conn, o, &good, ct[0].blake3, None, async {}).await);
    assert_eq!(r.code, RefuseCode::Mismatch);

    // Above the relay's size limit: refused before a byte is sent.
    let mut o = offer_for(&ct[0]);
    o.size = 9 << 20;
    let r = refused(raw_upload(&conn, o, &[], [0; 32], None, async {}).await);
    assert_eq!(r.code, RefuseCode::TooLarge);
    assert!(r.reason.contains("limit"), "{}", r.reason);

    // UIDs that are not UIDs (they would become file names).
    let mut o = offer_for(&ct[0]);
    o.instance.sop_uid = "../../etc/passwd".into();
    let r = refused(raw_upload(&conn, o, &good, ct[0].blake3, None, async {}).await);
    assert_eq!(r.code, RefuseCode::Malformed);

    // A reader may not upload.
    let reader = raw_connect(&relay, &pki, "county-radiology").await;
    let r = refused(
        raw_upload(
            &reader,
            offer_for(&ct[0]),
            &good,
            ct[0].blake3,
            None,
            async {},
        )
        .await,
    );
    assert_eq!(r.code, RefuseCode::Unauthorized);

    // Nothing of that was stored, and the relay still takes a good upload.
    let store = relay.relay.store();
    assert!(store
        .instance("township-a", &ct[0].sop_instance_uid)
        .unwrap()
        .is_none());
    let ev = raw_upload(&conn, offer_for(&ct[0]), &good, ct[0].blake3, None, async {
    })
    .await;
    assert_eq!(ev, SenderEvent::Stored { hash: ct[0].blake3 });
    // Every refusal is in the audit log, without patient data.
    let audit = store
        .audit_entries(yilian_store::AuditAction::Receive)
        .unwrap();
    let refusals: Vec<_> = audit.iter().filter(|a| a.outcome != "ok").collect();
    assert_eq!(refusals.len(), 7, "{audit:?}");
    let spec = StudySpec::new("CT", 9);
    for a in &audit {
        assert!(!format!("{a:?}").contains(&spec.patient_id));
    }
}

/// Uploads that are accepted but wait for their data (a sender writes its uploads one after
/// the other; a held routine upload; a link that is down) must not hold a thread each: on a
/// relay whose blocking pool has 4 threads, 24 of them wait at once, at the start and half-way,
/// and every one completes. A writer that kept a thread per upload stops accepting at the 5th.
/// Nor do they hold a direct-write buffer (1 MiB) each.
#[test]
fn uploads_waiting_for_their_data_hold_no_thread_each() {
    const WAITING: usize = 24;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tmp = tempfile::tempdir().unwrap();
        let pki = Pki::new(&tmp.path().join("pki"));
        let relay =
            InProcessRelay::start(&tmp.path().join("relay"), &pki, Topology::example(), |_| {});
        std::fs::create_dir_all(tmp.path().join("ct")).unwrap();
        let ct = ct_series(
            &tmp.path().join("ct"),
            &StudySpec::new("CT", 11),
            WAITING,
            128,
            128,
            11,
        )
        .unwrap();
        let conn = raw_connect(&relay, &pki, "township-a-device").await;
        let waiting = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (release, released) = tokio::sync::watch::channel(false);
        let mut uploads = Vec::new();
        for (i, g) in ct.iter().enumerate() {
            let (conn, g) = (conn.clone(), g.clone());
            let (waiting, mut released) = (waiting.clone(), released.clone());
            uploads.push(tokio::spawn(async move {
                let bytes = std::fs::read(&g.path).unwrap();
                // Even ones wait before their first byte, odd ones half-way.
                let pause = if i % 2 == 0 { 0 } else { bytes.len() / 2 };
                let wait = async move {
                    waiting.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    released.wait_for(|r| *r).await.unwrap();
                };
                raw_upload(&conn, offer_for(&g), &bytes, g.blake3, Some(pause), wait).await
            }));
        }
        drop(released);
        let accepted = || waiting.load(std::sync::atomic::Ordering::SeqCst);
        wait_for_or(
            || accepted() == WAITING,
            || {
                format!(
                    "only {} of {WAITING} uploads were accepted: waiting uploads hold the relay's threads",
                    accepted()
                )
            },
        )
        .await;
        // Nor a write buffer each: those that stopped half-way gave theirs back.
        let store = relay.relay.store();
        wait_for_or(
            || store.write_buffers_in_use() == 0,
            || {
                format!(
                    "{} uploads waiting for their data hold a 1 MiB write buffer each",
                    store.write_buffers_in_use()
                )
            },
        )
        .await;
        release.send_replace(true);
        for (u, g) in uploads.into_iter().zip(&ct) {
            assert_eq!(u.await.unwrap(), SenderEvent::Stored { hash: g.blake3 });
        }
        let store = relay.relay.store();
        for g in &ct {
            let rec = store
                .instance("township-a", &g.sop_instance_uid)
                .unwrap()
                .expect("stored");
            assert_eq!(rec.hash, g.blake3);
        }
    });
}

/// An audit entry that cannot be written is not dropped silently: it is counted (and logged as
/// an error with what it would have said), and the relay keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_audit_write_is_counted_and_the_relay_keeps_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay = InProcessRelay::start(&tmp.path().join("relay"), &pki, Topology::example(), |_| {});
    // The audit log refuses connection entries (as a full or broken disk would).
    let db = rusqlite::Connection::open(relay.data.join("index.sqlite")).unwrap();
    db.execute_batch(
        "CREATE TRIGGER test_audit_fails BEFORE INSERT ON audit WHEN NEW.action = 'connect'
         BEGIN SELECT RAISE(ABORT, 'simulated audit failure'); END;",
    )
    .unwrap();
    drop(db);
    assert_eq!(relay.relay.metrics().snapshot().audit_failures, 0);
    let dir = tmp.path().join("ct");
    let ct = ct_series(&dir, &StudySpec::new("CT", 21), 1, 32, 32, 21).unwrap();
    let opts = yilian_client::SendOptions {
        client: relay.client(&pki, "township-a-device"),
        priority: 0,
        concurrency: 1,
        manifests: true,
    };
    let report = yilian_client::send(&[dir], &opts, Arc::new(yilian_client::NoProgress))
        .await
        .unwrap();
    assert!(report.all_ok(), "{report:?}");
    wait_for_or(
        || relay.relay.metrics().snapshot().audit_failures >= 1,
        || "the failed audit write was not counted".into(),
    )
    .await;
    assert!(relay
        .relay
        .store()
        .instance("township-a", &ct[0].sop_instance_uid)
        .unwrap()
        .is_some());
}
