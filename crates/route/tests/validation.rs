//! Every validation error: one test each, asserting the variant and that the message names the
//! offending entry.

use std::path::Path;

use yilian_route::{Role, Topology, TopologyError};

/// A minimal valid topology; tests append to it or edit it.
const BASE: &str = r#"
[alliance]
name = "Validation test"

[[site]]
id = "county"
name = "County"
kind = "county"
departments = ["radiology", "cardiology"]
default_department = "radiology"

[[site]]
id = "town"
name = "Town"
kind = "township"
parent = "county"
"#;

fn with(extra: &str) -> String {
    format!("{BASE}\n{extra}")
}

/// Parses `toml`, expecting an error; returns it and its message.
fn error_of(toml: &str) -> (TopologyError, String) {
    match Topology::from_toml_str(toml) {
        Ok(_) => panic!("topology should be rejected:\n{toml}"),
        Err(e) => {
            let msg = e.to_string();
            (e, msg)
        }
    }
}

fn assert_names(msg: &str, culprits: &[&str]) {
    for c in culprits {
        assert!(msg.contains(c), "message should name {c}: {msg}");
    }
}

#[test]
fn base_is_valid() {
    let t = Topology::from_toml_str(BASE).unwrap();
    assert_eq!(t.alliance_name(), "Validation test");
    assert_eq!(t.sites().count(), 2);
}

// ---- parse errors -------------------------------------------------------------------------

#[test]
fn unknown_keys_are_rejected_everywhere() {
    for (toml, key) in [
        (with("[extra]\nx = 1"), "extra"),
        (
            BASE.replace("name = \"Validation test\"", "name = \"V\"\nnmae = \"x\""),
            "nmae",
        ),
        (
            BASE.replace("parent = \"county\"", "parnet = \"county\""),
            "parnet",
        ),
        (
            with("[[identity]]\nname = \"d\"\nsite = \"town\"\nrole = \"device\"\nsiet = \"x\""),
            "siet",
        ),
        (
            with("[[rule]]\nname = \"r\"\nfrom_site = [\"town\"]\nto = [\"county\"]"),
            "from_site",
        ),
    ] {
        let (err, msg) = error_of(&toml);
        assert!(matches!(err, TopologyError::Parse(_)), "{err:?}");
        assert_names(&msg, &[key]);
    }
}

#[test]
fn bad_enum_values_and_missing_keys_are_parse_errors() {
    for (toml, word) in [
        (
            BASE.replace("kind = \"township\"", "kind = \"village\""),
            "village",
        ),
        (
            with("[[identity]]\nname = \"d\"\nsite = \"town\"\nrole = \"admin\""),
            "admin",
        ),
        (
            with("[[rule]]\nname = \"r\"\nto = [\"county\"]\npriority = \"high\""),
            "high",
        ),
        (with("[[rule]]\nname = \"r\""), "to"),
        (BASE.replace("name = \"Town\"\n", ""), "name"),
        (
            "[[site]]\nid = \"a\"\nname = \"A\"\nkind = \"county\"".to_string(),
            "alliance",
        ),
        ("this is not toml".to_string(), "line 1"),
    ] {
        let (err, msg) = error_of(&toml);
        assert!(matches!(err, TopologyError::Parse(_)), "{err:?}");
        assert_names(&msg, &[word]);
    }
}

#[test]
fn unreadable_file_is_an_io_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-topology.toml");
    let err = Topology::load(&path).unwrap_err();
    assert!(
        matches!(&err, TopologyError::Io { path: p, .. } if p == &path),
        "{err:?}"
    );
    assert_names(&err.to_string(), &["missing-topology.toml"]);
}

#[test]
fn load_reports_validation_errors_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("topology.toml");
    std::fs::write(
        &path,
        BASE.replace("parent = \"county\"", "parent = \"nowhere\""),
    )
    .unwrap();
    let err = Topology::load(Path::new(&path)).unwrap_err();
    assert!(
        matches!(err, TopologyError::UnknownParent { .. }),
        "{err:?}"
    );
}

