//! A real viewer on the relay (issue 17, point 6): OHIF's prebuilt `dist/` from npm
//! (`@ohif/app` 3.13.2, fetched by `scripts/test`) is served by the relay from
//! `[http] viewer_dir`, with `docs/ohif/app-config.js` (the one README tells admins to install)
//! pointing OHIF's DICOMweb data source at the relay's own `/dicomweb`. Headless Chromium
//! (Debian's, driven by selenium through `tests/py/ohif_check.py`) opens it as a county
//! radiologist, then as the ultrasound reader, each with a token from `yilian token issue`: each
//! study list shows exactly that reader's studies, and opening the CT renders it.

mod common;

use common::dimse::free_tcp_port;
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// The OHIF version `scripts/test` installs (its `dist/` under `YILIAN_OHIF_DIST`).
const OHIF_VERSION: &str = "3.13.2";

/// OHIF's `dist/`, as `scripts/test` extracts it from `npm pack @ohif/app@3.13.2`.
fn ohif_dist() -> PathBuf {
    let hint = format!(
        "run scripts/test: it fetches OHIF {OHIF_VERSION} (npm pack @ohif/app@{OHIF_VERSION}), \
         extracts it and sets YILIAN_OHIF_DIST to its dist/ folder"
    );
    let dist = std::env::var_os("YILIAN_OHIF_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("YILIAN_OHIF_DIST is not set: {hint}"));
    assert!(
        dist.join("index.html").is_file() && dist.join("app-config.js").is_file(),
        "{} is not OHIF's dist/ folder (no index.html, app-config.js): {hint}",
        dist.display()
    );
    let package = std::fs::read_to_string(dist.join("../package.json")).unwrap_or_default();
    assert!(
        package.contains(&format!("\"version\": \"{OHIF_VERSION}\"")),
        "{} is not OHIF {OHIF_VERSION}'s dist/: {hint}",
        dist.display()
    );
    dist
}

/// The viewer folder the relay serves: every entry of OHIF's `dist/` linked (the npm copy
/// stays untouched), and our own `app-config.js`.
fn viewer_dir(dist: &Path, dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for entry in std::fs::read_dir(dist).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "app-config.js" {
            std::os::unix::fs::symlink(entry.path(), dir.join(entry.file_name())).unwrap();
        }
    }
    std::fs::write(dir.join("app-config.js"), APP_CONFIG).unwrap();
    dir.to_path_buf()
}

/// OHIF's configuration for a relay that serves it, as README tells admins to install it:
/// the DICOMweb data source is the relay's `/dicomweb` on the same origin, and the token from
/// the address (`/#token=TOKEN`) goes in every request's `Authorization: Bearer` header.
const APP_CONFIG: &str = include_str!("../docs/ohif/app-config.js");

/// `yilian token issue --identity IDENTITY` against `relay`'s config: the token.
fn reader_token(relay: &RelayProc, identity: &str) -> String {
    let mut c = yilian();
    c.args(["token", "issue", "--identity", identity, "--ttl", "1h"])
        .arg("--config")
        .arg(&relay.config);
    let out = run(c);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .map(|l| l.trim().to_string())
        .expect("token issue prints the token last")
}

/// A synthetic study of the test: the patient named and numbered as given.
fn spec(modality: &str, seed: u64, patient: &str, id: &str) -> yilian_testkit::StudySpec {
    let mut s = yilian_testkit::StudySpec::new(modality, seed);
    s.patient_name = patient.into();
    s.patient_id = id.into();
    s
}

