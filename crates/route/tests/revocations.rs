//! The deny list (`[[revoked]]`): what an entry revokes, and every mistake an administrator can
//! make writing one, refused with a message that names the entry.

use yilian_route::{CertSerial, Topology, TopologyError};

const BASE: &str = r#"
[alliance]
name = "Revocation test"

[[site]]
id = "county"
name = "County"
kind = "county"
departments = ["radiology"]

[[identity]]
name = "county-radiology"
site = "county"
role = "reader"
department = "radiology"

[[identity]]
name = "county-relay"
site = "county"
role = "relay"
"#;

fn with(extra: &str) -> String {
    format!("{BASE}\n{extra}")
}

fn serial(s: &str) -> CertSerial {
    s.parse().unwrap()
}

fn error_of(toml: &str) -> (TopologyError, String) {
    match Topology::from_toml_str(toml) {
        Ok(_) => panic!("topology should be rejected:\n{toml}"),
        Err(e) => {
            let msg = e.to_string();
            (e, msg)
        }
    }
}

#[test]
fn no_entry_revokes_nobody_and_the_example_alliance_has_none() {
    let t = Topology::from_toml_str(BASE).unwrap();
    assert!(t.revoked("county-radiology", &serial("1")).is_none());
    assert_eq!(Topology::example().revocations().count(), 0);
}

#[test]
fn a_name_revokes_every_certificate_of_that_identity() {
    let t = Topology::from_toml_str(&with(
        "[[revoked]]\nname = \"county-radiology\"\nreason = \"laptop stolen\"\n",
    ))
    .unwrap();
    let r = t.revoked("county-radiology", &serial("1a")).unwrap();
    assert_eq!(r.reason, "laptop stolen");
    assert_eq!(r.name.as_deref(), Some("county-radiology"));
    assert!(t.revoked("county-radiology", &serial("2b")).is_some());
    assert!(t.revoked("county-relay", &serial("1a")).is_none());
}

#[test]
fn a_serial_revokes_that_certificate_only_in_any_spelling() {
    let t = Topology::from_toml_str(&with(
        "[[revoked]]\nserial = \"00:9F:2A:01\"\nreason = \"key lost\"\n",
    ))
    .unwrap();
    assert_eq!(
        t.revoked("county-radiology", &serial("9f2a01"))
            .map(|r| r.reason.as_str()),
        Some("key lost")
    );
    // Whatever identity the certificate carries.
    assert!(t.revoked("county-relay", &serial("9F2A01")).is_some());
    // The identity's new certificate works.
    assert!(t.revoked("county-radiology", &serial("9f2a02")).is_none());
}

#[test]
fn name_and_serial_must_both_match() {
    let t = Topology::from_toml_str(&with(
        "[[revoked]]\nname = \"county-radiology\"\nserial = \"0a\"\nreason = \"old laptop\"\n",
    ))
    .unwrap();
    assert!(t.revoked("county-radiology", &serial("a")).is_some());
    assert!(t.revoked("county-radiology", &serial("b")).is_none());
    assert!(t.revoked("county-relay", &serial("a")).is_none());
}

#[test]
fn an_entry_without_name_or_serial_is_refused() {
    let (err, msg) = error_of(&with("[[revoked]]\nreason = \"why not\"\n"));
    assert!(
        matches!(err, TopologyError::RevokedWithoutTarget { index: 1 }),
        "{err:?}"
    );
    assert!(msg.contains("neither name nor serial"), "{msg}");
}

#[test]
fn an_undeclared_name_is_an_error_not_a_silent_no_op() {
    let (err, msg) = error_of(&with(
        "[[revoked]]\nname = \"county-radiolgy\"\nreason = \"laptop stolen\"\n",
    ));
    assert!(
        matches!(err, TopologyError::RevokedUnknownIdentity { .. }),
        "{err:?}"
    );
    assert!(msg.contains("county-radiolgy"), "{msg}");
    assert!(msg.contains("revoke nobody"), "{msg}");
}

#[test]
fn a_malformed_serial_is_refused_with_how_to_write_it() {
    for bad in ["", "xyz", "12 34", &"ab".repeat(21)] {
        let (err, msg) = error_of(&with(&format!(
            "[[revoked]]\nserial = \"{bad}\"\nreason = \"r\"\n"
        )));
        assert!(
            matches!(err, TopologyError::InvalidRevokedSerial { index: 1, .. }),
            "{bad:?}: {err:?}"
        );
        assert!(msg.contains("openssl x509 -noout -serial"), "{msg}");
    }
}

#[test]
fn a_missing_empty_or_multi_line_reason_is_refused() {
    let (err, msg) = error_of(&with("[[revoked]]\nname = \"county-radiology\"\n"));
    assert!(matches!(err, TopologyError::Parse(_)), "{err:?}");
    assert!(msg.contains("reason"), "{msg}");
    for (reason, problem) in [
        ("\"  \"", "empty"),
        ("\"a\\nb\"", "line breaks"),
        (&format!("\"{}\"", "x".repeat(201)), "too long"),
    ] {
        let (err, msg) = error_of(&with(&format!(
            "[[revoked]]\nname = \"county-radiology\"\nreason = {reason}\n"
        )));
        assert!(
            matches!(err, TopologyError::InvalidRevocationReason { index: 1, .. }),
            "{err:?}"
        );
        assert!(msg.contains(problem), "{msg}");
    }
}

#[test]
fn unknown_keys_in_an_entry_are_refused() {
    let (err, msg) = error_of(&with(
        "[[revoked]]\nname = \"county-radiology\"\nreason = \"r\"\nsince = \"2026-12-01\"\n",
    ));
    assert!(matches!(err, TopologyError::Parse(_)), "{err:?}");
    assert!(msg.contains("since"), "{msg}");
    // A singular table instead of an array of tables is a typo too.
    let (err, _) = error_of(&with(
        "[revoked]\nname = \"county-radiology\"\nreason = \"r\"\n",
    ));
    assert!(matches!(err, TopologyError::Parse(_)), "{err:?}");
}