// ---- alliance and sites -------------------------------------------------------------------

#[test]
fn empty_alliance_name() {
    let (err, msg) = error_of(&BASE.replace("name = \"Validation test\"", "name = \"  \""));
    assert!(matches!(err, TopologyError::EmptyAllianceName), "{err:?}");
    assert_names(&msg, &["[alliance] name"]);
}

#[test]
fn invalid_site_id() {
    for bad in ["Town", "town_1", "-town", "town:1", "", "乡镇"] {
        let (err, msg) = error_of(&BASE.replace("id = \"town\"", &format!("id = \"{bad}\"")));
        assert!(
            matches!(&err, TopologyError::InvalidSiteId { id } if id == bad),
            "{err:?}"
        );
        assert_names(&msg, &[&format!("{bad:?}"), "[a-z0-9][a-z0-9-]*"]);
    }
}

#[test]
fn duplicate_site() {
    let (err, msg) = error_of(&with(
        "[[site]]\nid = \"town\"\nname = \"Town again\"\nkind = \"township\"",
    ));
    assert!(
        matches!(&err, TopologyError::DuplicateSite { id } if id == "town"),
        "{err:?}"
    );
    assert_names(&msg, &["\"town\"", "more than one"]);
}

#[test]
fn invalid_department_name() {
    let (err, msg) = error_of(&BASE.replace("\"cardiology\"]", "\"Cardiology\"]"));
    assert!(
        matches!(&err, TopologyError::InvalidDepartment { site, department }
            if site == "county" && department == "Cardiology"),
        "{err:?}"
    );
    assert_names(&msg, &["\"county\"", "\"Cardiology\""]);
}

#[test]
fn duplicate_department() {
    let (err, msg) = error_of(&BASE.replace("\"cardiology\"]", "\"cardiology\", \"radiology\"]"));
    assert!(
        matches!(&err, TopologyError::DuplicateDepartment { site, department }
            if site == "county" && department == "radiology"),
        "{err:?}"
    );
    assert_names(&msg, &["\"county\"", "\"radiology\""]);
}

#[test]
fn unknown_default_department() {
    let (err, msg) = error_of(&BASE.replace(
        "default_department = \"radiology\"",
        "default_department = \"ultrasound\"",
    ));
    assert!(
        matches!(&err, TopologyError::UnknownDefaultDepartment { site, department }
            if site == "county" && department == "ultrasound"),
        "{err:?}"
    );
    assert_names(
        &msg,
        &["\"county\"", "\"ultrasound\"", "default_department"],
    );

    // A site without departments cannot have a default department either.
    let (err, _) = error_of(&BASE.replace(
        "parent = \"county\"",
        "parent = \"county\"\ndefault_department = \"radiology\"",
    ));
    assert!(
        matches!(&err, TopologyError::UnknownDefaultDepartment { site, .. } if site == "town"),
        "{err:?}"
    );
}

#[test]
fn unknown_parent() {
    let (err, msg) = error_of(&BASE.replace("parent = \"county\"", "parent = \"conty\""));
    assert!(
        matches!(&err, TopologyError::UnknownParent { site, parent }
            if site == "town" && parent == "conty"),
        "{err:?}"
    );
    assert_names(&msg, &["\"town\"", "\"conty\""]);
}

#[test]
fn parent_cycles() {
    // A site that is its own parent.
    let (err, msg) = error_of(&BASE.replace("parent = \"county\"", "parent = \"town\""));
    assert!(
        matches!(&err, TopologyError::ParentCycle { cycle } if cycle == &["town", "town"]),
        "{err:?}"
    );
    assert_names(&msg, &["town -> town"]);

    // county -> town -> county, reached from a third site.
    let toml =
        with("[[site]]\nid = \"village\"\nname = \"V\"\nkind = \"township\"\nparent = \"town\"")
            .replace(
                "default_department = \"radiology\"",
                "default_department = \"radiology\"\nparent = \"town\"",
            );
    let (err, msg) = error_of(&toml);
    assert!(
        matches!(&err, TopologyError::ParentCycle { cycle }
            if cycle == &["county", "town", "county"]),
        "{err:?}"
    );
    assert_names(&msg, &["county -> town -> county"]);
}