#[test]
fn ohif_from_npm_shows_a_readers_studies_and_renders_its_ct() {
    let dist = ohif_dist();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let viewer = viewer_dir(&dist, &root.join("viewer"));
    let pki = Pki::new(&root.join("pki"));
    let port = free_tcp_port();
    let relay = RelayProc::start_with(
        &root.join("relay"),
        &pki,
        &format!("[http]\nlisten = \"127.0.0.1:{port}\"\nviewer_dir = {viewer:?}\n"),
    );

    // Township A sends two studies routed to county radiology (a CT of 512×512 slices and a
    // DX) and an ultrasound routed to county ultrasound.
    let ct_dir = root.join("ct");
    let ct = yilian_testkit::ct_series(
        &ct_dir,
        &spec("CT", 8101, "CHEN^JIANGUO", "OHIFCT8101"),
        4,
        512,
        512,
        8101,
    )
    .unwrap();
    let dx = yilian_testkit::dx_image(
        &root.join("dx.dcm"),
        &spec("DX", 8102, "LIU^FANG", "OHIFDX8102"),
        256,
        256,
        8102,
    )
    .unwrap();
    let us = yilian_testkit::us_multiframe(
        &root.join("us.dcm"),
        &spec("US", 8103, "ZHAO^MIN", "OHIFUS8103"),
        2,
        64,
        64,
        8103,
    )
    .unwrap();
    let sent = run(send_cmd(
        &relay,
        &pki,
        "township-a-device",
        &[&ct_dir, &dx.path, &us.path],
    ));
    assert!(sent.status.success(), "{}", text(&sent));
    let rad = reader_token(&relay, "county-radiology");
    let usr = reader_token(&relay, "county-ultrasound");

    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ohif-ct.png");
    let _ = std::fs::remove_file(&screenshot);
    let results = ohif_check(
        &relay,
        &format!("https://127.0.0.1:{port}"),
        &screenshot,
        json!([
            {"token": rad, "open": "A000000008101"},
            {"token": usr, "open": null},
        ]),
    );
    let (rad_view, usr_view) = (&results[0], &results[1]);
    println!("OHIF's screenshot of the CT: {}", screenshot.display());
    for r in &results {
        assert!(
            r["error"].is_null(),
            "{r:#}\nrelay log:\n{}",
            relay.log_text()
        );
    }

    // Logged in: the token is out of the address bar, and in every DICOMweb request.
    for (view, token) in [(rad_view, &rad), (usr_view, &usr)] {
        let address = view["address"].as_str().unwrap_or_default();
        assert!(!address.contains("token"), "{address}");
        let requests = view["requests"].as_array().expect("requests");
        assert!(
            !requests.is_empty(),
            "OHIF asked the relay nothing: {view:#}"
        );
        for r in requests {
            assert_eq!(
                r["authorization"].as_str(),
                Some(format!("Bearer {token}").as_str()),
                "{r}"
            );
            // Everything OHIF asks of the relay is answered (no 4xx/5xx, none failed).
            assert!(
                r["status"]
                    .as_u64()
                    .is_some_and(|s| (200..300).contains(&s)),
                "{r}\nrelay log:\n{}",
                relay.log_text()
            );
        }
    }

    // The study list shows exactly each reader's studies.
    let rows = |view: &Value| -> Vec<String> {
        view["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| r.as_str().unwrap_or_default().to_string())
            .collect()
    };
    let (rad_rows, usr_rows) = (rows(rad_view), rows(usr_view));
    assert_eq!(rad_rows.len(), 2, "{rad_rows:?}");
    for (name, accession) in [
        ("CHEN, JIANGUO", "A000000008101"),
        ("LIU, FANG", "A000000008102"),
    ] {
        assert!(
            rad_rows
                .iter()
                .any(|r| r.contains(name) && r.contains(accession)),
            "{name} {accession} not in {rad_rows:?}"
        );
    }
    assert!(
        !rad_rows
            .iter()
            .any(|r| r.contains("ZHAO") || r.contains("A000000008103")),
        "county radiology sees the ultrasound study: {rad_rows:?}"
    );
    assert_eq!(usr_rows.len(), 1, "{usr_rows:?}");
    assert!(
        usr_rows[0].contains("ZHAO, MIN") && usr_rows[0].contains("A000000008103"),
        "{usr_rows:?}"
    );

    // The CT opened: its metadata and frames came from the relay, and the viewport shows it —
    // a noisy body (many grey levels at the centre) in black air.
    let requested = |part: &str| {
        rad_view["requests"].as_array().is_some_and(|rs| {
            rs.iter()
                .any(|r| r["url"].as_str().is_some_and(|u| u.contains(part)))
        })
    };
    let series = format!(
        "/studies/{}/series/{}",
        ct[0].study_instance_uid, ct[0].series_instance_uid
    );
    assert!(requested(&format!("{series}/metadata")), "{rad_view:#}");
    assert!(
        requested(&format!("{series}/instances/")) && requested("/frames/1"),
        "{rad_view:#}"
    );
    let canvas = &rad_view["canvas"];
    let number = |k: &str| {
        canvas[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k}: {canvas}"))
    };
    assert!(number("center_distinct") > 16, "{canvas}");
    assert!(number("distinct") > 32, "{canvas}");
    assert!(
        number("nonblack") * 5 > number("width") * number("height"),
        "{canvas}"
    );
    assert_eq!(number("corners_max"), 0, "{canvas}");
    assert!(screenshot.is_file(), "{}", screenshot.display());

    // The relay knows who looked: county radiology's retrievals (over HTTPS, with its token)
    // found what they asked for, and nobody was refused.
    let retrievals = audit_rows(&relay.data, "retrieve");
    assert!(
        retrievals.iter().any(|(actor, outcome, _)| actor
            .starts_with("county-radiology (HTTPS, token ")
            && outcome == "ok"),
        "{retrievals:?}"
    );
    assert!(
        retrievals.iter().all(|(_, outcome, _)| outcome == "ok"),
        "{retrievals:?}"
    );
}

/// `tests/py/ohif_check.py`: OHIF at `base` in headless Chromium, one session per item of
/// `sessions`; its JSON report (the relay's log if it fails).
fn ohif_check(relay: &RelayProc, base: &str, screenshot: &Path, sessions: Value) -> Vec<Value> {
    for (what, path) in [
        ("Debian's chromium", "/usr/bin/chromium"),
        ("Debian's chromium-driver", "/usr/bin/chromedriver"),
    ] {
        assert!(
            Path::new(path).is_file(),
            "{what} ({path}) is missing: run scripts/test, which installs it"
        );
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/ohif_check.py");
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .arg(base)
        .arg(screenshot)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(sessions.to_string().as_bytes())
            .expect("sessions");
    }
    let out = child.wait_with_output().expect("ohif_check.py");
    assert!(
        out.status.success(),
        "ohif_check.py failed (selenium, chromium and chromedriver: run scripts/test):\n{}\nrelay log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        relay.log_text()
    );
    serde_json::from_slice(&out.stdout).expect("ohif_check.py prints JSON")
}
