//! One reader certificate, two `yilian read` processes (two workstations sharing it, or one
//! started twice): the first keeps the subscription, the second is refused once, told where
//! the first is connected from, and exits; a reader that left or died does not lock its
//! certificate out. Real processes on loopback.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;
use yilian_testkit::{ct_series, StudySpec};

/// A `yilian read` (without --once) running in the background, its stderr in a file.
struct Reader {
    child: Child,
    out: PathBuf,
    stderr: PathBuf,
}

impl Reader {
    fn start(relay: &RelayProc, pki: &Pki, identity: &str, dir: &Path, name: &str) -> Reader {
        let out = dir.join(name);
        let stderr = dir.join(format!("{name}.stderr"));
        let child = read_cmd(relay, pki, identity, &out, false)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Reader { child, out, stderr }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many reader sessions the relay started.
fn subscriptions(relay: &RelayProc) -> usize {
    relay.log_text().matches("reader subscribed").count()
}

fn wait_subscriptions(relay: &RelayProc, n: usize) {
    wait_until(
        &format!("{n} reader subscription(s) at the relay"),
        Duration::from_secs(120),
        || subscriptions(relay) >= n,
    );
}

/// The addresses `identity` connected from, in order (the relay's "peer connected" lines).
fn connected_from(relay: &RelayProc, identity: &str) -> Vec<String> {
    let peer = format!("peer={identity} ");
    relay
        .log_text()
        .lines()
        .filter(|l| l.contains("peer connected") && l.contains(&peer))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("remote="))
                .map(str::to_string)
        })
        .collect()
}

/// A small CT study sent by the township device; returns what the reader must receive.
fn send_study(
    relay: &RelayProc,
    pki: &Pki,
    dir: &Path,
    seed: u64,
) -> std::collections::BTreeMap<String, [u8; 32]> {
    let study = dir.join(format!("study-{seed}"));
    std::fs::create_dir_all(&study).unwrap();
    let files = ct_series(&study, &StudySpec::new("CT", seed), 4, 256, 256, seed).unwrap();
    let out = run(send_cmd(relay, pki, "township-a-device", &[&study]));
    assert!(out.status.success(), "send failed: {}", text(&out));
    expected(&files)
}

#[test]
fn a_second_reader_with_the_same_certificate_is_refused_once_and_the_first_keeps_receiving() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay = RelayProc::start(&tmp.path().join("relay"), &pki);

    let first = Reader::start(&relay, &pki, "county-radiology", tmp.path(), "first");
    wait_subscriptions(&relay, 1);
    let first_from = connected_from(&relay, "county-radiology").remove(0);

    // The second workstation: refused, told where the first is, and it stops by itself.
    let second_out = tmp.path().join("second");
    let out = run_guarded(
        read_cmd(&relay, &pki, "county-radiology", &second_out, false),
        Duration::from_secs(120),
        "the second reader with the same certificate",
    );
    let said = text(&out);
    assert!(
        !out.status.success(),
        "refused means a failing exit: {said}"
    );
    assert!(
        said.contains("county-radiology is already reading")
            && said.contains(&format!("connected from {first_from} since")),
        "names where the first reader is connected from: {said}"
    );
    assert!(
        said.contains("Stop that `yilian read` first"),
        "says what to do, whole: {said}"
    );
    assert_eq!(
        said.matches("already reading").count(),
        1,
        "said once: {said}"
    );
    assert!(!said.contains("reconnecting"), "no retry loop: {said}");

    // The first was never interrupted and receives what is sent afterwards.
    let want = send_study(&relay, &pki, tmp.path(), 71);
    wait_until(
        "the study at the first reader",
        Duration::from_secs(120),
        || received(&first.out) == want,
    );
    assert!(
        received(&second_out).is_empty(),
        "nothing went to the refused one"
    );
    assert!(
        !first.stderr().contains("link to the relay lost"),
        "the first reader kept its subscription: {}",
        first.stderr()
    );
    assert_eq!(subscriptions(&relay), 1, "one subscription only");
}

#[test]
fn after_a_reader_leaves_the_next_one_with_its_certificate_gets_in_and_receives() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay = RelayProc::start(&tmp.path().join("relay"), &pki);

    let want1 = send_study(&relay, &pki, tmp.path(), 72);
    let one = tmp.path().join("one");
    let out = run(read_cmd(&relay, &pki, "county-radiology", &one, true));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(received(&one), want1);

    // The first one left (its --once run ended): the next one is let in at once.
    let next = Reader::start(&relay, &pki, "county-radiology", tmp.path(), "next");
    wait_subscriptions(&relay, 2);
    let want2 = send_study(&relay, &pki, tmp.path(), 73);
    wait_until(
        "the second study at the next reader",
        Duration::from_secs(120),
        || received(&next.out) == want2,
    );
    assert!(
        !next.stderr().contains("already reading"),
        "{}",
        next.stderr()
    );
}

#[test]
fn a_reader_killed_and_restarted_at_once_gets_its_certificate_back() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay = RelayProc::start(&tmp.path().join("relay"), &pki);

    let mut killed = Reader::start(&relay, &pki, "county-radiology", tmp.path(), "killed");
    wait_subscriptions(&relay, 1);
    // SIGKILL: its connection stays open at the relay until found silent.
    killed.child.kill().unwrap();
    killed.child.wait().unwrap();

    let restarted = Reader::start(&relay, &pki, "county-radiology", tmp.path(), "restarted");
    // Let in once the relay found the old connection silent (long before its idle timeout).
    wait_subscriptions(&relay, 2);
    assert!(
        relay.log_text().contains("did not answer"),
        "the old connection was probed and taken over from"
    );
    let want = send_study(&relay, &pki, tmp.path(), 74);
    wait_until(
        "the study at the restarted reader",
        Duration::from_secs(120),
        || received(&restarted.out) == want,
    );
    assert!(
        !restarted.stderr().contains("already reading"),
        "{}",
        restarted.stderr()
    );
}