// ---- identities ---------------------------------------------------------------------------

#[test]
fn invalid_identity_name() {
    for bad in ["Town-Device", "town device", "town:device", "-x", ""] {
        let (err, msg) = error_of(&with(&format!(
            "[[identity]]\nname = \"{bad}\"\nsite = \"town\"\nrole = \"device\""
        )));
        assert!(
            matches!(&err, TopologyError::InvalidIdentityName { name } if name == bad),
            "{err:?}"
        );
        assert_names(&msg, &[&format!("{bad:?}")]);
    }
}

#[test]
fn duplicate_identity() {
    let one = "[[identity]]\nname = \"twin\"\nsite = \"town\"\nrole = \"device\"\n";
    let (err, msg) = error_of(&with(&format!("{one}{one}")));
    assert!(
        matches!(&err, TopologyError::DuplicateIdentity { name } if name == "twin"),
        "{err:?}"
    );
    assert_names(&msg, &["\"twin\""]);
}

#[test]
fn unknown_identity_site() {
    let (err, msg) = error_of(&with(
        "[[identity]]\nname = \"lost\"\nsite = \"nowhere\"\nrole = \"device\"",
    ));
    assert!(
        matches!(&err, TopologyError::UnknownIdentitySite { identity, site }
            if identity == "lost" && site == "nowhere"),
        "{err:?}"
    );
    assert_names(&msg, &["\"lost\"", "\"nowhere\""]);
}

#[test]
fn unknown_identity_department() {
    let (err, msg) = error_of(&with(
        "[[identity]]\nname = \"doc\"\nsite = \"county\"\nrole = \"reader\"\ndepartment = \"ultrasound\"",
    ));
    assert!(
        matches!(&err, TopologyError::UnknownIdentityDepartment { identity, site, department }
            if identity == "doc" && site == "county" && department == "ultrasound"),
        "{err:?}"
    );
    assert_names(&msg, &["\"doc\"", "\"county\"", "\"ultrasound\""]);

    // A site without departments: any department is unknown.
    let (err, _) = error_of(&with(
        "[[identity]]\nname = \"doc\"\nsite = \"town\"\nrole = \"reader\"\ndepartment = \"radiology\"",
    ));
    assert!(
        matches!(&err, TopologyError::UnknownIdentityDepartment { site, .. } if site == "town"),
        "{err:?}"
    );
}

#[test]
fn department_only_for_readers() {
    for (role, expected) in [("device", Role::Device), ("relay", Role::Relay)] {
        let (err, msg) = error_of(&with(&format!(
            "[[identity]]\nname = \"box\"\nsite = \"county\"\nrole = \"{role}\"\ndepartment = \"radiology\""
        )));
        assert!(
            matches!(&err, TopologyError::DepartmentNotAllowed { identity, role, department }
                if identity == "box" && *role == expected && department == "radiology"),
            "{err:?}"
        );
        assert_names(&msg, &["\"box\"", role, "only readers"]);
    }
}

#[test]
fn reader_department_is_optional() {
    let t = Topology::from_toml_str(&with(
        "[[identity]]\nname = \"all-county\"\nsite = \"county\"\nrole = \"reader\"",
    ))
    .unwrap();
    assert_eq!(t.identity("all-county").unwrap().department, None);
}

// ---- rules --------------------------------------------------------------------------------

#[test]
fn empty_rule_name() {
    let (err, msg) = error_of(&with(
        "[[rule]]\nname = \"ok\"\nto = [\"county\"]\n[[rule]]\nname = \" \"\nto = [\"county\"]",
    ));
    assert!(
        matches!(err, TopologyError::EmptyRuleName { index: 2 }),
        "{err:?}"
    );
    assert_names(&msg, &["number 2"]);
}

