//! The example alliance (`fixtures/topology.toml`): it parses, holds what the docs promise, and
//! every rule routes as described.

use std::path::Path;

use yilian_route::{
    Destination, Priority, Role, RouteDecision, RouteError, RouteInput, SiteKind, Topology,
};

const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
const DX: &str = "1.2.840.10008.5.1.4.1.1.1.1";
const CR: &str = "1.2.840.10008.5.1.4.1.1.1";
const MR: &str = "1.2.840.10008.5.1.4.1.1.4";
const US_MULTIFRAME: &str = "1.2.840.10008.5.1.4.1.1.3.1";
const ECG_12_LEAD: &str = "1.2.840.10008.5.1.4.1.1.9.1.1";
const ECG_GENERAL: &str = "1.2.840.10008.5.1.4.1.1.9.1.2";
const BASIC_TEXT_SR: &str = "1.2.840.10008.5.1.4.1.1.88.11";
const TOWNSHIPS: [&str; 3] = ["township-a", "township-b", "township-c"];

fn route(input: RouteInput<'_>) -> RouteDecision {
    Topology::example()
        .route(&input)
        .unwrap_or_else(|e| panic!("{input:?} should route: {e}"))
}

fn dest(s: &str) -> Destination {
    s.parse().unwrap()
}

fn decision(to: &[&str], priority: Priority, rules: &[&str]) -> RouteDecision {
    RouteDecision {
        destinations: to.iter().map(|d| dest(d)).collect(),
        priority,
        rules: rules.iter().map(|r| r.to_string()).collect(),
    }
}

#[test]
fn example_parses_with_the_documented_content() {
    let topo = Topology::example();
    assert!(topo.alliance_name().contains("development"));

    let county = topo.site("county").unwrap();
    assert_eq!(county.name, "County People's Hospital");
    assert_eq!(county.kind, SiteKind::County);
    assert_eq!(
        county.departments,
        ["radiology", "ultrasound", "cardiology"]
    );
    assert_eq!(county.parent.as_deref(), Some("provincial"));
    assert_eq!(county.default_department.as_deref(), Some("radiology"));

    for id in TOWNSHIPS {
        let site = topo.site(id).unwrap();
        assert_eq!(site.kind, SiteKind::Township);
        assert_eq!(site.parent.as_deref(), Some("county"));
        assert!(site.departments.is_empty());
    }

    let provincial = topo.site("provincial").unwrap();
    assert_eq!(provincial.kind, SiteKind::Provincial);
    assert_eq!(
        provincial.departments,
        ["radiology", "cardiology", "consultation"]
    );
    assert_eq!(provincial.parent, None);
    assert_eq!(topo.sites().count(), 5);

    let mut identities: Vec<(String, String, Role, Option<String>)> = topo
        .identities()
        .map(|i| (i.name.clone(), i.site.clone(), i.role, i.department.clone()))
        .collect();
    identities.sort();
    let s = |x: &str| x.to_string();
    let expected = vec![
        (
            s("county-cardiology"),
            s("county"),
            Role::Reader,
            Some(s("cardiology")),
        ),
        (
            s("county-radiology"),
            s("county"),
            Role::Reader,
            Some(s("radiology")),
        ),
        (s("county-relay"), s("county"), Role::Relay, None),
        (
            s("county-ultrasound"),
            s("county"),
            Role::Reader,
            Some(s("ultrasound")),
        ),
        (
            s("provincial-expert"),
            s("provincial"),
            Role::Reader,
            Some(s("consultation")),
        ),
        (s("township-a-device"), s("township-a"), Role::Device, None),
        (s("township-a-reader"), s("township-a"), Role::Reader, None),
        (s("township-b-device"), s("township-b"), Role::Device, None),
        (s("township-c-device"), s("township-c"), Role::Device, None),
    ];
    assert_eq!(identities, expected);
    assert_eq!(
        topo.identity("county-radiology").unwrap().peer_uri(),
        "urn:yilian:peer:county-radiology:county:reader:radiology"
    );
    assert_eq!(
        topo.identity("county-relay").unwrap().peer_uri(),
        "urn:yilian:peer:county-relay:county:relay"
    );
    assert!(topo.identity("nobody").is_none());
    assert!(topo.site("nowhere").is_none());

    let rule_names: Vec<&str> = topo.rules().map(|r| r.name.as_str()).collect();
    assert_eq!(
        rule_names,
        [
            "township-imaging",
            "township-ultrasound",
            "township-ecg",
            "township-12-lead-ecg",
            "stroke-ct"
        ]
    );
    assert_eq!(
        topo.rule("stroke-ct").unwrap().priority,
        Some(Priority::Urgent)
    );
}

