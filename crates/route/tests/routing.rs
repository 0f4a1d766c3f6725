//! Routing semantics on small purpose-built topologies: unions, de-duplication, stable order,
//! priority max, filters, default route, readers.

use yilian_route::{Destination, Priority, RouteError, RouteInput, Topology};

const CT: &str = "1.2.840.10008.5.1.4.1.1.2";

/// Sites a (departments x, y), b, c (no departments); `town` has parent a.
const SITES: &str = r#"
[alliance]
name = "Routing test"

[[site]]
id = "a"
name = "A"
kind = "county"
departments = ["x", "y"]

[[site]]
id = "b"
name = "B"
kind = "provincial"

[[site]]
id = "c"
name = "C"
kind = "provincial"

[[site]]
id = "town"
name = "Town"
kind = "township"
parent = "a"
"#;

fn topo(extra: &str) -> Topology {
    Topology::from_toml_str(&format!("{SITES}\n{extra}"))
        .unwrap_or_else(|e| panic!("test topology should be valid: {e}"))
}

fn dests(list: &[&str]) -> Vec<Destination> {
    list.iter().map(|d| d.parse().unwrap()).collect()
}

#[test]
fn all_matching_rules_apply_with_deduplicated_stable_destinations() {
    let t = topo(
        r#"
[[rule]]
name = "first"
to = ["a/x", "b"]

[[rule]]
name = "never"
modalities = ["MR"]
to = ["c"]

[[rule]]
name = "second"
to = ["b", "c", "a/x", "a/y", "c"]
"#,
    );
    let d = t.route(&RouteInput::new("town", "CT", CT)).unwrap();
    assert_eq!(d.destinations, dests(&["a/x", "b", "c", "a/y"]));
    assert_eq!(d.rules, ["first", "second"]);
    assert_eq!(d.priority, Priority::Routine);
    assert!(!d.is_default_route());
}

#[test]
fn a_site_and_one_of_its_departments_are_different_destinations() {
    let t = topo(
        r#"
[[rule]]
name = "both"
to = ["a", "a/x"]
"#,
    );
    let d = t.route(&RouteInput::new("town", "CT", CT)).unwrap();
    assert_eq!(d.destinations, dests(&["a", "a/x"]));
}

#[test]
fn priority_is_the_max_of_requested_and_matching_rules() {
    let t = topo(
        r#"
[[rule]]
name = "plain"
to = ["a/x"]

[[rule]]
name = "urgent-ct"
modalities = ["CT"]
to = ["a/x"]
priority = "urgent"

[[rule]]
name = "explicitly-routine"
to = ["b"]
priority = "routine"
"#,
    );
    let ct = t.route(&RouteInput::new("town", "CT", CT)).unwrap();
    assert_eq!(ct.priority, Priority::Urgent);
    assert_eq!(ct.rules, ["plain", "urgent-ct", "explicitly-routine"]);
    assert_eq!(ct.destinations, dests(&["a/x", "b"]));

    let mr = t.route(&RouteInput::new("town", "MR", "1.2.3")).unwrap();
    assert_eq!(mr.priority, Priority::Routine);
    let mr_urgent = t
        .route(&RouteInput::new("town", "MR", "1.2.3").with_priority(Priority::Urgent))
        .unwrap();
    assert_eq!(mr_urgent.priority, Priority::Urgent);
}