#[test]
fn duplicate_rule() {
    let one = "[[rule]]\nname = \"same\"\nto = [\"county\"]\n";
    let (err, msg) = error_of(&with(&format!("{one}{one}")));
    assert!(
        matches!(&err, TopologyError::DuplicateRule { name } if name == "same"),
        "{err:?}"
    );
    assert_names(&msg, &["\"same\""]);
}

#[test]
fn unknown_rule_source_site() {
    let (err, msg) = error_of(&with(
        "[[rule]]\nname = \"r\"\nfrom_sites = [\"town\", \"twon\"]\nto = [\"county\"]",
    ));
    assert!(
        matches!(&err, TopologyError::UnknownRuleSource { rule, site }
            if rule == "r" && site == "twon"),
        "{err:?}"
    );
    assert_names(&msg, &["\"r\"", "\"twon\"", "from_sites"]);
}

#[test]
fn empty_rule_target() {
    let (err, msg) = error_of(&with("[[rule]]\nname = \"nowhere\"\nto = []"));
    assert!(
        matches!(&err, TopologyError::EmptyRuleTarget { rule } if rule == "nowhere"),
        "{err:?}"
    );
    assert_names(&msg, &["\"nowhere\"", "to"]);
}

#[test]
fn invalid_rule_target() {
    for bad in [
        "county/radiology/extra",
        "County",
        "county/",
        "/radiology",
        "",
    ] {
        let (err, msg) = error_of(&with(&format!(
            "[[rule]]\nname = \"r\"\nto = [\"county\", \"{bad}\"]"
        )));
        assert!(
            matches!(&err, TopologyError::InvalidRuleTarget { rule, value }
                if rule == "r" && value == bad),
            "{err:?}"
        );
        assert_names(&msg, &["\"r\"", &format!("{bad:?}")]);
    }
}

#[test]
fn unknown_rule_target_site() {
    let (err, msg) = error_of(&with(
        "[[rule]]\nname = \"r\"\nto = [\"provincial/radiology\"]",
    ));
    assert!(
        matches!(&err, TopologyError::UnknownRuleTargetSite { rule, site }
            if rule == "r" && site == "provincial"),
        "{err:?}"
    );
    assert_names(&msg, &["\"r\"", "\"provincial\""]);
}

#[test]
fn unknown_rule_target_department() {
    let (err, msg) = error_of(&with(
        "[[rule]]\nname = \"r\"\nto = [\"county/ultrasound\"]",
    ));
    assert!(
        matches!(&err, TopologyError::UnknownRuleTargetDepartment { rule, site, department }
            if rule == "r" && site == "county" && department == "ultrasound"),
        "{err:?}"
    );
    assert_names(&msg, &["\"r\"", "county/ultrasound", "\"ultrasound\""]);
}

#[test]
fn empty_rule_filters() {
    for (field, value) in [
        ("modalities", "[]"),
        ("sop_classes", "[]"),
        ("body_parts", "[]"),
        ("modalities", "[\"CT\", \" \"]"),
        ("body_parts", "[\"\"]"),
    ] {
        let (err, msg) = error_of(&with(&format!(
            "[[rule]]\nname = \"r\"\n{field} = {value}\nto = [\"county\"]"
        )));
        assert!(
            matches!(&err, TopologyError::EmptyRuleFilter { rule, field: f }
                if rule == "r" && *f == field),
            "{err:?}"
        );
        assert_names(&msg, &["\"r\"", field]);
    }
}

#[test]
fn invalid_sop_class() {
    for bad in ["CT", "1.2.840.10008.5.1.4.1.1.02", "1.2..3", "1.2.3."] {
        let (err, msg) = error_of(&with(&format!(
            "[[rule]]\nname = \"r\"\nsop_classes = [\"1.2.3\", \"{bad}\"]\nto = [\"county\"]"
        )));
        assert!(
            matches!(&err, TopologyError::InvalidSopClass { rule, value }
                if rule == "r" && value == bad),
            "{err:?}"
        );
        assert_names(&msg, &["\"r\"", &format!("{bad:?}")]);
    }
}

