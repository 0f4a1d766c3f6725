//! Live ECG end to end: a cart (`yilian ecg stream`, the real binary) streams through the relay
//! to cardiologists watching (the client library in this process), and the session's recording
//! reaches the county's reader as DICOM 12-lead ECG objects checked by pydicom.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use yilian_client::ecg::{list_ecg, watch_ecg, WatchEvent};
use yilian_client::{ClientConfig, NoProgress};
use yilian_ecg::model::{Block, SampleRate};
use yilian_ecg::simulate::{SimSpec, Simulator};
use yilian_ecg::wire::{SessionId, SessionSummary};
use yilian_transport::{TlsFiles, Tuning};

/// A scratch folder, a test PKI and a relay (`extra`: more of its config, e.g. `[ecg]`).
fn ecg_relay(extra: &str) -> (tempfile::TempDir, Pki, RelayProc) {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay = RelayProc::start_with(&tmp.path().join("relay"), &pki, extra);
    (tmp, pki, relay)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn client(addr: &str, pki: &Pki, identity: &str) -> ClientConfig {
    ClientConfig {
        relay: addr.to_string(),
        tls: TlsFiles {
            cert: pki.cert(identity),
            key: pki.key(identity),
            ca: pki.ca_path(),
        }
        .load()
        .unwrap(),
        tuning: Tuning::default(),
        give_up_after: Duration::from_secs(30),
        contact: Default::default(),
    }
}

/// `yilian ecg stream` as township A's cart, in the background.
struct Cart(Option<Child>);

impl Cart {
    fn start(addr: &str, pki: &Pki, args: &[&str]) -> Cart {
        let mut c = peer_cmd_at("ecg stream", addr, pki, "township-a-device");
        c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        Cart(Some(c.spawn().unwrap()))
    }

    /// Wait for the end; (success, stdout + stderr).
    fn wait(mut self, timeout: Duration) -> (bool, String) {
        let mut child = self.0.take().unwrap();
        let status = wait_for_exit(&mut child, timeout, "ecg stream");
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("--- ecg stream exit {status:?}\n{text}");
        (status.success(), text)
    }
}

impl Drop for Cart {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _killed = c.kill().is_ok();
            let _reaped = c.wait().is_ok();
        }
    }
}

