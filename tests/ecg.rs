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
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let pki = Pki::new(&root.join("pki"));
    let relay = RelayProc::start(&root.join("relay"), &pki);
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