#[test]
fn rule_filter_values_are_trimmed() {
    let t = Topology::from_toml_str(&with(
        "[[rule]]\nname = \"r\"\nmodalities = [\" CT \"]\nsop_classes = [\"1.2.3 \"]\nto = [\"county\"]",
    ))
    .unwrap();
    let rule = t.rule("r").unwrap();
    assert_eq!(rule.modalities.as_deref(), Some(&["CT".to_string()][..]));
    assert_eq!(
        rule.sop_classes.as_deref(),
        Some(&["1.2.3".to_string()][..])
    );
}

// ---- [[ae]] push (DIMSE egress) -------------------------------------------------------------

const PUSH_IDS: &str = r#"
[[identity]]
name = "county-pacs"
site = "county"
role = "reader"
department = "radiology"

[[identity]]
name = "town-device"
site = "town"
role = "device"
"#;

#[test]
fn a_push_ae_is_a_reader_with_an_endpoint() {
    let t = Topology::from_toml_str(&with(&format!(
        "{PUSH_IDS}\n[[ae]]\ntitle = \"PACS\"\nidentity = \"county-pacs\"\nhost = \"10.0.0.5\"\nport = 104\npush = true\n\n[[ae]]\ntitle = \"TOWN_DR\"\nidentity = \"town-device\"\n"
    )))
    .unwrap();
    let push: Vec<&str> = t.push_aes().map(|a| a.title.as_str()).collect();
    assert_eq!(push, ["PACS"]);
    assert_eq!(
        t.push_ae_for("county-pacs").unwrap().endpoint(),
        Some(("10.0.0.5", 104))
    );
    assert!(t.push_ae_for("town-device").is_none());
    assert!(!t.ae("TOWN_DR").unwrap().push, "push defaults to false");
}

#[test]
fn push_without_host_and_port() {
    let (err, msg) = error_of(&with(&format!(
        "{PUSH_IDS}\n[[ae]]\ntitle = \"PACS\"\nidentity = \"county-pacs\"\npush = true\n"
    )));
    assert!(
        matches!(&err, TopologyError::PushWithoutEndpoint { title } if title == "PACS"),
        "{err:?}"
    );
    assert_names(&msg, &["\"PACS\"", "host", "port"]);
}

#[test]
fn push_to_a_device_identity() {
    let (err, msg) = error_of(&with(&format!(
        "{PUSH_IDS}\n[[ae]]\ntitle = \"TOWN_DR\"\nidentity = \"town-device\"\nhost = \"h\"\nport = 104\npush = true\n"
    )));
    assert!(
        matches!(&err, TopologyError::PushNotReader { title, identity, role }
            if title == "TOWN_DR" && identity == "town-device" && *role == Role::Device),
        "{err:?}"
    );
    assert_names(&msg, &["\"TOWN_DR\"", "\"town-device\"", "reader"]);
}

#[test]
fn two_push_aes_for_one_reader() {
    let (err, msg) = error_of(&with(&format!(
        "{PUSH_IDS}\n[[ae]]\ntitle = \"PACS\"\nidentity = \"county-pacs\"\nhost = \"h\"\nport = 104\npush = true\n\n[[ae]]\ntitle = \"PACS2\"\nidentity = \"county-pacs\"\nhost = \"h2\"\nport = 104\npush = true\n"
    )));
    assert!(
        matches!(&err, TopologyError::DuplicatePushReader { identity, first, second }
            if identity == "county-pacs" && first == "PACS" && second == "PACS2"),
        "{err:?}"
    );
    assert_names(&msg, &["\"PACS\"", "\"PACS2\"", "\"county-pacs\""]);
}
