//! A relay never reached in this run versus a relay that was up and went away: `send` and
//! `read` to an address where nothing answers say the address may be wrong (which address,
//! port and certificate name) and give up soon; an outage after the link was up is waited
//! out for the whole `--give-up-after`. Real processes on loopback.

mod common;
use common::*;
use std::process::Stdio;
use std::time::Duration;
use yilian_testkit::{dx_image, large_instance, StudySpec};

fn assert_names_the_target(said: &str, port: u16) {
    for what in [
        format!("localhost:{port}"),
        "127.0.0.1".to_string(),
        format!("UDP port {port}"),
        "certificate name \"localhost\"".to_string(),
        "the address may be wrong".to_string(),
        "firewalls let UDP through".to_string(),
    ] {
        assert!(said.contains(&what), "says {what:?}: {said}");
    }
}

#[test]
fn send_and_read_to_an_address_where_no_relay_answers_say_so_and_give_up() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let file = tmp.path().join("DX.dcm");
    dx_image(&file, &StudySpec::new("DX", 81), 64, 64, 81).unwrap();
    // Nothing listens on this UDP port.
    let port = free_udp_port();
    let relay = format!("localhost:{port}");

    let mut send = peer_cmd_default_budget("send", &relay, &pki, "township-a-device");
    send.arg(&file);
    let mut read = peer_cmd_default_budget("read", &relay, &pki, "county-radiology");
    read.arg("--out").arg(tmp.path().join("received"));
    // Both at once (the guard only catches a hang: the default budget is 10 minutes).
    let reading = std::thread::spawn(move || {
        run_guarded(read, Duration::from_secs(120), "read to a dead address")
    });
    let sent = run_guarded(send, Duration::from_secs(120), "send to a dead address");
    let read = reading.join().unwrap();

    for (what, out) in [("send", &sent), ("read", &read)] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what} fails: {stderr}");
        assert_names_the_target(&stderr, port);
        assert!(
            stderr.contains("no relay answered at"),
            "{what} says nothing answered: {stderr}"
        );
    }
}

/// The relay was up (part of the upload acknowledged), then gone for longer than a first
/// contact may take, with connections that die after 3 s of silence: `send` keeps trying for
/// its whole `--give-up-after` (60 s here) and finishes once the relay is back.
#[test]
fn an_outage_after_the_link_was_up_is_waited_out_longer_than_a_first_contact() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let mut relay = RelayProc::start_with(
        &tmp.path().join("relay"),
        &pki,
        "[transport]\nkeep_alive = \"1s\"\nidle_timeout = \"3s\"\n",
    );
    let dir = tmp.path().join("big");
    std::fs::create_dir_all(&dir).unwrap();
    let g = large_instance(
        &dir.join("big.dcm"),
        &StudySpec::new("CT", 82),
        128 << 20,
        82,
    )
    .unwrap();

    let err_path = tmp.path().join("send.err");
    let mut child = send_cmd(&relay, &pki, "township-a-device", &[&dir])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    wait_until("a fifth at the relay", Duration::from_secs(120), || {
        relay_bytes(&relay.data) * 5 >= g.size
    });
    relay.kill9();
    // Longer than a first contact is given: a sender that had reached the relay keeps going.
    std::thread::sleep(yilian_client::FIRST_CONTACT_BUDGET + Duration::from_secs(10));
    relay.restart();
    let status = wait_for_exit(
        &mut child,
        Duration::from_secs(240),
        "the sender after the relay came back",
    );
    let err = std::fs::read_to_string(&err_path).unwrap();
    assert!(status.success(), "send waited for the relay: {err}");
    assert!(
        !err.contains("may be wrong"),
        "a relay reached once is not called a wrong address: {err}"
    );
    let out_dir = tmp.path().join("radiology");
    let o = run(read_cmd(&relay, &pki, "county-radiology", &out_dir, true));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(received(&out_dir), expected(&[g]));
}