#[test]
fn load_reads_the_fixture_file() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/topology.toml");
    let loaded = Topology::load(&path).unwrap();
    let example = Topology::example();
    assert_eq!(loaded.alliance_name(), example.alliance_name());
    assert!(loaded.sites().eq(example.sites()));
    assert!(loaded.identities().eq(example.identities()));
    assert!(loaded.rules().eq(example.rules()));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        Topology::example_toml()
    );
}

#[test]
fn township_imaging_goes_to_county_radiology() {
    for site in TOWNSHIPS {
        for (modality, sop) in [("CT", CT), ("DX", DX), ("CR", CR), ("MR", MR)] {
            assert_eq!(
                route(RouteInput::new(site, modality, sop).with_body_part("CHEST")),
                decision(
                    &["county/radiology"],
                    Priority::Routine,
                    &["township-imaging"]
                ),
                "{modality} from {site}"
            );
        }
    }
}

#[test]
fn modality_matching_ignores_case_and_dicom_padding() {
    for modality in ["ct", "Ct", "CT ", " CT\0"] {
        assert_eq!(
            route(RouteInput::new("township-a", modality, CT)),
            decision(
                &["county/radiology"],
                Priority::Routine,
                &["township-imaging"]
            ),
            "{modality:?}"
        );
    }
}

#[test]
fn township_ultrasound_goes_to_county_ultrasound() {
    for site in TOWNSHIPS {
        assert_eq!(
            route(RouteInput::new(site, "US", US_MULTIFRAME).with_body_part("ABDOMEN")),
            decision(
                &["county/ultrasound"],
                Priority::Routine,
                &["township-ultrasound"]
            ),
        );
    }
}

#[test]
fn township_ecg_goes_to_county_cardiology_once() {
    for site in TOWNSHIPS {
        // A 12-lead ECG matches both ECG rules: one destination, both rules reported.
        assert_eq!(
            route(RouteInput::new(site, "ECG", ECG_12_LEAD)),
            decision(
                &["county/cardiology"],
                Priority::Routine,
                &["township-ecg", "township-12-lead-ecg"]
            ),
        );
    }
    // Another ECG SOP class: by modality only.
    assert_eq!(
        route(RouteInput::new("township-b", "ECG", ECG_GENERAL)),
        decision(&["county/cardiology"], Priority::Routine, &["township-ecg"]),
    );
    // A 12-lead ECG whose cart wrote another modality: by SOP class only (and trailing NUL
    // padding of the UID does not matter).
    assert_eq!(
        route(RouteInput::new(
            "township-c",
            "OT",
            "1.2.840.10008.5.1.4.1.1.9.1.1\0"
        )),
        decision(
            &["county/cardiology"],
            Priority::Routine,
            &["township-12-lead-ecg"]
        ),
    );
}

#[test]
fn stroke_ct_is_urgent() {
    for site in TOWNSHIPS {
        for body_part in ["HEAD", "BRAIN", "head", "Brain "] {
            assert_eq!(
                route(RouteInput::new(site, "CT", CT).with_body_part(body_part)),
                decision(
                    &["county/radiology"],
                    Priority::Urgent,
                    &["township-imaging", "stroke-ct"]
                ),
                "{body_part:?} from {site}"
            );
        }
    }
    // Not a head CT, or a head MR, or a CT without body part: routine.
    for input in [
        RouteInput::new("township-a", "CT", CT).with_body_part("CHEST"),
        RouteInput::new("township-a", "MR", MR).with_body_part("HEAD"),
        RouteInput::new("township-a", "CT", CT),
    ] {
        let d = route(input);
        assert_eq!(d.priority, Priority::Routine, "{input:?}");
        assert_eq!(d.rules, ["township-imaging"], "{input:?}");
    }
}

#[test]
fn requested_priority_is_never_lowered() {
    let d = route(
        RouteInput::new("township-a", "CT", CT)
            .with_body_part("CHEST")
            .with_priority(Priority::Urgent),
    );
    assert_eq!(d.priority, Priority::Urgent);
    assert_eq!(d.rules, ["township-imaging"]);
}

