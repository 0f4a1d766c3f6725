//! DICOMweb end to end: studies uploaded by a township (`yilian send`, the real binary) are
//! searched over HTTPS by an independent DICOMweb client (pip `dicomweb-client`, through
//! `tests/py/qido_check.py`), as the reader they are routed to, with a token from
//! `yilian token issue`; another reader, no credentials, a forged or revoked token get what
//! PS3.18 and our authorisation rule say.

mod common;

use common::dimse::free_tcp_port;
use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;

struct Web {
    _tmp: tempfile::TempDir,
    relay: RelayProc,
    pki: Pki,
    url: String,
    root: std::path::PathBuf,
}

fn web_relay() -> Web {
    web_relay_with("")
}

/// A relay with HTTPS on a free port; `http`: more keys of its `[http]` section.
fn web_relay_with(http: &str) -> Web {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let pki = Pki::new(&root.join("pki"));
    let port = free_tcp_port();
    let relay = RelayProc::start_with(
        &root.join("relay"),
        &pki,
        &format!("[http]\nlisten = \"127.0.0.1:{port}\"\n{http}"),
    );
    Web {
        _tmp: tmp,
        relay,
        pki,
        url: format!("https://127.0.0.1:{port}/dicomweb"),
        root,
    }
}

/// `yilian token issue` against the relay's config: the token (its last line) and its id.
fn issue(w: &Web, identity: &str) -> (String, String) {
    let mut c = yilian();
    c.args(["token", "issue", "--identity", identity, "--ttl", "1h"])
        .arg("--config")
        .arg(&w.relay.config);
    let out = run(c);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let token = stdout.lines().last().unwrap().trim().to_string();
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("token id: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    (token, id)
}

/// Run `searches` through dicomweb-client; one result per search.
fn qido(w: &Web, token: &str, searches: Value) -> Vec<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/qido_check.py");
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .arg(&w.url)
        .arg(w.pki.ca_path())
        .arg(token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(searches.to_string().as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "qido_check.py failed (is dicomweb-client installed? scripts/test installs it):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

/// The values of attribute `tag` in each dataset of a result.
fn values(result: &Value, tag: &str) -> Vec<Value> {
    result
        .as_array()
        .unwrap_or_else(|| panic!("not a list of datasets: {result}"))
        .iter()
        .map(|d| d[tag]["Value"][0].clone())
        .collect()
}

fn uids(result: &Value, tag: &str) -> BTreeSet<String> {
    values(result, tag)
        .into_iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect()
}

const STUDY_UID: &str = "0020000D";
const SERIES_UID: &str = "0020000E";
const SOP_UID: &str = "00080018";

/// A status from plain HTTPS (curl-free: python's requests), for the refusals.
fn status(w: &Web, path: &str, authorization: Option<&str>) -> (u16, String) {
    let code = r#"
import sys, requests
h = {"Authorization": sys.argv[3]} if len(sys.argv) > 3 else {}
r = requests.get(sys.argv[1], headers=h, verify=sys.argv[2])
print(r.status_code)
print(r.headers.get("WWW-Authenticate", ""))
print(r.text)
"#;
    let mut c = std::process::Command::new("python3");
    c.arg("-c")
        .arg(code)
        .arg(format!("{}{path}", w.url))
        .arg(w.pki.ca_path());
    if let Some(a) = authorization {
        c.arg(a);
    }
    let out = run(c);
    assert!(out.status.success(), "{}", text(&out));
    let s = String::from_utf8_lossy(&out.stdout).to_string();
    let mut lines = s.lines();
    let code = lines.next().unwrap().parse().unwrap();
    (code, lines.collect::<Vec<_>>().join("\n"))
}

#[test]
fn a_reader_searches_exactly_its_studies_with_the_standards_matching() {
    let w = web_relay();
    // Township A sends a CT (→ county radiology), the GB18030 sample with 王^小东 (no rule:
    // the county's default, radiology) and pydicom's ultrasound (→ county ultrasound).
    let ct_dir = w.root.join("ct");
    let spec = yilian_testkit::StudySpec::new("CT", 61);
    let ct = yilian_testkit::ct_series(&ct_dir, &spec, 3, 16, 16, 61).unwrap();
    let chr_x2 = pydicom_dir().join("../charset_files/chrX2.dcm");
    let us = pydicom_file("examples_ybr_color.dcm");
    let sent = run(send_cmd(
        &w.relay,
        &w.pki,
        "township-a-device",
        &[&ct_dir, &chr_x2, &us],
    ));
    assert!(sent.status.success(), "{}", text(&sent));
    let ct_study = ct[0].study_instance_uid.clone();
    let chr_study = "1.3.6.1.4.1.5962.1.2.0.1175775771.5714.0".to_string();
    let us_study = "1.2.840.114340.3.8251017118051.1.20160503.120850.2171".to_string();

    let (rad, _) = issue(&w, "county-radiology");
    let (usr, _) = issue(&w, "county-ultrasound");
    let r = qido(
        &w,
        &rad,
        json!([
            {"level": "studies"},
            {"level": "studies", "filters": {"PatientName": "王*"}},
            {"level": "studies", "filters": {"PatientName": "wang^xiao*"}},
            {"level": "studies", "filters": {"StudyInstanceUID": format!("{ct_study},{us_study}")}},
            {"level": "studies", "filters": {"ModalitiesInStudy": "CT"}},
            {"level": "studies", "filters": {"PatientID": spec.patient_id}},
            {"level": "studies", "limit": 1},
            {"level": "studies", "limit": 1, "offset": 1},
            {"level": "series", "study": ct_study},
            {"level": "instances", "study": ct_study, "fields": ["BodyPartExamined"]},
            {"level": "studies", "study": us_study, "filters": {"StudyInstanceUID": us_study}},
            {"level": "studies", "filters": {"PatientName": "*"}, "fuzzy": true, "fields": ["all"]},
        ]),
    );
    // Everything routed to radiology, nothing else.
    assert_eq!(
        uids(&r[0], STUDY_UID),
        BTreeSet::from([ct_study.clone(), chr_study.clone()]),
        "{}",
        r[0]
    );
    // A Chinese name by wildcard, and the alphabetic group case-insensitively; PN as Annex F.
    assert_eq!(uids(&r[1], STUDY_UID), BTreeSet::from([chr_study.clone()]));
    assert_eq!(
        r[1][0]["00100010"]["Value"][0],
        json!({"Alphabetic": "Wang^XiaoDong", "Ideographic": "王^小东"})
    );
    assert_eq!(uids(&r[2], STUDY_UID), BTreeSet::from([chr_study.clone()]));
    // A UID list: the ultrasound study is never radiology's, even by UID.
    assert_eq!(uids(&r[3], STUDY_UID), BTreeSet::from([ct_study.clone()]));
    assert_eq!(uids(&r[4], STUDY_UID), BTreeSet::from([ct_study.clone()]));
    assert_eq!(uids(&r[5], STUDY_UID), BTreeSet::from([ct_study.clone()]));
    // limit and offset page through the two studies.
    let (first, second) = (uids(&r[6], STUDY_UID), uids(&r[7], STUDY_UID));
    assert_eq!((first.len(), second.len()), (1, 1));
    assert_ne!(first, second);
    // Series and instances of a study, with counts and an included field.
    assert_eq!(uids(&r[8], SERIES_UID).len(), 1);
    assert_eq!(values(&r[8], "00201209"), vec![json!(3)], "{}", r[8]);
    assert_eq!(
        uids(&r[9], SOP_UID),
        ct.iter().map(|g| g.sop_instance_uid.clone()).collect()
    );
    assert_eq!(values(&r[9], "00180015")[0], json!("CHEST"));
    assert!(
        r[9][0]["00081190"]["Value"][0]
            .as_str()
            .unwrap()
            .ends_with(&format!(
                "/studies/{ct_study}/series/{}/instances/{}",
                ct[0].series_instance_uid,
                r[9][0][SOP_UID]["Value"][0].as_str().unwrap()
            )),
        "Retrieve URL: {}",
        r[9][0]
    );
    assert_eq!(r[10], json!([]), "another reader's study is not found");
    assert_eq!(uids(&r[11], STUDY_UID).len(), 2);
    assert!(
        r[11][0].get("00081030").is_some(),
        "includefield=all: {}",
        r[11][0]
    );

    // Date ranges, from the CT's own Study Date.
    let date = r[0]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d[STUDY_UID]["Value"][0] == json!(ct_study))
        .and_then(|d| d["00080020"]["Value"][0].as_str())
        .expect("the CT has a Study Date")
        .to_string();
    let r = qido(
        &w,
        &rad,
        json!([
            {"level": "studies", "filters": {"StudyDate": format!("{date}-")}, "fields": ["StudyDate"]},
            {"level": "studies", "filters": {"StudyDate": format!("-{date}")}},
            {"level": "studies", "filters": {"StudyDate": "19000101-19000102"}},
        ]),
    );
    assert!(uids(&r[0], STUDY_UID).contains(&ct_study));
    assert!(uids(&r[1], STUDY_UID).contains(&ct_study));
    assert_eq!(r[2], json!([]));

    // County ultrasound sees only the ultrasound study.
    let u = qido(&w, &usr, json!([{"level": "studies"}]));
    assert_eq!(uids(&u[0], STUDY_UID), BTreeSet::from([us_study.clone()]));

    // Every search is audited with its keys, never its values.
    let rows = audit_rows(&w.relay.data, "query");
    assert!(
        rows.iter().any(
            |(actor, _, detail)| actor.starts_with("county-radiology (HTTPS, token ")
                && detail
                    .as_deref()
                    .is_some_and(|d| d.contains("PatientName") && !d.contains('王'))
        ),
        "{rows:?}"
    );
    assert!(
        !w.relay.log_text().contains('王'),
        "no patient names in the log"
    );
}

#[test]
fn no_forged_expired_or_revoked_credentials_get_in() {
    let w = web_relay();
    // No credentials: 401 with the scheme to use and what to do.
    let (code, rest) = status(&w, "/studies", None);
    assert_eq!(code, 401, "{rest}");
    assert!(rest.contains("Bearer"), "{rest}");
    assert!(rest.contains("yilian token issue"), "{rest}");
    // A forged token, a malformed header.
    let (code, rest) = status(&w, "/studies", Some("Bearer yl1.00.00"));
    assert_eq!(code, 401, "{rest}");
    let forged = format!("Bearer yl1.7b7d.{}", "0".repeat(64));
    let (code, rest) = status(&w, "/studies", Some(&forged));
    assert_eq!(code, 401, "{rest}");
    let (code, _) = status(&w, "/studies", Some("Basic dXNlcjpwdw=="));
    assert_eq!(code, 401);
    let refused = audit_rows(&w.relay.data, "connect");
    assert!(
        refused.iter().any(
            |(actor, outcome, detail)| actor == "unauthenticated (HTTPS)"
                && outcome == "refused"
                && detail
                    .as_deref()
                    .is_some_and(|d| d.contains("not issued by this relay"))
        ),
        "a forged token is audited: {refused:?}"
    );
    // A good token works until it is revoked.
    let (token, id) = issue(&w, "county-radiology");
    let auth = format!("Bearer {token}");
    assert_eq!(status(&w, "/studies", Some(&auth)).0, 200);
    let mut c = yilian();
    c.args(["token", "revoke", &id])
        .arg("--config")
        .arg(&w.relay.config);
    let out = run(c);
    assert!(out.status.success(), "{}", text(&out));
    let (code, rest) = status(&w, "/studies", Some(&auth));
    assert_eq!(code, 401, "{rest}");
    assert!(rest.contains("revoked"), "{rest}");
    // A device identity may not search; an unknown attribute is a 400 that names it.
    let (dev, _) = issue(&w, "township-a-device");
    let (code, rest) = status(&w, "/studies", Some(&format!("Bearer {dev}")));
    assert_eq!(code, 403, "{rest}");
    let (rad, _) = issue(&w, "county-radiology");
    let (code, rest) = status(
        &w,
        "/studies?NotAnAttribute=1",
        Some(&format!("Bearer {rad}")),
    );
    assert_eq!(code, 400, "{rest}");
    assert!(rest.contains("NotAnAttribute"), "{rest}");
    // `token issue` refuses an identity the topology does not declare.
    let mut c = yilian();
    c.args(["token", "issue", "--identity", "nobody"])
        .arg("--config")
        .arg(&w.relay.config);
    let out = run(c);
    assert!(!out.status.success());
    assert!(text(&out).contains("not an identity"), "{}", text(&out));
}

/// Every file pydicom ships (odd character sets, values and transfer syntaxes, broken files)
/// that the relay stored is found by QIDO-RS as its reader, and every answer parses as the
/// DICOM JSON model in an independent client.
#[test]
fn every_stored_pydicom_sample_is_found_by_its_reader() {
    let w = web_relay();
    let report_path = w.root.join("report.json");
    let mut c = send_cmd(&w.relay, &w.pki, "township-a-device", &[&pydicom_dir()]);
    c.arg("--report-json").arg(&report_path);
    let out = run_guarded(
        c,
        std::time::Duration::from_secs(600),
        "send of pydicom's files",
    );
    // Some files are broken or not DICOM: the run says so with exit 1.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    let stored_files: Vec<&Value> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| matches!(e["outcome"].as_str(), Some("stored" | "already-stored")))
        .collect();
    let stored: BTreeSet<(String, String)> = stored_files
        .iter()
        .map(|e| {
            (
                e["study_uid"].as_str().unwrap().to_string(),
                e["sop_uid"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // The bytes of each stored study, by study.
    let mut study_bytes: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for e in &stored_files {
        study_bytes
            .entry(e["study_uid"].as_str().unwrap().to_string())
            .or_default()
            .insert(sha256_of(Path::new(e["path"].as_str().unwrap())));
    }
    assert!(stored.len() >= 60, "{} stored", stored.len());
    let mut found = BTreeSet::new();
    for reader in ["county-radiology", "county-ultrasound", "county-cardiology"] {
        let (token, _) = issue(&w, reader);
        let r = qido(
            &w,
            &token,
            json!([
                {"level": "instances", "limit": 10000, "fields": ["all"]},
                {"level": "studies", "fields": ["all"]},
            ]),
        );
        let instances = r[0]
            .as_array()
            .unwrap_or_else(|| panic!("{reader}: {}", r[0]));
        for d in instances {
            let key = (
                d[STUDY_UID]["Value"][0].as_str().unwrap().to_string(),
                d[SOP_UID]["Value"][0].as_str().unwrap().to_string(),
            );
            assert!(found.insert(key.clone()), "{key:?} found twice");
        }
        let studies: BTreeSet<String> = instances
            .iter()
            .map(|d| d[STUDY_UID]["Value"][0].as_str().unwrap().to_string())
            .collect();
        assert_eq!(uids(&r[1], STUDY_UID), studies, "{reader}");
        // Every study retrieves byte-identical through WADO-RS.
        let paths: Vec<String> = studies.iter().map(|s| format!("studies/{s}")).collect();
        let got = wado(&w, &token, AS_STORED, &paths);
        for (study, r) in studies.iter().zip(&got) {
            assert_eq!(r["status"], 200, "{study}: {r}");
            let bytes: BTreeSet<String> = part_hashes(r);
            assert_eq!(Some(&bytes), study_bytes.get(study), "{study}");
        }
        // And its metadata reads (every stored file's header through dicom-rs and dicom-json).
        let paths: Vec<String> = studies
            .iter()
            .map(|s| format!("studies/{s}/metadata"))
            .collect();
        for (study, r) in studies.iter().zip(wado(&w, &token, "", &paths)) {
            assert_eq!(r["status"], 200, "{study}: {r}");
            assert!(r["items"].as_u64().unwrap() >= 1, "{study}: {r}");
        }
    }
    assert_eq!(found, stored, "QIDO finds exactly what was stored");
    // Frame 1, the rendered image and the thumbnail of every stored instance, and the rendered
    // image of every study and series: served, or refused with a reason (no pixel data,
    // fragments that cannot be split, a compression this relay cannot decode), never a server
    // error; every image served opens in Pillow.
    let mut served: std::collections::BTreeMap<String, u64> = Default::default();
    for reader in ["county-radiology", "county-ultrasound", "county-cardiology"] {
        let (token, _) = issue(&w, reader);
        let r = py(&w, "frames_survey.py", &token, NO_ARGS);
        assert_eq!(r["errors"], json!([]), "{reader}: {r}");
        assert_eq!(r["unreadable"], json!([]), "{reader}: {r}");
        for (key, n) in r["statuses"].as_object().unwrap() {
            let (kind, status) = key.split_once(':').unwrap();
            assert!(["200", "404", "406"].contains(&status), "{reader}: {r}");
            if status == "200" {
                *served.entry(kind.to_string()).or_default() += n.as_u64().unwrap();
            }
        }
    }
    for (kind, least) in [
        ("frames", 40),
        ("rendered", 35),
        ("thumbnail", 35),
        ("study-rendered", 15),
        ("series-rendered", 20),
    ] {
        assert!(
            served.get(kind).copied().unwrap_or(0) >= least,
            "{served:?}: too few {kind} served"
        );
    }
}

/// WADO-RS through `tests/py/wado_check.py`: raw bytes of each part, and dicomweb-client's view.
fn wado(w: &Web, token: &str, accept: &str, paths: &[String]) -> Vec<Value> {
    let args = std::iter::once(accept).chain(paths.iter().map(String::as_str));
    serde_json::from_value(py(w, "wado_check.py", token, args)).unwrap()
}

const NO_ARGS: [&str; 0] = [];

/// `tests/py/SCRIPT BASE_URL CA_PEM TOKEN ARGS…`: its output, JSON (the relay's log if it fails).
fn py<A: AsRef<std::ffi::OsStr>>(
    w: &Web,
    script: &str,
    token: &str,
    args: impl IntoIterator<Item = A>,
) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(script);
    let mut c = std::process::Command::new("python3");
    c.arg(path)
        .arg(&w.url)
        .arg(w.pki.ca_path())
        .arg(token)
        .args(args);
    let out = run(c);
    assert!(
        out.status.success(),
        "{script}: {}\nrelay log:\n{}",
        text(&out),
        w.relay.log_text()
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A CT series of `n` slices of `rows`×`cols` (study and pixel seed `seed`) made in
/// `<root>/ct` and sent by township A's device: routed to county radiology.
fn sent_ct(w: &Web, seed: u64, n: usize, rows: u16, cols: u16) -> Vec<yilian_testkit::Generated> {
    let ct_dir = w.root.join("ct");
    let spec = yilian_testkit::StudySpec::new("CT", seed);
    let ct = yilian_testkit::ct_series(&ct_dir, &spec, n, rows, cols, seed).unwrap();
    let sent = run(send_cmd(&w.relay, &w.pki, "township-a-device", &[&ct_dir]));
    assert!(sent.status.success(), "{}", text(&sent));
    ct
}

fn sha256_of(path: &Path) -> String {
    let out = run({
        let mut c = std::process::Command::new("sha256sum");
        c.arg(path);
        c
    });
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// The SHA-256 of each part of a `wado_check.py` answer.
fn part_hashes(answer: &Value) -> BTreeSet<String> {
    answer["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sha256"].as_str().unwrap().to_string())
        .collect()
}

const AS_STORED: &str = "multipart/related; type=\"application/dicom\"; transfer-syntax=*";

#[test]
fn a_reader_retrieves_its_studies_byte_identical_and_nothing_else() {
    let w = web_relay();
    let ct_dir = w.root.join("ct");
    let spec = yilian_testkit::StudySpec::new("CT", 71);
    let ct = yilian_testkit::ct_series(&ct_dir, &spec, 3, 64, 64, 71).unwrap();
    let us = pydicom_file("examples_ybr_color.dcm");
    let sent = run(send_cmd(
        &w.relay,
        &w.pki,
        "township-a-device",
        &[&ct_dir, &us],
    ));
    assert!(sent.status.success(), "{}", text(&sent));
    let us_study = "1.2.840.114340.3.8251017118051.1.20160503.120850.2171";
    let study = &ct[0].study_instance_uid;
    let series = &ct[0].series_instance_uid;
    let (rad, _) = issue(&w, "county-radiology");
    let paths = [
        format!("studies/{study}"),
        format!("studies/{study}/series/{series}"),
        format!(
            "studies/{study}/series/{series}/instances/{}",
            ct[1].sop_instance_uid
        ),
        format!("studies/{us_study}"),
        format!("studies/{us_study}/series/{series}"),
    ];
    let r = wado(&w, &rad, AS_STORED, &paths);
    let all: BTreeSet<String> = ct.iter().map(|g| sha256_of(&g.path)).collect();
    let sops: Vec<String> = {
        let mut v: Vec<String> = ct.iter().map(|g| g.sop_instance_uid.clone()).collect();
        v.sort();
        v
    };
    for (i, want) in [(0, all.clone()), (1, all.clone())] {
        assert_eq!(r[i]["status"], 200, "{}", r[i]);
        assert!(r[i]["content_type"]
            .as_str()
            .unwrap()
            .starts_with("multipart/related; type=\"application/dicom\"; boundary="));
        let got: BTreeSet<String> = part_hashes(&r[i]);
        assert_eq!(got, want, "byte-identical: {}", r[i]);
        for p in r[i]["parts"].as_array().unwrap() {
            assert!(
                p["content_type"]
                    .as_str()
                    .unwrap()
                    .starts_with("application/dicom; transfer-syntax=1.2.840.10008.1.2"),
                "{p}"
            );
        }
        assert_eq!(r[i]["client"], json!(sops), "dicomweb-client reads them");
    }
    assert_eq!(r[2]["parts"].as_array().unwrap().len(), 1);
    assert_eq!(
        r[2]["parts"][0]["sha256"].as_str().unwrap(),
        sha256_of(&ct[1].path)
    );
    // Another reader's study, or a series under the wrong study: not found.
    for i in [3, 4] {
        assert_eq!(r[i]["status"], 404, "{}", r[i]);
        assert_eq!(r[i]["client"], json!({"error": 404}));
    }
    // The client's own default Accept (no transfer syntax) gets the stored bytes too; one
    // specific transfer syntax that is not stored is refused, saying what to ask instead.
    let r = wado(&w, &rad, "", &paths[..1]);
    assert_eq!(r[0]["status"], 200, "{}", r[0]);
    let r = wado(
        &w,
        &rad,
        "multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.840.10008.1.2.4.50",
        &paths[..1],
    );
    assert_eq!(r[0]["status"], 406, "{}", r[0]);
    let why = r[0]["text"].as_str().unwrap();
    assert!(why.contains("transfer-syntax=*"), "{why}");
    assert!(
        why.contains("stored in transfer syntax 1.2.840.10008.1.2"),
        "{why}"
    );
    // The stored transfer syntax named (alone, or after one that is not stored): served as
    // stored, byte-identical.
    let stored = yilian_web::wado::stored_syntax(&ct[0].path)
        .unwrap()
        .unwrap();
    for accept in [
        format!("multipart/related; type=\"application/dicom\"; transfer-syntax={stored}"),
        format!("multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.840.10008.1.2.4.50, multipart/related; type=\"application/dicom\"; transfer-syntax={stored}"),
    ] {
        let r = wado(&w, &rad, &accept, &paths[..2]);
        for one in &r {
            assert_eq!(one["status"], 200, "{accept}: {one}");
            let got: BTreeSet<String> = part_hashes(one);
            assert_eq!(got, all, "byte-identical: {one}");
        }
    }
    // Ultrasound retrieves its own.
    let (usr, _) = issue(&w, "county-ultrasound");
    let r = wado(&w, &usr, AS_STORED, &[format!("studies/{us_study}")]);
    assert_eq!(r[0]["status"], 200, "{}", r[0]);
    assert_eq!(r[0]["parts"][0]["sha256"].as_str().unwrap(), sha256_of(&us));
    // Audited, found or not.
    let rows = audit_rows(&w.relay.data, "retrieve");
    assert!(rows
        .iter()
        .any(|(a, o, _)| a.starts_with("county-radiology (HTTPS") && o == "ok"));
    assert!(rows
        .iter()
        .any(|(a, o, _)| a.starts_with("county-radiology (HTTPS") && o == "not-found"));
}

/// STOW-RS through `tests/py/stow_check.py`.
fn stow(w: &Web, token: &str, mode: &str, files: &[&Path]) -> Value {
    let args = std::iter::once(mode.as_ref()).chain(files.iter().map(|f| f.as_os_str()));
    py(w, "stow_check.py", token, args)
}

/// The SOP Instance UIDs of a STOW answer's sequence (`00081199` stored, `00081198` failed).
fn sequence_sops(answer: &Value, tag: &str) -> BTreeSet<String> {
    answer["body"][tag]["Value"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| i["00081155"]["Value"][0].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_device_stores_by_stow_into_the_one_ingest_path() {
    let w = web_relay();
    let ct_dir = w.root.join("ct");
    let spec = yilian_testkit::StudySpec::new("CT", 81);
    let ct = yilian_testkit::ct_series(&ct_dir, &spec, 3, 32, 32, 81).unwrap();
    let (dev, _) = issue(&w, "township-a-device");
    let (rad, _) = issue(&w, "county-radiology");
    let files: Vec<&Path> = ct.iter().map(|g| g.path.as_path()).collect();

    // Raw Part 10 bytes: 200 once every instance is durable, each referenced.
    let r = stow(&w, &dev, "raw", &files);
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(
        sequence_sops(&r, "00081199"),
        ct.iter().map(|g| g.sop_instance_uid.clone()).collect()
    );
    // Routed like any upload from township A: radiology retrieves them byte-identical.
    let got = wado(
        &w,
        &rad,
        AS_STORED,
        &[format!("studies/{}", ct[0].study_instance_uid)],
    );
    let bytes: BTreeSet<String> = part_hashes(&got[0]);
    assert_eq!(bytes, ct.iter().map(|g| sha256_of(&g.path)).collect());
    // Sent again: already stored with the same bytes, a success.
    let again = stow(&w, &dev, "raw", &files[..1]);
    assert_eq!(again["status"], 200, "{again}");

    // dicomweb-client's own encoding of pydicom's CT sample.
    let small = pydicom_file("CT_small.dcm");
    let r = stow(&w, &dev, "client", &[&small]);
    assert_eq!(r["status"], 200, "{r}");

    // A broken file among good ones: 202, the good one stored, the broken one failed with
    // "cannot understand" (0xC000) and its reason in a Warning.
    let broken = w.root.join("broken.dcm");
    let good = &ct_dir.join("extra");
    let extra = yilian_testkit::ct_series(
        good,
        &yilian_testkit::StudySpec::new("CT", 82),
        1,
        32,
        32,
        82,
    )
    .unwrap();
    let bytes = std::fs::read(&extra[0].path).unwrap();
    std::fs::write(&broken, &bytes[..bytes.len() / 2]).unwrap();
    let other = yilian_testkit::ct_series(
        &w.root.join("other"),
        &yilian_testkit::StudySpec::new("CT", 83),
        1,
        32,
        32,
        83,
    )
    .unwrap();
    let r = stow(&w, &dev, "raw", &[&broken, &other[0].path]);
    assert_eq!(r["status"], 202, "{r}");
    assert_eq!(
        sequence_sops(&r, "00081199"),
        BTreeSet::from([other[0].sop_instance_uid.clone()])
    );
    assert_eq!(
        r["body"]["00081198"]["Value"][0]["00081197"]["Value"][0],
        json!(0xC000),
        "{r}"
    );
    assert!(
        r["warnings"].as_str().unwrap().contains("299 yilian"),
        "{r}"
    );
    // Nothing partial of the broken one is visible.
    let q = qido(
        &w,
        &rad,
        json!([{"level": "instances", "filters": {"SOPInstanceUID": extra[0].sop_instance_uid}}]),
    );
    assert_eq!(q[0], json!([]));
    // Only broken parts: 409.
    let r = stow(&w, &dev, "raw", &[&broken]);
    assert_eq!(r["status"], 409, "{r}");

    // A reader may not store; no credentials is 401; another media type is 415.
    assert_eq!(stow(&w, &rad, "raw", &files[..1])["status"], 403);
    assert_eq!(stow(&w, "", "raw", &files[..1])["status"], 401);
    let r = stow(&w, &dev, "raw-type=application/dicom", &files[..1]);
    assert_eq!(r["status"], 415, "{r}");
    // Audited by the ingest path: stored as the device, refusals with the door and token.
    let rows = audit_rows(&w.relay.data, "receive");
    assert!(
        rows.iter()
            .any(|(a, o, _)| a == "township-a-device" && o == "ok"),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|(a, o, _)| a.starts_with("township-a-device (HTTPS, token ") && o == "truncated"),
        "{rows:?}"
    );
}

/// One request holding one instance several times (pydicom's MR image under one UID in other
/// encodings, and the first file again): its parts are judged in their order, although the
/// relay reads the next part while the last one is made durable. The first stored wins, its
/// copy is "already stored", the other encodings fail as conflicts (0x0111).
#[test]
fn one_instance_twice_in_a_stow_request_is_judged_in_order() {
    let w = web_relay();
    let (dev, _) = issue(&w, "township-a-device");
    let (rad, _) = issue(&w, "county-radiology");
    let names = [
        "MR_small.dcm",
        "MR_small_bigendian.dcm",
        "MR_small.dcm",
        "MR_small_RLE.dcm",
        "CT_small.dcm",
    ];
    let files: Vec<std::path::PathBuf> = names.iter().map(|n| pydicom_file(n)).collect();
    let paths: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let r = stow(&w, &dev, "raw", &paths);
    assert_eq!(r["status"], 202, "{r}");
    let stored = r["body"]["00081199"]["Value"].as_array().unwrap();
    let failed = r["body"]["00081198"]["Value"].as_array().unwrap();
    assert_eq!((stored.len(), failed.len()), (3, 2), "{r}");
    for f in failed {
        assert_eq!(f["00081197"]["Value"][0], json!(0x0111), "{r}");
    }
    // What the relay holds under that UID is the first file, byte for byte.
    let mr = &files[0];
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import pydicom,sys; print(pydicom.dcmread(sys.argv[1]).StudyInstanceUID)",
        ])
        .arg(mr)
        .output()
        .unwrap();
    let study = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let got = wado(&w, &rad, AS_STORED, &[format!("studies/{study}")]);
    let parts: Vec<String> = got[0]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sha256"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(parts, vec![sha256_of(mr)], "{got:?}");
}

/// Every file pydicom ships, in one STOW-RS request: every part gets a verdict, the relay keeps
/// serving, and what it stored is retrievable.
#[test]
fn pydicoms_files_in_one_stow_request_each_get_a_verdict() {
    let w = web_relay();
    let files: Vec<std::path::PathBuf> = common::dimse::files_under(&pydicom_dir());
    let paths: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let (dev, _) = issue(&w, "township-a-device");
    let r = stow(&w, &dev, "raw", &paths);
    assert_eq!(r["status"], 202, "some are not DICOM: {}", r["status"]);
    let stored = r["body"]["00081199"]["Value"].as_array().unwrap().len();
    let failed = r["body"]["00081198"]["Value"].as_array().unwrap().len();
    assert_eq!(stored + failed, files.len(), "a verdict per part");
    assert!(stored >= 60, "{stored} stored");
    // Still serving: a search as radiology answers.
    let (rad, _) = issue(&w, "county-radiology");
    let q = qido(&w, &rad, json!([{"level": "studies"}]));
    assert!(!q[0].as_array().unwrap().is_empty());
}

/// WADO-RS metadata, read by dicomweb-client and compared attribute by attribute with the
/// original files (pydicom), a GB18030 name included.
#[test]
fn metadata_matches_the_stored_headers() {
    let w = web_relay();
    let ct_dir = w.root.join("ct");
    let ct = yilian_testkit::ct_series(
        &ct_dir,
        &yilian_testkit::StudySpec::new("CT", 91),
        2,
        16,
        16,
        91,
    )
    .unwrap();
    let chr_x2 = pydicom_dir().join("../charset_files/chrX2.dcm");
    let overlay = pydicom_file("examples_overlay.dcm");
    let sent = run(send_cmd(
        &w.relay,
        &w.pki,
        "township-a-device",
        &[&ct_dir, &chr_x2, &overlay],
    ));
    assert!(sent.status.success(), "{}", text(&sent));
    let (rad, _) = issue(&w, "county-radiology");
    let check = |study: &str, files: &[&Path]| -> Value {
        let args = std::iter::once(study.as_ref()).chain(files.iter().map(|f| f.as_os_str()));
        py(&w, "metadata_check.py", &rad, args)
    };
    let files: Vec<&Path> = ct.iter().map(|g| g.path.as_path()).collect();
    let r = check(&ct[0].study_instance_uid, &files);
    assert_eq!(r["instances"], 2, "{r}");
    assert_eq!(r["mismatches"], json!([]), "{r}");
    // Pixel Data by reference: its frames, equal to the original's bytes.
    assert_eq!(r["pixel_uris"], 2, "{r}");
    assert_eq!(r["bulk"].as_array().unwrap().len(), 2, "{r}");
    // An MR with an overlay (6000,3000) and a private binary value: both by reference, equal.
    let r = check(
        "1.2.124.113532.10.122.1.203.20051130.122937.2950157",
        &[&overlay],
    );
    assert_eq!(r["mismatches"], json!([]), "{r}");
    let tags: BTreeSet<String> = r["bulk"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["tag"].as_str().unwrap().to_uppercase())
        .collect();
    for tag in ["60003000", "00291110", "7FE00010"] {
        assert!(tags.contains(tag), "{tag} by reference: {r}");
    }
    let r = check("1.3.6.1.4.1.5962.1.2.0.1175775771.5714.0", &[&chr_x2]);
    assert_eq!(r["mismatches"], json!([]), "{r}");
    assert!(
        r["names"].to_string().contains("王^小东"),
        "the GB18030 name decoded: {r}"
    );
    // Another reader's study: 404.
    let usr = issue(&w, "county-ultrasound").0;
    let (code, rest) = status(
        &w,
        &format!("/studies/{}/metadata", ct[0].study_instance_uid),
        Some(&format!("Bearer {usr}")),
    );
    assert_eq!(code, 404, "{rest}");
}

/// WADO-URI: the stored file with an ETag, conditional requests and byte ranges.
#[test]
fn wado_uri_answers_the_stored_file_with_etag_and_ranges() {
    let w = web_relay();
    let ct = sent_ct(&w, 95, 1, 64, 64);
    let (rad, _) = issue(&w, "county-radiology");
    let (usr, _) = issue(&w, "county-ultrasound");
    let g = &ct[0];
    let query = format!(
        "?requestType=WADO&studyUID={}&seriesUID={}&objectUID={}",
        g.study_instance_uid, g.series_instance_uid, g.sop_instance_uid
    );
    let code = r#"
import hashlib, json, sys, requests
base, ca, token, query = sys.argv[1:5]
h = {"Authorization": "Bearer " + token}
def get(extra_query="", **headers):
    r = requests.get(base + "/wado" + query + extra_query, headers={**h, **headers}, verify=ca)
    return {"status": r.status_code, "sha256": hashlib.sha256(r.content).hexdigest(),
            "len": len(r.content), "etag": r.headers.get("ETag"),
            "range": r.headers.get("Content-Range"), "type": r.headers.get("Content-Type"),
            "ranges": r.headers.get("Accept-Ranges"), "head": r.content[:132].hex()}
whole = get("&contentType=application/dicom")
out = {"whole": whole,
       "again": get("&contentType=application/dicom", **{"If-None-Match": whole["etag"] or ""}),
       "part": get("&contentType=application/dicom", Range="bytes=0-131"),
       "tail": get("&contentType=application/dicom", Range="bytes=-10"),
       "beyond": get("&contentType=application/dicom", Range="bytes=99999999-"),
       "jpeg": get("&contentType=image/jpeg"),
       "default": get(""),
       "png": get("&contentType=image/png&columns=32&windowCenter=40&windowWidth=400"),
       "gif": get("&contentType=image/gif"),
       "stored_ts": get("&contentType=application/dicom&transferSyntax=" + sys.argv[5]),
       "jpeg_ts": get("&contentType=application/dicom&transferSyntax=1.2.840.10008.1.2.4.50"),
       "root": requests.get(base + query + "&contentType=application/dicom", headers=h, verify=ca).status_code}
print(json.dumps(out))
"#;
    let stored_ts = yilian_web::wado::stored_syntax(&g.path).unwrap().unwrap();
    let ask = |token: &str| -> Value {
        let mut c = std::process::Command::new("python3");
        c.arg("-c")
            .arg(code)
            .arg(&w.url)
            .arg(w.pki.ca_path())
            .arg(token)
            .arg(&query)
            .arg(&stored_ts);
        let out = run(c);
        assert!(
            out.status.success(),
            "{}\nrelay log:\n{}",
            text(&out),
            w.relay.log_text()
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let r = ask(&rad);
    let bytes = std::fs::read(&g.path).unwrap();
    assert_eq!(r["whole"]["status"], 200, "{r}");
    assert_eq!(r["whole"]["sha256"], json!(sha256_of(&g.path)));
    assert_eq!(r["whole"]["type"], "application/dicom");
    assert_eq!(r["whole"]["ranges"], "bytes");
    assert!(r["whole"]["etag"].as_str().unwrap().len() > 60, "{r}");
    assert_eq!(r["again"]["status"], 304, "{r}");
    assert_eq!(r["part"]["status"], 206, "{r}");
    assert_eq!(r["part"]["len"], 132);
    let head: String = bytes[..132].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(r["part"]["head"], json!(head));
    assert_eq!(
        r["part"]["range"],
        json!(format!("bytes 0-131/{}", bytes.len()))
    );
    assert_eq!(r["tail"]["len"], 10);
    assert_eq!(r["beyond"]["status"], 416, "{r}");
    // Rendered: a JPEG by default, PNG when asked (scaled to 32 columns), GIF refused.
    for kind in ["jpeg", "default"] {
        assert_eq!(r[kind]["status"], 200, "{r}");
        assert_eq!(r[kind]["type"], "image/jpeg", "{r}");
        assert!(
            r[kind]["head"].as_str().unwrap().starts_with("ffd8ff"),
            "{r}"
        );
    }
    assert_eq!(r["png"]["type"], "image/png", "{r}");
    assert!(
        r["png"]["head"].as_str().unwrap().starts_with("89504e47"),
        "{r}"
    );
    assert_eq!(r["gif"]["status"], 406, "{r}");
    // A transfer syntax named: the stored one is served, another is not transcoded.
    assert_eq!(r["stored_ts"]["status"], 200, "{r}");
    assert_eq!(r["stored_ts"]["sha256"], json!(sha256_of(&g.path)));
    assert_eq!(r["jpeg_ts"]["status"], 406, "{r}");
    assert_eq!(r["root"], 200, "the DICOMweb root answers WADO-URI too");
    // Not the ultrasound reader's.
    assert_eq!(ask(&usr)["whole"]["status"], 404);
}

/// A viewer's static files are served at `/` (its index.html for the paths it routes itself),
/// and viewers served elsewhere may call DICOMweb from the configured origins only.
#[test]
fn a_viewer_is_served_and_cors_admits_only_configured_origins() {
    let viewer = tempfile::tempdir().unwrap();
    std::fs::write(viewer.path().join("index.html"), "<html>viewer</html>").unwrap();
    std::fs::write(viewer.path().join("app.js"), "console.log(1)").unwrap();
    let w = web_relay_with(&format!(
        "viewer_dir = {:?}\ncors_origins = [\"https://viewer.example\"]\n",
        viewer.path()
    ));
    let base = w.url.trim_end_matches("/dicomweb").to_string();
    let code = r#"
import json, sys, requests
base, ca = sys.argv[1:3]
def get(path):
    r = requests.get(base + path, verify=ca)
    return [r.status_code, r.text]
def preflight(origin):
    r = requests.options(base + "/dicomweb/studies", verify=ca, headers={
        "Origin": origin, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    return [r.status_code, r.headers.get("Access-Control-Allow-Origin"),
            r.headers.get("Access-Control-Allow-Headers", "")]
print(json.dumps({"root": get("/"), "app": get("/app.js"), "route": get("/viewer/1.2.3"),
                  "api": get("/dicomweb/studies"),
                  "ok": preflight("https://viewer.example"), "other": preflight("https://evil.example")}))
"#;
    let mut c = std::process::Command::new("python3");
    c.arg("-c").arg(code).arg(&base).arg(w.pki.ca_path());
    let out = run(c);
    assert!(out.status.success(), "{}", text(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["root"], json!([200, "<html>viewer</html>"]), "{r}");
    assert_eq!(r["app"], json!([200, "console.log(1)"]), "{r}");
    assert_eq!(
        r["route"],
        json!([200, "<html>viewer</html>"]),
        "the viewer routes it: {r}"
    );
    assert_eq!(r["api"][0], 401, "DICOMweb still needs credentials: {r}");
    assert_eq!(r["ok"][1], "https://viewer.example", "{r}");
    assert!(
        r["ok"][2].as_str().unwrap().contains("authorization"),
        "{r}"
    );
    assert_eq!(
        r["other"][1],
        Value::Null,
        "another origin is not admitted: {r}"
    );
}

/// WADO-RS frames of pydicom's multi-frame and single-frame files (native, JPEG, RLE), each
/// equal to the frame pydicom itself reads; a frame that does not exist is 404.
#[test]
fn frames_are_the_stored_frames_pydicom_reads() {
    let w = web_relay();
    let names = [
        "CT_small.dcm",
        "rtdose.dcm",
        "SC_rgb_rle_2frame.dcm",
        "examples_ybr_color.dcm",
        "JPEG2000.dcm",
    ];
    let files: Vec<std::path::PathBuf> = names.iter().map(|n| pydicom_file(n)).collect();
    let paths: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let sent = run(send_cmd(&w.relay, &w.pki, "township-a-device", &paths));
    assert!(sent.status.success(), "{}", text(&sent));
    let (rad, _) = issue(&w, "county-radiology");
    let (usr, _) = issue(&w, "county-ultrasound");
    let check = |token: &str, files: &[&Path]| -> Value { py(&w, "frames_check.py", token, files) };
    // The ultrasound goes to county ultrasound, the others to radiology.
    let r = check(&rad, &paths[..4]);
    let u = check(&usr, &paths[3..4]);
    let mut all: Vec<Value> = r.as_array().unwrap().clone();
    all[3] = u[0].clone();
    all.extend(check(&rad, &paths[4..]).as_array().unwrap().clone());
    for res in &all {
        assert_eq!(res["status"], 200, "{res}");
        let equal = res["equal"].as_array().unwrap_or_else(|| panic!("{res}"));
        assert!(equal.iter().all(|e| e == true), "{res}");
        assert_eq!(res["client"], true, "dicomweb-client reads frame 1: {res}");
    }
    assert!(all.iter().any(|r| r["frames"].as_u64().unwrap() > 1));
    let types: BTreeSet<String> = all
        .iter()
        .flat_map(|r| r["content_types"].as_array().unwrap().clone())
        .map(|t| t.as_str().unwrap().split(';').next().unwrap().to_string())
        .collect();
    for t in ["application/octet-stream", "image/jpeg", "image/dicom-rle"] {
        assert!(types.contains(t), "{types:?}");
    }
    // A frame beyond the last: 404.
    let ct = pydicom_file("CT_small.dcm");
    let code = r#"
import sys, pydicom
ds = pydicom.dcmread(sys.argv[1], stop_before_pixels=True)
print(f"/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}/frames/2")
"#;
    let mut c = std::process::Command::new("python3");
    c.arg("-c").arg(code).arg(&ct);
    let out = run(c);
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (status, rest) = status(&w, &path, Some(&format!("Bearer {rad}")));
    assert_eq!(status, 404, "{rest}");
}

/// Rendered images (PS3.18 §8.3.5): each equal, pixel for pixel (within rounding), to what
/// pydicom decodes from the same file put through the same window by hand; the header's
/// window by default, the query's when given; viewports, PNG and JPEG, thumbnails, frames of a
/// multi-frame, ETag and 304; refusals with their reasons.
#[test]
fn rendered_images_match_what_pydicom_decodes() {
    let w = web_relay();
    let ct_dir = w.root.join("ct");
    let ct = yilian_testkit::ct_series(
        &ct_dir,
        &yilian_testkit::StudySpec::new("CT", 96),
        3,
        96,
        80,
        96,
    )
    .unwrap();
    let names = [
        "CT_small.dcm",
        "MR_small_bigendian.dcm",
        "SC_rgb_rle_2frame.dcm",
        "JPEG2000.dcm",
        "JPGExtended.dcm",
        "examples_ybr_color.dcm",
    ];
    let files: Vec<std::path::PathBuf> = names.iter().map(|n| pydicom_file(n)).collect();
    let mut paths: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    paths.push(&ct_dir);
    let sent = run(send_cmd(&w.relay, &w.pki, "township-a-device", &paths));
    assert!(sent.status.success(), "{}", text(&sent));
    let (rad, _) = issue(&w, "county-radiology");
    let (usr, _) = issue(&w, "county-ultrasound");
    let f = |name: &str| pydicom_file(name).to_string_lossy().to_string();
    let slice = &ct[1].path.to_string_lossy().to_string();
    let cases = json!([
        // 0: the header's window, PNG.
        {"file": slice, "frame": 1, "query": {}, "accept": "image/png", "expect": "mono", "again": true},
        // 1: the query's window (a bone window), PNG.
        {"file": f("CT_small.dcm"), "frame": 1, "query": {"window": "300,1500,linear"}, "accept": "image/png", "expect": "mono"},
        // 2: big-endian MR.
        {"file": f("MR_small_bigendian.dcm"), "frame": 1, "query": {"window": "600,1200,linear"}, "accept": "image/png", "expect": "mono"},
        // 3: frame 2 of an RLE colour multi-frame.
        {"file": f("SC_rgb_rle_2frame.dcm"), "frame": 2, "resource": "frame", "query": {}, "accept": "image/png", "expect": "color"},
        // 4: JPEG 2000.
        {"file": f("JPEG2000.dcm"), "frame": 1, "query": {"window": "1000,2000,linear"}, "accept": "image/png", "expect": "mono"},
        // 5: a generated CT slice in a viewport, PNG.
        {"file": slice, "frame": 1, "query": {"window": "40,400,linear", "viewport": "48,48"}, "accept": "image/png", "expect": "mono"},
        // 6: JPEG by default (no Accept), quality asked.
        {"file": slice, "frame": 1, "query": {"quality": "95", "window": "40,400,linear"}, "expect": "mono"},
        // 7: a thumbnail of the instance.
        {"file": slice, "frame": 1, "resource": "thumbnail", "query": {}},
        // 8: 12-bit JPEG cannot be decoded here: 406 with the reason.
        {"file": f("JPGExtended.dcm"), "frame": 1, "query": {}},
        // 9: no such frame: 404.
        {"file": f("CT_small.dcm"), "frame": 2, "resource": "frame", "query": {}},
        // 10: a bad window: 400.
        {"file": f("CT_small.dcm"), "frame": 1, "query": {"window": "40,0,linear"}},
        // 11: only GIF is acceptable: 406.
        {"file": f("CT_small.dcm"), "frame": 1, "query": {}, "accept": "image/gif"},
    ]);
    let r = py(&w, "rendered_check.py", &rad, [cases.to_string()]);
    let r = r.as_array().unwrap();
    for (i, res) in r.iter().enumerate().take(7) {
        assert_eq!(res["status"], 200, "case {i}: {res}");
        let mean = res["mean_diff"].as_f64().unwrap();
        let max = res["max_diff"].as_f64().unwrap();
        // Rounding and resampling differ by a level or two; a wrong window, byte order,
        // frame or colour conversion differs by tens.
        let (mean_limit, max_limit) = match i {
            5 => (2.0, 40.0), // resampled by two different filters
            6 => (2.0, 24.0), // JPEG at quality 95
            _ => (0.6, 2.0),
        };
        assert!(mean <= mean_limit && max <= max_limit, "case {i}: {res}");
        // (The RGB test pattern has a few colours; the others, many levels.)
        let least = if i == 3 { 4 } else { 16 };
        assert!(
            res["distinct"].as_u64().unwrap() >= least,
            "case {i} is flat: {res}"
        );
    }
    assert_eq!(r[0]["format"], "PNG");
    assert_eq!(r[0]["type"], "image/png");
    assert_eq!(r[0]["again"], 304, "{}", r[0]);
    assert_eq!(
        r[5]["size"],
        json!([40, 48]),
        "80 × 96 fits 48 × 48 as 40 × 48"
    );
    assert_eq!(r[6]["format"], "JPEG");
    assert_eq!(r[6]["type"], "image/jpeg");
    assert_eq!(r[7]["status"], 200, "{}", r[7]);
    assert_eq!(
        r[7]["size"],
        json!([80, 96]),
        "a small image is its own thumbnail"
    );
    assert_eq!(r[8]["status"], 406, "{}", r[8]);
    assert!(
        r[8]["text"]
            .as_str()
            .unwrap()
            .contains("cannot be rendered"),
        "{}",
        r[8]
    );
    assert_eq!(r[9]["status"], 404, "{}", r[9]);
    assert_eq!(r[10]["status"], 400, "{}", r[10]);
    assert_eq!(r[11]["status"], 406, "{}", r[11]);
    // The ultrasound is the ultrasound reader's: rendered in colour for it, 404 for radiology.
    let us = json!([{"file": f("examples_ybr_color.dcm"), "frame": 1, "resource": "frame",
                     "query": {}, "accept": "image/png", "expect": "color"}]);
    let mine = py(&w, "rendered_check.py", &usr, [us.to_string()]);
    assert_eq!(mine[0]["status"], 200, "{mine}");
    // JPEG-compressed YBR: two decoders of a lossy stream agree within a few levels.
    assert!(mine[0]["mean_diff"].as_f64().unwrap() < 2.0, "{mine}");
    let theirs = py(&w, "rendered_check.py", &rad, [us.to_string()]);
    assert_eq!(theirs[0]["status"], 404, "{theirs}");
    // Study and series thumbnails: an image the relay picks, small.
    let g = &ct[0];
    for path in [
        format!("/studies/{}/thumbnail", g.study_instance_uid),
        format!(
            "/studies/{}/series/{}/thumbnail?viewport=32,32",
            g.study_instance_uid, g.series_instance_uid
        ),
    ] {
        let (code, rest) = status(&w, &path, Some(&format!("Bearer {rad}")));
        assert_eq!(code, 200, "{path}: {rest}");
    }
    // A rendered image holds one frame.
    let (code, rest) = status(
        &w,
        &format!(
            "/studies/{}/series/{}/instances/{}/frames/1,2/rendered",
            g.study_instance_uid, g.series_instance_uid, g.sop_instance_uid
        ),
        Some(&format!("Bearer {rad}")),
    );
    assert_eq!(code, 406, "{rest}");
}

/// A study or series rendered (`…/rendered`) is one image: its middle instance rendered, byte
/// for byte the instance's own rendered image, with the query's window too; dicomweb-client's
/// `retrieve_series_rendered` reads it as an image. Another reader's study is 404.
#[test]
fn a_study_or_series_renders_as_its_middle_instance() {
    let w = web_relay();
    let ct = sent_ct(&w, 98, 5, 48, 40);
    let (rad, _) = issue(&w, "county-radiology");
    let (usr, _) = issue(&w, "county-ultrasound");
    let code = r#"
import json, os, sys, requests
from dicomweb_client.api import DICOMwebClient
base, ca, token, other, study, series, middle = sys.argv[1:8]
os.environ["REQUESTS_CA_BUNDLE"] = ca  # else it overrides the session's CA
s = requests.Session()
s.verify = ca
s.headers["Authorization"] = "Bearer " + token
png = {"Accept": "image/png"}
get = lambda path, **kw: s.get(base + path, headers=png, **kw)
series_path = f"/studies/{study}/series/{series}"
one = f"{series_path}/instances/{middle}/rendered"
out = {}
for name, path in [("study", f"/studies/{study}/rendered"), ("series", series_path + "/rendered"),
                   ("instance", one)]:
    r = get(path)
    out[name] = [r.status_code, r.headers.get("Content-Type", ""), r.content.hex()]
    w = get(path, params={"window": "100,50,linear"})
    out[name + "_window"] = [w.status_code, w.content.hex()]
client = DICOMwebClient(url=base, session=s)
out["client_series"] = client.retrieve_series_rendered(study, series, media_types=("image/png",)).hex()
theirs = requests.get(base + f"/studies/{study}/rendered", headers={**png, "Authorization": "Bearer " + other}, verify=ca)
out["other_reader"] = theirs.status_code
print(json.dumps(out))
"#;
    let g = &ct[0];
    let mut c = std::process::Command::new("python3");
    c.arg("-c")
        .arg(code)
        .arg(&w.url)
        .arg(w.pki.ca_path())
        .arg(&rad)
        .arg(&usr)
        .arg(&g.study_instance_uid)
        .arg(&g.series_instance_uid)
        .arg(&ct[2].sop_instance_uid);
    let out = run(c);
    assert!(out.status.success(), "{}", text(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let instance = &r["instance"];
    assert_eq!(instance[0], 200, "{r}");
    assert_eq!(instance[1], "image/png", "{r}");
    assert!(
        instance[2].as_str().unwrap().starts_with("89504e47"),
        "a PNG: {r}"
    );
    for level in ["study", "series"] {
        assert_eq!(&r[level], instance, "{level}: the middle instance's image");
        assert_eq!(r[format!("{level}_window")][0], 200, "{r}");
        assert_eq!(
            r[format!("{level}_window")],
            r["instance_window"],
            "{level}: the query's window applies"
        );
    }
    assert_ne!(
        r["instance_window"][1], instance[2],
        "another window, another image"
    );
    assert_eq!(
        r["client_series"], instance[2],
        "dicomweb-client reads one image"
    );
    assert_eq!(r["other_reader"], 404, "{r}");
}

/// A viewer that already has an instance (WADO-RS) sends its ETag back and gets 304; another
/// instance's ETag, or none, gets the instance.
#[test]
fn an_instance_the_viewer_has_is_not_sent_again() {
    let w = web_relay();
    let ct = sent_ct(&w, 97, 2, 32, 32);
    let (rad, _) = issue(&w, "county-radiology");
    let url = |g: &yilian_testkit::Generated| {
        format!(
            "{}/studies/{}/series/{}/instances/{}",
            w.url, g.study_instance_uid, g.series_instance_uid, g.sop_instance_uid
        )
    };
    let code = r#"
import json, sys, requests
ca, token, one, other = sys.argv[1:5]
h = {"Authorization": "Bearer " + token,
     "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}
first = requests.get(one, headers=h, verify=ca)
tag = first.headers.get("ETag", "")
again = requests.get(one, headers={**h, "If-None-Match": tag}, verify=ca)
strong = requests.get(one, headers={**h, "If-None-Match": tag.replace("W/", "")}, verify=ca)
theirs = requests.get(other, headers={**h, "If-None-Match": tag}, verify=ca)
print(json.dumps({"first": first.status_code, "etag": tag, "again": again.status_code,
                  "strong": strong.status_code, "other": theirs.status_code,
                  "other_etag": theirs.headers.get("ETag", ""), "other_len": len(theirs.content)}))
"#;
    let mut c = std::process::Command::new("python3");
    c.arg("-c")
        .arg(code)
        .arg(w.pki.ca_path())
        .arg(&rad)
        .arg(url(&ct[0]))
        .arg(url(&ct[1]));
    let out = run(c);
    assert!(out.status.success(), "{}", text(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["first"], 200, "{r}");
    assert!(r["etag"].as_str().unwrap().starts_with("W/\""), "{r}");
    assert_eq!(r["again"], 304, "{r}");
    assert_eq!(r["strong"], 304, "If-None-Match compares weakly: {r}");
    assert_eq!(r["other"], 200, "{r}");
    assert_ne!(r["other_etag"], r["etag"], "{r}");
    assert!(r["other_len"].as_u64().unwrap() > 2048, "{r}");
}

/// A device over its cap of uploads in progress (`limits.uploads_per_identity`, here 1) is
/// slowed, not refused: three STOW requests at once each get 200 with every instance stored.
#[test]
fn concurrent_stow_requests_over_the_upload_cap_wait_instead_of_failing() {
    let w = web_relay_with("\n[limits]\nuploads_per_identity = 1\n");
    let (dev, _) = issue(&w, "township-a-device");
    let dirs: Vec<std::path::PathBuf> = (0..3)
        .map(|i| {
            let dir = w.root.join(format!("ct{i}"));
            yilian_testkit::ct_series(
                &dir,
                &yilian_testkit::StudySpec::new("CT", 110 + i),
                6,
                64,
                64,
                110 + i,
            )
            .unwrap();
            dir
        })
        .collect();
    let answers: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = dirs
            .iter()
            .map(|dir| {
                let w = &w;
                let dev = &dev;
                s.spawn(move || {
                    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
                        .unwrap()
                        .map(|e| e.unwrap().path())
                        .collect();
                    files.sort();
                    let paths: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
                    stow(w, dev, "raw", &paths)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for a in &answers {
        assert_eq!(a["status"], 200, "{a}\nrelay log:\n{}", w.relay.log_text());
        assert_eq!(sequence_sops(a, "00081199").len(), 6, "{a}");
        assert!(sequence_sops(a, "00081198").is_empty(), "{a}");
    }
}

/// A 512 MiB instance stored by STOW-RS, its body streamed by the client (chunked, never whole
/// in memory on either side), passes through the relay with flat memory: the relay's peak RSS
/// grows by far less than the instance (each part's data goes to the spool writer as slices
/// of the chunks it came in, with backpressure), and the stored object is byte-identical.
#[test]
fn a_large_stow_part_streams_with_flat_memory() {
    let w = web_relay();
    let big = w.root.join("large.dcm");
    let g = yilian_testkit::large_instance(
        &big,
        &yilian_testkit::StudySpec::new("US", 73),
        512 << 20,
        73,
    )
    .unwrap();
    let (dev, _) = issue(&w, "township-a-device");
    // Warm up the path (pools, threads, buffers) with a small instance first.
    let small = pydicom_file("CT_small.dcm");
    let r = stow(&w, &dev, "stream", &[small.as_path()]);
    assert_eq!(r["status"], 200, "{r}");
    let before = w.relay.peak_rss();
    let r = stow(&w, &dev, "stream", &[big.as_path()]);
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(
        sequence_sops(&r, "00081199"),
        BTreeSet::from([g.sop_instance_uid.clone()])
    );
    let growth = w.relay.peak_rss().saturating_sub(before);
    eprintln!(
        "relay peak RSS: {} MiB before, +{} MiB for the instance",
        before >> 20,
        growth >> 20
    );
    assert!(
        growth < 64 << 20,
        "the relay's peak RSS grew by {} MiB for a {} MiB instance",
        growth >> 20,
        g.size >> 20
    );
    let stored: Vec<_> = walkdir::WalkDir::new(w.relay.data.join("objects"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.metadata().is_ok_and(|m| m.len() == g.size))
        .map(|e| e.into_path())
        .collect();
    assert_eq!(stored.len(), 1, "one object of the instance's size");
    assert_eq!(
        sha256_of(&stored[0]),
        sha256_of(&big),
        "stored byte-identical"
    );
}
