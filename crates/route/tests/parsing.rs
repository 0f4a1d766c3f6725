//! Text forms of Destination, Priority and Role: round trips, rejections, serde.

use serde::{Deserialize, Serialize};
use yilian_route::{Destination, Priority, Role};

#[test]
fn destination_round_trip() {
    for text in ["county", "county/radiology", "township-a", "a1/b-2"] {
        let d: Destination = text.parse().unwrap();
        assert_eq!(d.to_string(), text);
    }
    assert_eq!(
        "county/radiology".parse::<Destination>().unwrap(),
        Destination::department("county", "radiology")
    );
    assert_eq!(
        "county".parse::<Destination>().unwrap(),
        Destination::site("county")
    );
}

#[test]
fn destination_rejects_malformed_text() {
    for bad in [
        "",
        "/",
        "/radiology",
        "county/",
        "county/radiology/x",
        "County",
        "county/Radiology",
        "county radiology",
        "county:radiology",
    ] {
        let err = bad.parse::<Destination>().unwrap_err();
        assert_eq!(err.value, bad);
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
    }
}

#[test]
fn destination_orders_by_site_then_department() {
    let mut v: Vec<Destination> = ["b", "a/y", "a", "a/x"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    v.sort();
    let texts: Vec<String> = v.iter().map(ToString::to_string).collect();
    assert_eq!(texts, ["a", "a/x", "a/y", "b"]);
}

#[test]
fn priority_round_trip_and_order() {
    for p in Priority::ALL {
        assert_eq!(p.to_string().parse::<Priority>().unwrap(), p);
        assert_eq!(Priority::from_u8(p.as_u8()), Some(p));
    }
    assert_eq!(Priority::Routine.to_string(), "routine");
    assert_eq!(Priority::Urgent.to_string(), "urgent");
    assert_eq!(Priority::Routine.as_u8(), 0);
    assert_eq!(Priority::Urgent.as_u8(), 1);
    assert_eq!(Priority::from_u8(2), None);
    assert!(Priority::Urgent > Priority::Routine);
    assert_eq!(Priority::default(), Priority::Routine);
    assert_eq!(Priority::Routine.max(Priority::Urgent), Priority::Urgent);
    for bad in ["", "Urgent", "high", "stat"] {
        let err = bad.parse::<Priority>().unwrap_err();
        assert_eq!(err.value, bad);
        assert!(err.to_string().contains("routine"), "{err}");
    }
}

#[test]
fn role_round_trip() {
    for r in Role::ALL {
        assert_eq!(r.to_string().parse::<Role>().unwrap(), r);
    }
    assert_eq!(Role::Device.to_string(), "device");
    assert_eq!(Role::Reader.to_string(), "reader");
    assert_eq!(Role::Relay.to_string(), "relay");
    for bad in ["", "Reader", "admin", "relay "] {
        let err = bad.parse::<Role>().unwrap_err();
        assert_eq!(err.value, bad);
        assert!(err.to_string().contains("reader"), "{err}");
    }
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Wire {
    destination: Destination,
    priority: Priority,
    role: Role,
}

#[test]
fn serde_uses_the_text_forms() {
    let w = Wire {
        destination: Destination::department("county", "radiology"),
        priority: Priority::Urgent,
        role: Role::Reader,
    };
    let text = toml::to_string(&w).unwrap();
    assert!(
        text.contains("destination = \"county/radiology\""),
        "{text}"
    );
    assert!(text.contains("priority = \"urgent\""), "{text}");
    assert!(text.contains("role = \"reader\""), "{text}");
    assert_eq!(toml::from_str::<Wire>(&text).unwrap(), w);

    let bad = "destination = \"county/x/y\"\npriority = \"urgent\"\nrole = \"reader\"";
    assert!(toml::from_str::<Wire>(bad).is_err());
}