#[test]
fn unmatched_township_instance_takes_the_default_route_to_county() {
    // A report (SR) from a township matches no rule: the parent's default department.
    for site in TOWNSHIPS {
        let d = route(RouteInput::new(site, "SR", BASIC_TEXT_SR));
        assert_eq!(
            d,
            decision(&["county/radiology"], Priority::Routine, &[]),
            "{site}"
        );
        assert!(d.is_default_route());
    }
    // The default route keeps the requested priority.
    let d =
        route(RouteInput::new("township-a", "SR", BASIC_TEXT_SR).with_priority(Priority::Urgent));
    assert_eq!(d, decision(&["county/radiology"], Priority::Urgent, &[]));
}

#[test]
fn county_instances_escalate_to_provincial_consultation_by_default() {
    // The rules only cover townships; the county's parent is the provincial hospital.
    assert_eq!(
        route(RouteInput::new("county", "CT", CT).with_body_part("HEAD")),
        decision(&["provincial/consultation"], Priority::Routine, &[]),
    );
}

#[test]
fn provincial_instances_have_no_route() {
    let err = Topology::example()
        .route(&RouteInput::new("provincial", "CT", CT))
        .unwrap_err();
    assert_eq!(
        err,
        RouteError::NoRoute {
            site: "provincial".into(),
            modality: "CT".into(),
            sop_class_uid: CT.into(),
        }
    );
    let msg = err.to_string();
    assert!(msg.contains("\"provincial\""), "{msg}");
    assert!(msg.contains("[[rule]]") && msg.contains("parent"), "{msg}");
}

#[test]
fn unknown_source_site_is_an_error_naming_it() {
    let err = Topology::example()
        .route(&RouteInput::new("township-z", "CT", CT))
        .unwrap_err();
    assert_eq!(
        err,
        RouteError::UnknownSourceSite {
            site: "township-z".into()
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains("\"township-z\"") && msg.contains("[[site]]"),
        "{msg}"
    );
}

#[test]
fn readers_of_the_example() {
    let topo = Topology::example();
    let names = |d: &str| -> Vec<String> {
        topo.readers_for(&dest(d))
            .into_iter()
            .map(|i| i.name.clone())
            .collect()
    };
    assert_eq!(names("county/radiology"), ["county-radiology"]);
    assert_eq!(names("county/ultrasound"), ["county-ultrasound"]);
    assert_eq!(names("county/cardiology"), ["county-cardiology"]);
    // A bare site reaches every reader there, sorted by name; never devices or relays.
    assert_eq!(
        names("county"),
        ["county-cardiology", "county-radiology", "county-ultrasound"]
    );
    // Reports routed back down to township A reach its site-wide reader.
    assert_eq!(names("township-a"), ["township-a-reader"]);
    assert!(names("township-b").is_empty());
    assert_eq!(names("provincial/consultation"), ["provincial-expert"]);
    assert_eq!(names("provincial"), ["provincial-expert"]);
    assert!(names("provincial/radiology").is_empty());
    assert!(names("nowhere").is_empty());
}

#[test]
fn every_routed_destination_of_the_example_has_a_reader() {
    let topo = Topology::example();
    for site in TOWNSHIPS {
        for (modality, sop) in [
            ("CT", CT),
            ("DX", DX),
            ("US", US_MULTIFRAME),
            ("ECG", ECG_12_LEAD),
            ("SR", BASIC_TEXT_SR),
        ] {
            let d = topo.route(&RouteInput::new(site, modality, sop)).unwrap();
            for destination in &d.destinations {
                assert!(
                    !topo.readers_for(destination).is_empty(),
                    "{modality} from {site} goes to {destination}, which nobody reads"
                );
            }
        }
    }
}

/// A Secondary Capture without Modality (common in the wild) is routed by what it has: rules
/// that filter on modality do not match it, and with none left it takes the default route to
/// the township's parent (county radiology by default).
#[test]
fn an_instance_without_modality_takes_the_default_route() {
    const SC: &str = "1.2.840.10008.5.1.4.1.1.7";
    let d = Topology::example()
        .route(&RouteInput::new("township-a", "OT", SC).without_modality())
        .unwrap();
    assert!(d.rules.is_empty(), "{:?}", d.rules);
    assert_eq!(d.destinations.len(), 1);
    assert_eq!(d.destinations[0].site, "county");
    assert_eq!(d.destinations[0].department.as_deref(), Some("radiology"));
}