#[test]
fn filters_are_anded_and_values_ored() {
    let t = topo(
        r#"
[[rule]]
name = "narrow"
from_sites = ["town", "b"]
modalities = ["CT", "MR"]
sop_classes = ["1.2.840.10008.5.1.4.1.1.2", "1.2.3"]
body_parts = ["HEAD", "NECK"]
to = ["c"]
"#,
    );
    let rule = t.rule("narrow").unwrap();
    let matches = |input: RouteInput<'_>| rule.matches(&input);
    // Through route() too: the match is reported, and a miss falls back to the parent.
    assert_eq!(
        t.route(&RouteInput::new("town", "CT", CT).with_body_part("HEAD"))
            .unwrap()
            .rules,
        ["narrow"]
    );
    assert!(t
        .route(&RouteInput::new("town", "CT", CT))
        .unwrap()
        .is_default_route());
    assert!(matches(
        RouteInput::new("town", "CT", CT).with_body_part("HEAD")
    ));
    assert!(matches(
        RouteInput::new("b", "mr", "1.2.3").with_body_part("neck")
    ));
    // Each filter failing on its own:
    assert!(!matches(
        RouteInput::new("c", "CT", CT).with_body_part("HEAD")
    ));
    assert!(!matches(
        RouteInput::new("town", "US", CT).with_body_part("HEAD")
    ));
    assert!(!matches(
        RouteInput::new("town", "CT", "1.2.4").with_body_part("HEAD")
    ));
    assert!(!matches(
        RouteInput::new("town", "CT", CT).with_body_part("CHEST")
    ));
    // A rule with body_parts never matches an instance without one.
    assert!(!matches(RouteInput::new("town", "CT", CT)));
}

#[test]
fn rule_without_from_sites_matches_any_site() {
    let t = topo(
        r#"
[[rule]]
name = "anything-from-anywhere"
from_sites = []
to = ["b"]
"#,
    );
    for site in ["a", "b", "c", "town"] {
        let d = t.route(&RouteInput::new(site, "XA", "1.2.3")).unwrap();
        assert_eq!(d.destinations, dests(&["b"]), "{site}");
    }
}

#[test]
fn default_route_uses_the_parents_default_department_or_none() {
    // Parent a has no default_department: the bare site.
    let t = topo("");
    let d = t.route(&RouteInput::new("town", "CT", CT)).unwrap();
    assert_eq!(d.destinations, dests(&["a"]));
    assert!(d.rules.is_empty());

    // Same with a default department.
    let with_default = SITES.replace(
        "departments = [\"x\", \"y\"]",
        "departments = [\"x\", \"y\"]\ndefault_department = \"y\"",
    );
    let t = Topology::from_toml_str(&with_default).unwrap();
    let d = t.route(&RouteInput::new("town", "CT", CT)).unwrap();
    assert_eq!(d.destinations, dests(&["a/y"]));
}

#[test]
fn no_rule_and_no_parent_is_an_error_telling_what_to_add() {
    let t = topo("");
    let err = t.route(&RouteInput::new("b", "CT", CT)).unwrap_err();
    assert!(matches!(&err, RouteError::NoRoute { site, .. } if site == "b"));
    let msg = err.to_string();
    assert!(
        msg.contains("\"b\"") && msg.contains("\"CT\"") && msg.contains(CT),
        "{msg}"
    );
    assert!(
        msg.contains("add a [[rule]]") && msg.contains("parent"),
        "{msg}"
    );
}

#[test]
fn readers_for_respects_site_role_and_department() {
    let t = topo(
        r#"
[[identity]]
name = "zed-x"
site = "a"
role = "reader"
department = "x"

[[identity]]
name = "alice-x"
site = "a"
role = "reader"
department = "x"

[[identity]]
name = "yan-y"
site = "a"
role = "reader"
department = "y"

[[identity]]
name = "whole-site"
site = "a"
role = "reader"

[[identity]]
name = "a-device"
site = "a"
role = "device"

[[identity]]
name = "a-relay"
site = "a"
role = "relay"

[[identity]]
name = "b-reader"
site = "b"
role = "reader"
"#,
    );
    let names = |d: &str| -> Vec<&str> {
        t.readers_for(&d.parse().unwrap())
            .into_iter()
            .map(|i| i.name.as_str())
            .collect()
    };
    // Department destination: that department's readers only, sorted by name; the site-wide
    // reader does not receive it.
    assert_eq!(names("a/x"), ["alice-x", "zed-x"]);
    assert_eq!(names("a/y"), ["yan-y"]);
    // Site destination: every reader of the site (with or without department), sorted.
    assert_eq!(names("a"), ["alice-x", "whole-site", "yan-y", "zed-x"]);
    assert_eq!(names("b"), ["b-reader"]);
    assert!(names("c").is_empty());
}