/// The live sessions `identity` may watch, once there is one.
fn wait_for_session(rt: &tokio::runtime::Runtime, cfg: &ClientConfig) -> SessionSummary {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = rt
            .block_on(list_ecg(cfg, Arc::new(NoProgress)))
            .unwrap_or_default();
        if let Some(s) = list.into_iter().next() {
            return s;
        }
        assert!(Instant::now() < deadline, "no live session appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What one viewer received.
#[derive(Default, Debug)]
struct Seen {
    /// Samples per lead, by the frame's first sample.
    blocks: BTreeMap<u64, Block>,
    missed: u64,
    ended: Option<bool>,
    header_rate: u32,
}

impl Seen {
    /// The samples from sample 0, contiguous (panics on a hole).
    fn contiguous(&self) -> Block {
        let mut out = Block::default();
        let mut next = 0;
        for (&first, b) in &self.blocks {
            assert_eq!(first, next, "a hole before sample {first}");
            if out.is_empty() {
                out = b.clone();
            } else {
                out.extend(b);
            }
            next = first + b.per_lead() as u64;
        }
        out
    }
}

fn watch(rt: &tokio::runtime::Runtime, cfg: &ClientConfig, session: SessionId) -> Seen {
    let mut seen = Seen::default();
    rt.block_on(watch_ecg(cfg, session, Arc::new(NoProgress), |e| {
        match e {
            WatchEvent::Header(h) => seen.header_rate = h.summary.rate_hz,
            WatchEvent::Block {
                first_sample,
                block,
            } => {
                seen.blocks.insert(first_sample, block);
            }
            WatchEvent::Missed(n) => seen.missed += n,
            WatchEvent::Ended { complete } => seen.ended = Some(complete),
        }
        true
    }))
    .unwrap();
    seen
}

/// The simulator the CLI runs for `--simulate --seed SEED --rate HZ`.
fn simulated(seed: u64, rate: SampleRate, per_lead: usize) -> Block {
    let mut sim = Simulator::new(SimSpec {
        rate,
        heart_rate_bpm: 72.0,
        seed,
        st_elevation: false,
        ..SimSpec::default()
    });
    sim.next_block(per_lead)
}

/// Every recording `yilian read` got, sorted by path.
fn recordings(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .map(|e| e.path().to_path_buf())
        .filter(|p| p.extension().is_some_and(|x| x == "dcm"))
        .collect();
    v.sort();
    v
}

/// pydicom reads `dcm` and compares its waveform with `expected` (see tests/py/ecg_check.py).
fn pydicom_check(dcm: &Path, expected: &Block, incomplete: bool) -> serde_json::Value {
    let raw = dcm.with_extension("expected.raw");
    let bytes: Vec<u8> = expected
        .interleaved()
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect();
    std::fs::write(&raw, bytes).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/ecg_check.py");
    let mut c = std::process::Command::new("python3");
    c.arg(script).arg(dcm).arg(&raw);
    if incomplete {
        c.arg("--incomplete");
    }
    let out = c
        .output()
        .expect("python3 with pydicom and numpy (scripts/test installs them)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "pydicom check of {}: {text}{}",
        dcm.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(text.trim()).unwrap()
}

/// A simulated 6-second session: the cardiologist watching gets exactly the samples the cart
/// streamed, and the recording county cardiology receives holds exactly them too.
#[test]
fn a_simulated_session_is_watched_sample_for_sample_and_recorded_as_dicom() {
    let (tmp, pki, relay) = ecg_relay("");
    let root = tmp.path();
    let rt = runtime();
    let cardiology = client(&relay.addr, &pki, "county-cardiology");
    let cart = Cart::start(
        &relay.addr,
        &pki,
        &["--simulate", "--seconds", "6", "--seed", "7"],
    );
    let session = wait_for_session(&rt, &cardiology);
    assert_eq!(session.site, "township-a");
    assert!(!session.urgent);
    // Radiology is not who the session is routed to.
    let radiology = client(&relay.addr, &pki, "county-radiology");
    assert!(rt
        .block_on(list_ecg(&radiology, Arc::new(NoProgress)))
        .unwrap()
        .is_empty());
    let seen = watch(&rt, &cardiology, session.session);
    let (ok, out) = cart.wait(Duration::from_secs(60));
    assert!(ok, "{out}");
    assert!(out.contains("1 recording(s) stored"), "{out}");
    assert_eq!(seen.header_rate, 500);
    assert_eq!(seen.ended, Some(true));
    assert_eq!(seen.missed, 0);
    let got = seen.contiguous();
    assert_eq!(got.per_lead(), 3000, "6 s at 500 Hz");
    assert_eq!(got, simulated(7, SampleRate::Hz500, 3000));

    let out_dir = root.join("cardiology");
    let read = run(read_cmd(&relay, &pki, "county-cardiology", &out_dir, true));
    assert!(read.status.success(), "{}", text(&read));
    let recs = recordings(&out_dir);
    assert_eq!(recs.len(), 1, "{recs:?}");
    let summary = pydicom_check(&recs[0], &got, false);
    assert_eq!(summary["samples"], 3000);
    // The audit trail has the session and the viewer.
    let audit = audit_actions(&relay.data);
    assert!(
        audit.contains(&("ecg-stream".into(), "recorded".into())),
        "{audit:?}"
    );
    assert!(
        audit.contains(&("ecg-watch".into(), "ok".into())),
        "{audit:?}"
    );
    // A routine session does not slow the township's uploads.
    assert!(!relay.log_text().contains("urgent ECG live"));
}

/// (action, outcome) of every audit entry.
fn audit_actions(data: &Path) -> Vec<(String, String)> {
    let db = rusqlite::Connection::open(data.join("index.sqlite")).unwrap();
    let mut st = db.prepare("SELECT action, outcome FROM audit").unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// A viewer that stops reading never holds back another, nor the cart: the one reading gets
/// every frame, the stalled one is told how many it missed and goes on live (frame counts, no
/// timing).
#[test]
fn a_stalled_viewer_does_not_hold_back_another() {
    let (_tmp, pki, relay) = ecg_relay("");
    let rt = runtime();
    let cardiology = client(&relay.addr, &pki, "county-cardiology");
    let cart = Cart::start(
        &relay.addr,
        &pki,
        &[
            "--simulate",
            "--seconds",
            "12",
            "--rate",
            "1000",
            "--seed",
            "3",
        ],
    );
    let session = wait_for_session(&rt, &cardiology).session;
    // The stalled viewer: a small window, and a pause of 5 s after its first frame (its whole
    // runtime stops: no reads, no acknowledgements).
    let mut small = cardiology.clone();
    small.tuning.stream_receive_window = 4096;
    let stalled = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut seen = Seen::default();
        let mut paused = false;
        rt.block_on(watch_ecg(&small, session, Arc::new(NoProgress), |e| {
            match e {
                WatchEvent::Block {
                    first_sample,
                    block,
                } => {
                    seen.blocks.insert(first_sample, block);
                    if !paused {
                        paused = true;
                        std::thread::sleep(Duration::from_secs(5));
                    }
                }
                WatchEvent::Missed(n) => seen.missed += n,
                WatchEvent::Ended { complete } => seen.ended = Some(complete),
                WatchEvent::Header(_) => {}
            }
            true
        }))
        .unwrap();
        seen
    });
    let reading = watch(&rt, &cardiology, session);
    let stalled = stalled.join().unwrap();
    let (ok, out) = cart.wait(Duration::from_secs(60));
    assert!(ok, "{out}");
    // The viewer reading got all 12 s, sample for sample, nothing missed.
    assert_eq!(reading.missed, 0);
    assert_eq!(reading.ended, Some(true));
    let got = reading.contiguous();
    assert_eq!(got, simulated(3, SampleRate::Hz1000, 12_000));
    // The stalled one was told it missed frames, then got live ones again until the end.
    assert!(stalled.missed > 0, "{stalled:?}");
    assert_eq!(stalled.ended, Some(true));
    let frames_after_gap = stalled.blocks.keys().filter(|&&s| s > 6 * 1000).count();
    assert!(frames_after_gap > 0, "{:?}", stalled.blocks.keys());
    let total = reading.blocks.len() as u64;
    assert_eq!(
        stalled.blocks.len() as u64 + stalled.missed,
        total,
        "every frame was either received or counted as missed"
    );
}

/// A cart by hand, to send what `yilian ecg stream` never would.
struct RawCart {
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    dec: yilian_proto::FrameDecoder,
    conn: common::hostile::Hostile,
}

impl RawCart {
    async fn open(addr: &str, pki: &Pki, start: &yilian_ecg::wire::Start) -> RawCart {
        let h = common::hostile::Hostile::connect(addr, pki, "township-a-device")
            .await
            .unwrap();
        let (mut send, recv) = h.conn.open_bi().await.unwrap();
        send.write_all(&yilian_proto::encode_frame(
            &yilian_proto::Request::EcgSource,
        ))
        .await
        .unwrap();
        send.write_all(&yilian_proto::encode_frame(
            &yilian_ecg::wire::SourceMsg::Start(Box::new(start.clone())),
        ))
        .await
        .unwrap();
        RawCart {
            send,
            recv,
            dec: yilian_proto::FrameDecoder::new(),
            conn: h,
        }
    }

    async fn msg(&mut self, m: &yilian_ecg::wire::SourceMsg) {
        self.send
            .write_all(&yilian_proto::encode_frame(m))
            .await
            .unwrap();
    }

    async fn reply(&mut self) -> yilian_ecg::wire::SourceReply {
        loop {
            if let Some(r) = self.dec.next_frame("reply").unwrap() {
                return r;
            }
            let c =
                tokio::time::timeout(Duration::from_secs(30), self.recv.read_chunk(65536, true))
                    .await
                    .expect("a reply within 30 s")
                    .unwrap()
                    .expect("the relay ended the stream without a reply");
            self.dec.push(c.bytes);
        }
    }
}

/// The reply that ends a session (what was recorded before it is skipped).
async fn closing(c: &mut RawCart) -> yilian_ecg::wire::SourceReply {
    loop {
        match c.reply().await {
            yilian_ecg::wire::SourceReply::Recorded { .. } => continue,
            other => return other,
        }
    }
}

fn raw_start(session: u8) -> yilian_ecg::wire::Start {
    yilian_ecg::wire::Start {
        patient: yilian_ecg::wire::PatientWire {
            name: yilian_dicom::Phi::new("王^小东".into()),
            id: yilian_dicom::Phi::new("P-7".into()),
            ..Default::default()
        },
        started_unix_ms: 1_796_545_495_000,
        ..yilian_ecg::wire::Start::standard(
            SessionId([session; 16]),
            SampleRate::Hz500,
            &[yilian_ecg::Calibration::default(); 12],
        )
    }
}

fn raw_frame(seq: u64, block: &Block) -> yilian_ecg::wire::SourceMsg {
    let mut data = Vec::new();
    yilian_ecg::codec::encode(block, &mut data);
    let n = block.per_lead() as u64;
    yilian_ecg::wire::SourceMsg::Frame(yilian_ecg::wire::Frame {
        seq,
        first_sample: seq * n,
        device_time_us: seq * n * 2000,
        data,
    })
}

/// Wrong lead counts are refused with a message saying what is wrong; a sequence gap closes
/// the session cleanly: what came before is recorded, marked incomplete, and routed.
#[test]
fn bad_input_is_refused_or_closes_the_session_and_keeps_what_was_recorded() {
    let (tmp, pki, relay) = ecg_relay("");
    let root = tmp.path();
    let rt = runtime();
    let mut sim = Simulator::new(SimSpec::default());
    let blocks: Vec<Block> = (0..10).map(|_| sim.next_block(20)).collect();
    let (refused, closed) = rt.block_on(async {
        let mut eleven = raw_start(1);
        eleven.leads.pop();
        eleven.calibration.pop();
        let mut c = RawCart::open(&relay.addr, &pki, &eleven).await;
        let refused = c.reply().await;

        let mut c = RawCart::open(&relay.addr, &pki, &raw_start(2)).await;
        let accepted = c.reply().await;
        assert!(
            matches!(
                accepted,
                yilian_ecg::wire::SourceReply::Accepted { next_seq: 0, .. }
            ),
            "{accepted:?}"
        );
        for (seq, b) in blocks.iter().enumerate().take(5) {
            c.msg(&raw_frame(seq as u64, b)).await;
        }
        // Frame 5 never comes: 6 does.
        c.msg(&raw_frame(6, &blocks[6])).await;
        // What was recorded, then the end.
        let mut closed = c.reply().await;
        while let yilian_ecg::wire::SourceReply::Recorded { upto_seq, .. } = closed {
            assert_eq!(upto_seq, 5);
            closed = c.reply().await;
        }
        (refused, closed)
    });
    // A rate change mid-session (a second Start) and an oversized frame: each closes its
    // session, incomplete, with the reason.
    let (changed, oversized) = rt.block_on(async {
        let mut c = RawCart::open(&relay.addr, &pki, &raw_start(3)).await;
        c.reply().await;
        c.msg(&raw_frame(0, &blocks[0])).await;
        let mut faster = raw_start(3);
        faster.rate_hz = 1000;
        c.msg(&yilian_ecg::wire::SourceMsg::Start(Box::new(faster)))
            .await;
        let changed = closing(&mut c).await;
        let mut c = RawCart::open(&relay.addr, &pki, &raw_start(4)).await;
        c.reply().await;
        let mut huge = yilian_proto::encode_frame(&raw_frame(0, &blocks[0])).to_vec();
        huge.extend(std::iter::repeat_n(0u8, 70_000));
        let len = (huge.len() - 4) as u32;
        huge[..4].copy_from_slice(&len.to_be_bytes());
        c.send.write_all(&huge).await.unwrap();
        let oversized = closing(&mut c).await;
        (changed, oversized)
    });
    for (what, reply, needle) in [
        ("rate change", changed, "500 Hz → 1000 Hz"),
        ("oversized frame", oversized, "exceeds the limit"),
    ] {
        match reply {
            yilian_ecg::wire::SourceReply::Closed {
                complete, reason, ..
            } => {
                assert!(!complete, "{what}");
                let reason = reason.unwrap_or_default();
                assert!(reason.contains(needle), "{what}: {reason}");
            }
            other => panic!("{what}: {other:?}"),
        }
    }
    match refused {
        yilian_ecg::wire::SourceReply::Refused(r) => {
            assert!(r.reason.contains("11 lead(s)"), "{}", r.reason)
        }
        other => panic!("{other:?}"),
    }
    match closed {
        yilian_ecg::wire::SourceReply::Closed {
            complete,
            objects,
            reason,
        } => {
            assert!(!complete);
            assert_eq!(objects, 1);
            let reason = reason.unwrap_or_default();
            assert!(reason.contains("frames were lost"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let out_dir = root.join("cardiology");
    let read = run(read_cmd(&relay, &pki, "county-cardiology", &out_dir, true));
    assert!(read.status.success(), "{}", text(&read));
    // Two recordings, both marked incomplete: the gap's session (5 frames) and the rate
    // change's (1 frame); the oversized frame came before any sample.
    let recs = recordings(&out_dir);
    assert_eq!(recs.len(), 2, "{recs:?}");
    let mut first5 = blocks[0].clone();
    for b in &blocks[1..5] {
        first5.extend(b);
    }
    let mut sizes = Vec::new();
    for r in &recs {
        let n = yilian_dicom::waveform::read_waveforms_file(r).unwrap()[0].samples_per_channel();
        let expected = if n == 100 { &first5 } else { &blocks[0] };
        let summary = pydicom_check(r, expected, true);
        sizes.push(summary["samples"].as_u64().unwrap());
    }
    sizes.sort();
    assert_eq!(sizes, vec![20, 100]);
    // No patient name in the relay's log.
    assert!(!relay.log_text().contains("小东"));
    let audit = audit_actions(&relay.data);
    assert!(
        audit.contains(&("ecg-stream".into(), "refused".into())),
        "{audit:?}"
    );
    assert!(
        audit.contains(&("ecg-stream".into(), "recorded-incomplete".into())),
        "{audit:?}"
    );
}

/// Every recording under `dir` in session order (Instance Number), as one block.
fn recorded_samples(dir: &Path) -> (Block, usize) {
    let mut parts: Vec<(i64, Block)> = recordings(dir)
        .iter()
        .map(|p| {
            let obj = dicom_object::open_file(p).unwrap();
            let n = obj
                .element(dicom_dictionary_std::tags::INSTANCE_NUMBER)
                .unwrap()
                .to_int::<i64>()
                .unwrap();
            let groups = yilian_dicom::waveform::read_waveforms_file(p).unwrap();
            assert_eq!(groups.len(), 1);
            (n, Block::from_interleaved(&groups[0].samples).unwrap())
        })
        .collect();
    parts.sort_by_key(|(n, _)| *n);
    let count = parts.len();
    let mut all = Block::default();
    for (_, b) in parts {
        if all.is_empty() {
            all = b;
        } else {
            all.extend(&b);
        }
    }
    (all, count)
}

fn instances_stored(data: &Path) -> i64 {
    let db = rusqlite::Connection::open(data.join("index.sqlite")).unwrap();
    db.query_row("SELECT COUNT(*) FROM instances", [], |r| r.get(0))
        .unwrap()
}

/// A relay killed (SIGKILL) mid-session and started again: the cart keeps every frame not yet
/// recorded, sends it again, and the recording is complete — each object once.
#[test]
fn a_relay_killed_mid_session_loses_nothing_of_the_recording() {
    let (tmp, pki, mut relay) = ecg_relay("[ecg]\nobject = \"2s\"\n");
    let root = tmp.path();
    let cart = Cart::start(
        &relay.addr,
        &pki,
        &["--simulate", "--seconds", "8", "--seed", "11"],
    );
    wait_until("a first recording", Duration::from_secs(30), || {
        relay.data.join("index.sqlite").exists() && instances_stored(&relay.data) >= 1
    });
    relay.kill9();
    std::thread::sleep(Duration::from_secs(1));
    relay.restart();
    let (ok, out) = cart.wait(Duration::from_secs(90));
    assert!(ok, "{out}");
    assert!(out.contains("reconnection"), "{out}");
    assert_eq!(instances_stored(&relay.data), 4, "8 s in objects of 2 s");
    let out_dir = root.join("cardiology");
    let read = run(read_cmd(&relay, &pki, "county-cardiology", &out_dir, true));
    assert!(read.status.success(), "{}", text(&read));
    let (all, objects) = recorded_samples(&out_dir);
    assert_eq!(objects, 4);
    assert_eq!(all, simulated(11, SampleRate::Hz500, 4000));
}

/// Loss, reordering and a 3-second cut on the cart's link: the viewer on a good link and the
/// recording still get every sample, in order.
#[test]
fn loss_reordering_and_a_cut_on_the_carts_link_leave_the_recording_complete() {
    use yilian_linkem::{LinkSpec, UdpProxy};
    let (tmp, pki, relay) = ecg_relay("[ecg]\nobject = \"4s\"\n");
    let root = tmp.path();
    let rt = runtime();
    let link = LinkSpec::rural(20_000_000, Duration::from_millis(120), 0.02)
        .with_reorder(0.02, Duration::from_millis(15));
    let proxy = rt
        .block_on(UdpProxy::start(
            "127.0.0.1:0".parse().unwrap(),
            relay.addr.parse().unwrap(),
            link.clone(),
            link,
            16,
        ))
        .unwrap();
    let via = proxy.local_addr().to_string();
    let cardiology = client(&relay.addr, &pki, "county-cardiology");
    let cart = Cart::start(
        &via,
        &pki,
        &["--simulate", "--seconds", "10", "--seed", "5"],
    );
    let session = wait_for_session(&rt, &cardiology).session;
    let viewer = {
        let cardiology = cardiology.clone();
        std::thread::spawn(move || watch(&runtime(), &cardiology, session))
    };
    std::thread::sleep(Duration::from_secs(3));
    proxy.cut_for(Duration::from_secs(3));
    let (ok, out) = cart.wait(Duration::from_secs(90));
    assert!(ok, "{out}");
    let seen = viewer.join().unwrap();
    let expected = simulated(5, SampleRate::Hz500, 5000);
    assert_eq!(seen.ended, Some(true));
    // The viewer trails the cart by the cut, so it may have skipped ahead: what it got is
    // exact, and what it did not get it was told about.
    for (&first, b) in &seen.blocks {
        let n = b.per_lead();
        for lead in yilian_ecg::Lead::ALL {
            assert_eq!(
                b.lead(lead),
                &expected.lead(lead)[first as usize..first as usize + n]
            );
        }
    }
    assert_eq!(seen.blocks.len() as u64 + seen.missed, 250);
    let out_dir = root.join("cardiology");
    let read = run(read_cmd(&relay, &pki, "county-cardiology", &out_dir, true));
    assert!(read.status.success(), "{}", text(&read));
    let (all, objects) = recorded_samples(&out_dir);
    assert_eq!(objects, 3, "10 s in objects of 4 s");
    assert_eq!(all, expected);
    proxy.shutdown();
}

fn pydicom_file(name: &str) -> PathBuf {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            &format!("from pydicom.data import get_testdata_file as f; print(f('{name}'))"),
        ])
        .output()
        .expect("python3 (scripts/test installs pydicom 3.0.2)");
    let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success() && p != "None",
        "pydicom's {name} is missing: pip install pydicom==3.0.2"
    );
    PathBuf::from(p)
}

/// pydicom's real 12-lead ECG (1000 Hz, 10 s) replayed in real time through the relay: the
/// recording holds the same samples and the same physical values (µV).
#[test]
fn pydicoms_ecg_sample_replayed_through_the_relay_round_trips() {
    let (tmp, pki, relay) = ecg_relay("");
    let root = tmp.path();
    let sample = pydicom_file("waveform_ecg.dcm");
    let cart = Cart::start(&relay.addr, &pki, &["--file", sample.to_str().unwrap()]);
    let (ok, out) = cart.wait(Duration::from_secs(60));
    assert!(ok, "{out}");
    assert!(out.contains("10.0 s of ECG"), "{out}");
    let original = yilian_dicom::waveform::read_waveforms_file(&sample).unwrap();
    let g = &original[0];
    let out_dir = root.join("cardiology");
    let read = run(read_cmd(&relay, &pki, "county-cardiology", &out_dir, true));
    assert!(read.status.success(), "{}", text(&read));
    let recs = recordings(&out_dir);
    assert_eq!(recs.len(), 1);
    let recorded = yilian_dicom::waveform::read_waveforms_file(&recs[0]).unwrap();
    let r = &recorded[0];
    assert_eq!(r.sampling_frequency, 1000.0);
    assert_eq!(r.samples_per_channel(), g.samples_per_channel());
    for (lead_index, lead) in yilian_ecg::Lead::ALL.iter().enumerate() {
        let from = g
            .channels
            .iter()
            .position(|c| yilian_ecg::Lead::from_label(&c.label) == Some(*lead))
            .unwrap();
        let (a, b) = (&g.channels[from], &r.channels[lead_index]);
        let (sa, sb) = (
            g.channel_samples(from).unwrap(),
            r.channel_samples(lead_index).unwrap(),
        );
        assert_eq!(sa, sb, "lead {}", lead.label());
        for (x, y) in sa.iter().zip(&sb).step_by(97) {
            assert!(
                (a.physical(*x) - b.physical(*y)).abs() < 1e-9,
                "lead {}",
                lead.label()
            );
        }
    }
    // And pydicom reads the recording as it reads the original.
    let expected = {
        let mut lead_major = Vec::new();
        for lead in yilian_ecg::Lead::ALL {
            let from = g
                .channels
                .iter()
                .position(|c| yilian_ecg::Lead::from_label(&c.label) == Some(lead))
                .unwrap();
            lead_major.extend(g.channel_samples(from).unwrap());
        }
        Block::from_lead_major(lead_major).unwrap()
    };
    pydicom_check(&recs[0], &expected, false);
}

/// `--urgent` (a suspected STEMI): the session is urgent for its viewers and its recording is
/// routed urgent.
#[test]
fn an_urgent_session_is_listed_urgent_and_recorded_urgent() {
    let (_tmp, pki, relay) = ecg_relay("");
    let rt = runtime();
    let cardiology = client(&relay.addr, &pki, "county-cardiology");
    let cart = Cart::start(
        &relay.addr,
        &pki,
        &["--simulate", "--st-elevation", "--urgent", "--seconds", "2"],
    );
    let session = wait_for_session(&rt, &cardiology);
    assert!(session.urgent);
    let (ok, out) = cart.wait(Duration::from_secs(60));
    assert!(ok, "{out}");
    assert!(out.contains("(urgent)"), "{out}");
    let db = rusqlite::Connection::open(relay.data.join("index.sqlite")).unwrap();
    let priorities: Vec<i64> = db
        .prepare("SELECT priority FROM outbox")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(priorities, vec![1], "one recording, urgent");
}

/// A cart that vanishes (killed): after the grace period its session is closed, what was
/// received is recorded, marked incomplete and routed, and viewers are told.
#[test]
fn a_cart_that_vanishes_leaves_an_incomplete_recording_routed() {
    let (tmp, pki, relay) = ecg_relay("[ecg]\nidle = \"1s\"\ngrace = \"2s\"\n");
    let root = tmp.path();
    let rt = runtime();
    let cardiology = client(&relay.addr, &pki, "county-cardiology");
    let mut cart = Cart::start(
        &relay.addr,
        &pki,
        &["--simulate", "--seconds", "30", "--seed", "2"],
    );
    let session = wait_for_session(&rt, &cardiology).session;
    let viewer = {
        let cardiology = cardiology.clone();
        std::thread::spawn(move || watch(&runtime(), &cardiology, session))
    };
    std::thread::sleep(Duration::from_secs(2));
    let mut child = cart.0.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let seen = viewer.join().unwrap();
    assert_eq!(
        seen.ended,
        Some(false),
        "viewers are told it ended incomplete"
    );
    let got = seen.contiguous();
    assert!(got.per_lead() > 0);
    let out_dir = root.join("cardiology");
    let read = run(read_cmd(&relay, &pki, "county-cardiology", &out_dir, true));
    assert!(read.status.success(), "{}", text(&read));
    let recs = recordings(&out_dir);
    assert_eq!(recs.len(), 1);
    // Everything the relay received, which is what the viewer got.
    pydicom_check(&recs[0], &got, true);
    assert!(relay.log_text().contains("did not come back"));
}

/// A STEMI ECG from a township whose uplink (20 Mbit/s, 120 ms, 2 % loss, emulated) is busy
/// with a CT upload: the session stays live and in order for the viewer, its recording is
/// complete, and the CT still arrives whole (completeness and order only: `benches/` measures
/// the latency).
#[test]
fn an_urgent_ecg_on_a_busy_uplink_stays_in_order_and_complete() {
    use yilian_linkem::{LinkSpec, UdpProxy};
    let (tmp, pki, relay) = ecg_relay("");
    let root = tmp.path();
    let rt = runtime();
    let link = LinkSpec::rural(20_000_000, Duration::from_millis(120), 0.02);
    let proxy = rt
        .block_on(UdpProxy::start(
            "127.0.0.1:0".parse().unwrap(),
            relay.addr.parse().unwrap(),
            link.clone(),
            link,
            23,
        ))
        .unwrap();
    let via = proxy.local_addr().to_string();
    let ct = yilian_testkit::ct_series(
        &root.join("ct"),
        &yilian_testkit::StudySpec::new("CT", 31),
        40,
        512,
        512,
        31,
    )
    .unwrap();
    let mut upload = peer_cmd_at("send", &via, &pki, "township-a-device");
    upload.arg(root.join("ct"));
    let upload = std::thread::spawn(move || run(upload));
    std::thread::sleep(Duration::from_secs(2));
    let cardiology = client(&relay.addr, &pki, "county-cardiology");
    let cart = Cart::start(
        &via,
        &pki,
        &[
            "--simulate",
            "--urgent",
            "--st-elevation",
            "--seconds",
            "8",
            "--seed",
            "9",
        ],
    );
    let session = wait_for_session(&rt, &cardiology).session;
    let seen = watch(&rt, &cardiology, session);
    let (ok, out) = cart.wait(Duration::from_secs(120));
    assert!(ok, "{out}");
    let sent = upload.join().unwrap();
    assert!(sent.status.success(), "{}", text(&sent));
    // The relay told the township's uploads to make room while the urgent session lived, and
    // `send` obeyed (its controllers follow the order it reports; `yilian_transport::uplink`).
    assert!(
        text(&sent).contains("an urgent ECG from this township is live: uploads make room"),
        "{}",
        text(&sent)
    );
    let log = relay.log_text();
    let on = log
        .find("urgent ECG live: the site's uploads yield the uplink")
        .unwrap_or_else(|| panic!("no yield order in the relay's log:\n{log}"));
    let off = log
        .find("no urgent ECG live any more: the site's uploads take the uplink back")
        .unwrap_or_else(|| panic!("the yield order never ended:\n{log}"));
    assert!(on < off);
    // Live: in order, exact, everything received or counted.
    let mut sim = Simulator::new(SimSpec {
        seed: 9,
        st_elevation: true,
        ..SimSpec::default()
    });
    let expected = sim.next_block(4000);
    let mut last = None;
    for (&first, b) in &seen.blocks {
        assert!(last.is_none_or(|l| first > l));
        last = Some(first);
        for lead in yilian_ecg::Lead::ALL {
            assert_eq!(
                b.lead(lead),
                &expected.lead(lead)[first as usize..first as usize + b.per_lead()]
            );
        }
    }
    assert_eq!(seen.blocks.len() as u64 + seen.missed, 200);
    assert_eq!(seen.ended, Some(true));
    // The recording is complete, and so is the CT.
    let out_dir = root.join("cardiology");
    let read = run(read_cmd(&relay, &pki, "county-cardiology", &out_dir, true));
    assert!(read.status.success(), "{}", text(&read));
    let (all, _) = recorded_samples(&out_dir);
    assert_eq!(all, expected);
    let radiology_dir = root.join("radiology");
    let read = run(read_cmd(
        &relay,
        &pki,
        "county-radiology",
        &radiology_dir,
        true,
    ));
    assert!(read.status.success(), "{}", text(&read));
    assert_eq!(received(&radiology_dir), common::expected(&ct));
    proxy.shutdown();
}

/// DICOM ECG objects that arrive by upload (`yilian send`) or by C-STORE (DCMTK `storescu`)
/// are routed to cardiology and understood: their leads and samples decode as the original's.
#[test]
fn ecg_objects_uploaded_or_c_stored_are_routed_and_decoded() {
    let r = common::dimse::relay_with_dimse("2s");
    let sample = pydicom_file("waveform_ecg.dcm");
    // By C-STORE from township A's console; then by upload, a copy under another SOP Instance
    // UID (so both are kept).
    let stored = run({
        let mut c = common::dimse::dcmtk("storescu");
        c.args(["-aet", "TWA_DR1", "-aec", "YILIAN", "127.0.0.1"])
            .arg(r.port.to_string())
            .arg(&sample);
        c
    });
    assert!(stored.status.success(), "{}", text(&stored));
    let copy = r.root.join("copy.dcm");
    {
        let mut obj = dicom_object::open_file(&sample).unwrap();
        let uid = "2.25.99887766554433221100";
        obj.put(dicom_object::mem::InMemElement::new(
            dicom_dictionary_std::tags::SOP_INSTANCE_UID,
            dicom_core::VR::UI,
            dicom_core::PrimitiveValue::from(uid),
        ));
        obj.meta_mut().media_storage_sop_instance_uid = uid.to_string();
        obj.meta_mut().update_information_group_length();
        obj.write_to_file(&copy).unwrap();
    }
    let sent = run(send_cmd(&r.relay, &r.pki, "township-a-device", &[&copy]));
    assert!(sent.status.success(), "{}", text(&sent));
    let out_dir = r.root.join("cardiology");
    let read = run(read_cmd(
        &r.relay,
        &r.pki,
        "county-cardiology",
        &out_dir,
        true,
    ));
    assert!(read.status.success(), "{}", text(&read));
    let recs = recordings(&out_dir);
    assert_eq!(recs.len(), 2, "{recs:?}");
    let original = yilian_dicom::waveform::read_waveforms_file(&sample).unwrap();
    for rec in &recs {
        let got = yilian_dicom::waveform::read_waveforms_file(rec).unwrap();
        assert_eq!(got, original, "{}", rec.display());
    }
    assert_eq!(original.len(), 2);
    assert_eq!(original[0].channels.len(), 12);
}

/// `yilian ecg watch` lists the session, then shows it: lead II's heart rate and the frames,
/// until the session ends.
#[test]
fn ecg_watch_lists_and_shows_a_session_with_its_heart_rate() {
    let (_tmp, pki, relay) = ecg_relay("");
    let cart = Cart::start(
        &relay.addr,
        &pki,
        &["--simulate", "--seconds", "8", "--heart-rate", "72"],
    );
    let rt = runtime();
    let session = wait_for_session(&rt, &client(&relay.addr, &pki, "county-cardiology")).session;
    let list = run(peer_cmd("ecg watch", &relay, &pki, "county-cardiology"));
    assert!(list.status.success(), "{}", text(&list));
    let listed = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(listed.contains(&session.hex()), "{listed}");
    assert!(listed.contains("township-a"), "{listed}");
    let mut watch = peer_cmd("ecg watch", &relay, &pki, "county-cardiology");
    watch.args(["--session", &session.hex()[..8]]);
    let shown = run(watch);
    assert!(shown.status.success(), "{}", text(&shown));
    let out = String::from_utf8_lossy(&shown.stdout).to_string();
    assert!(out.contains("session ended"), "{out}");
    // The last status line's heart rate.
    let hr: f64 = out
        .lines()
        .filter_map(|l| l.split("HR ").nth(1))
        .filter_map(|r| r.split(' ').next())
        .filter_map(|v| v.parse().ok())
        .next_back()
        .unwrap_or_else(|| panic!("no heart rate shown: {out}"));
    assert!((66.0..=78.0).contains(&hr), "{hr} bpm: {out}");
    // A radiology reader may not watch it.
    let mut other = peer_cmd("ecg watch", &relay, &pki, "county-radiology");
    other.args(["--session", &session.hex()]);
    let refused = run(other);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("no live ECG session"),
        "{}",
        text(&refused)
    );
    let (ok, out) = cart.wait(Duration::from_secs(60));
    assert!(ok, "{out}");
}

/// Live frames travel as datagrams too (each carrying the frames just before it): a viewer gets
/// frames the stream has not brought yet, and a datagram's copies fill one that was lost; the
/// recording still takes the stream's.
#[test]
fn viewers_get_frames_from_datagrams_before_the_stream_brings_them() {
    let (tmp, pki, relay) = ecg_relay("");
    let root = tmp.path();
    let rt = runtime();
    let cardiology = client(&relay.addr, &pki, "county-cardiology");
    let mut sim = Simulator::new(SimSpec::default());
    let blocks: Vec<Block> = (0..6).map(|_| sim.next_block(20)).collect();
    let start = raw_start(8);
    let session = start.session;
    let frame = |seq: usize| match raw_frame(seq as u64, &blocks[seq]) {
        yilian_ecg::wire::SourceMsg::Frame(f) => f,
        _ => unreachable!("raw_frame makes frames"),
    };
    let mut cart = rt.block_on(RawCart::open(&relay.addr, &pki, &start));
    assert!(matches!(
        rt.block_on(cart.reply()),
        yilian_ecg::wire::SourceReply::Accepted { .. }
    ));
    // A viewer joins; frames 0–3 come only as datagrams: 0, then {2, 3} (1 is "lost"), then
    // {1, 2, 3} (the copies).
    let (tx, rx) = std::sync::mpsc::channel();
    let viewer = {
        let cardiology = cardiology.clone();
        std::thread::spawn(move || {
            runtime().block_on(watch_ecg(&cardiology, session, Arc::new(NoProgress), |e| {
                let go_on = !matches!(e, WatchEvent::Ended { .. });
                tx.send(e).is_ok() && go_on
            }))
        })
    };
    let next_block = |rx: &std::sync::mpsc::Receiver<WatchEvent>| loop {
        match rx.recv_timeout(Duration::from_secs(30)).expect("an event") {
            WatchEvent::Block { first_sample, .. } => return first_sample,
            WatchEvent::Header(_) | WatchEvent::Missed(_) => continue,
            WatchEvent::Ended { .. } => panic!("ended early"),
        }
    };
    let datagram = |frames: &[usize]| {
        let fs: Vec<_> = frames.iter().map(|&s| frame(s)).collect();
        let refs: Vec<_> = fs.iter().collect();
        yilian_ecg::wire::LiveDatagram::fitting(session, &refs, 1200).unwrap()
    };
    // Wait for the viewer to be attached (its header) before sending.
    loop {
        if let WatchEvent::Header(_) = rx.recv_timeout(Duration::from_secs(30)).unwrap() {
            break;
        }
    }
    cart.conn.conn.send_datagram(datagram(&[0]).into()).unwrap();
    assert_eq!(next_block(&rx), 0);
    cart.conn
        .conn
        .send_datagram(datagram(&[2, 3]).into())
        .unwrap();
    cart.conn
        .conn
        .send_datagram(datagram(&[1, 2, 3]).into())
        .unwrap();
    assert_eq!(next_block(&rx), 20);
    assert_eq!(next_block(&rx), 40);
    assert_eq!(next_block(&rx), 60);
    // Now the stream: all six frames, then End; the recording is the stream's.
    rt.block_on(async {
        for (seq, b) in blocks.iter().enumerate() {
            cart.msg(&raw_frame(seq as u64, b)).await;
        }
        cart.msg(&yilian_ecg::wire::SourceMsg::End).await;
        assert!(matches!(
            closing(&mut cart).await,
            yilian_ecg::wire::SourceReply::Closed { complete: true, .. }
        ));
    });
    assert_eq!(next_block(&rx), 80);
    assert_eq!(next_block(&rx), 100);
    viewer.join().unwrap().unwrap();
    let out_dir = root.join("cardiology");
    let read = run(read_cmd(&relay, &pki, "county-cardiology", &out_dir, true));
    assert!(read.status.success(), "{}", text(&read));
    let (all, _) = recorded_samples(&out_dir);
    let mut expected = blocks[0].clone();
    for b in &blocks[1..] {
        expected.extend(b);
    }
    assert_eq!(all, expected);
}
