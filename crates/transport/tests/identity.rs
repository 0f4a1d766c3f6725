//! The SAN URI contract: round trips, rejection of anything else, and reading it from
//! certificates.

mod common;

use common::*;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use yilian_transport::{identity_from_cert, IdentityError, PeerIdentity, Role, TransportError};

#[test]
fn san_uri_round_trips_for_every_role_with_and_without_department() {
    for role in Role::ALL {
        for dept in [None, Some("cardiology"), Some("ct-2")] {
            let id = PeerIdentity::new("node-1", "township-7", role, dept).unwrap();
            let uri = id.san_uri();
            let expected = match dept {
                Some(d) => format!("urn:yilian:peer:node-1:township-7:{role}:{d}"),
                None => format!("urn:yilian:peer:node-1:township-7:{role}"),
            };
            assert_eq!(uri, expected);
            assert_eq!(PeerIdentity::from_san_uri(&uri).unwrap(), id);
            assert_eq!(uri.parse::<PeerIdentity>().unwrap(), id);
        }
    }
}

#[test]
fn the_contract_example_parses() {
    let id = PeerIdentity::from_san_uri("urn:yilian:peer:county-radiology:county:reader:radiology")
        .unwrap();
    assert_eq!(id.name, "county-radiology");
    assert_eq!(id.site, "county");
    assert_eq!(id.role, Role::Reader);
    assert_eq!(id.department.as_deref(), Some("radiology"));
    assert_eq!(
        id.to_string(),
        "county-radiology (reader, county/radiology)"
    );
}

#[test]
fn malformed_uris_are_rejected_with_the_right_error() {
    use IdentityError::*;
    type Check = fn(&IdentityError) -> bool;
    let cases: &[(&str, Check)] = &[
        ("", |e| matches!(e, NotYilianUri(_))),
        ("urn:yilian:peers:a:b:relay", |e| {
            matches!(e, NotYilianUri(_))
        }),
        ("URN:yilian:peer:a:b:relay", |e| {
            matches!(e, NotYilianUri(_))
        }),
        ("spiffe://alliance/a", |e| matches!(e, NotYilianUri(_))),
        ("urn:yilian:peer:", |e| matches!(e, MalformedUri(_))),
        ("urn:yilian:peer:a:b", |e| matches!(e, MalformedUri(_))),
        ("urn:yilian:peer:a:b:relay:c:d", |e| {
            matches!(e, MalformedUri(_))
        }),
        (
            "urn:yilian:peer:a:b:admin",
            |e| matches!(e, UnknownRole(r) if r == "admin"),
        ),
        ("urn:yilian:peer:a:b:Relay", |e| matches!(e, UnknownRole(_))),
        ("urn:yilian:peer:A:b:relay", |e| {
            matches!(e, InvalidLabel { field: "name", .. })
        }),
        ("urn:yilian:peer:-a:b:relay", |e| {
            matches!(e, InvalidLabel { field: "name", .. })
        }),
        ("urn:yilian:peer:a_b:c:relay", |e| {
            matches!(e, InvalidLabel { field: "name", .. })
        }),
        ("urn:yilian:peer:王:c:relay", |e| {
            matches!(e, InvalidLabel { field: "name", .. })
        }),
        ("urn:yilian:peer:a::relay", |e| {
            matches!(e, InvalidLabel { field: "site", .. })
        }),
        ("urn:yilian:peer:a:b c:relay", |e| {
            matches!(e, InvalidLabel { field: "site", .. })
        }),
        ("urn:yilian:peer:a:b:relay:", |e| {
            matches!(
                e,
                InvalidLabel {
                    field: "department",
                    ..
                }
            )
        }),
        ("urn:yilian:peer:a:b:reader:Radiology", |e| {
            matches!(
                e,
                InvalidLabel {
                    field: "department",
                    ..
                }
            )
        }),
    ];
    for (uri, check) in cases {
        let err = PeerIdentity::from_san_uri(uri).unwrap_err();
        assert!(check(&err), "{uri:?} gave {err:?}");
        assert!(!err.to_string().is_empty());
    }
    // Trailing hyphens and digits-first labels are allowed by [a-z0-9][a-z0-9-]*.
    assert!(PeerIdentity::from_san_uri("urn:yilian:peer:9a-:b-:device").is_ok());
}

#[test]
fn identity_is_read_from_an_issued_certificate() {
    let ca = ca("test alliance");
    for id in [relay_id(), device_id(), reader_id()] {
        let tls = pem(&ca, &ca, &id, &[]);
        let der = tls.certificates().unwrap().remove(0);
        assert_eq!(identity_from_cert(&der).unwrap(), id);
        assert_eq!(tls.identity().unwrap(), id);

        // CN = name, as the contract says.
        let (_, x509) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
        let cn = x509.subject().iter_common_name().next().unwrap();
        assert_eq!(cn.as_str().unwrap(), id.name);
    }
}

fn self_signed_with(sans: Vec<rcgen::SanType>) -> CertificateDer<'static> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.subject_alt_names = sans;
    params.self_signed(&key).unwrap().der().clone()
}

#[test]
fn certificates_without_exactly_one_yilian_uri_are_rejected() {
    let dns = rcgen::SanType::DnsName("localhost".to_string().try_into().unwrap());
    let uri = |s: &str| rcgen::SanType::URI(s.to_string().try_into().unwrap());

    let none = self_signed_with(vec![dns.clone()]);
    assert_eq!(identity_from_cert(&none), Err(IdentityError::NoSanUri));
    let no_san = self_signed_with(vec![]);
    assert_eq!(identity_from_cert(&no_san), Err(IdentityError::NoSanUri));

    let two = self_signed_with(vec![
        uri("urn:yilian:peer:a:b:relay"),
        uri("urn:yilian:peer:c:d:device"),
    ]);
    assert_eq!(
        identity_from_cert(&two),
        Err(IdentityError::SeveralSanUris(2))
    );

    let foreign = self_signed_with(vec![uri("https://example.org/")]);
    assert!(matches!(
        identity_from_cert(&foreign),
        Err(IdentityError::NotYilianUri(_))
    ));

    let garbage = CertificateDer::from(vec![0x30, 0x03, 0x01, 0x02, 0x03]);
    assert!(matches!(
        identity_from_cert(&garbage),
        Err(IdentityError::BadCertificate(_))
    ));
}

#[test]
fn issue_rejects_invalid_input() {
    let ca = ca("test alliance");
    let now = OffsetDateTime::now_utc();
    let later = now + time::Duration::days(1);
    let bad = PeerIdentity {
        name: "Bad Name".into(),
        site: "county".into(),
        role: Role::Device,
        department: None,
    };
    assert!(matches!(
        ca.issue(&bad, &[], now, later),
        Err(TransportError::InvalidInput(_))
    ));
    assert!(matches!(
        ca.issue(&device_id(), &[], later, now),
        Err(TransportError::InvalidInput(_))
    ));
    let err = ca
        .issue(&relay_id(), &["not a host name".to_string()], now, later)
        .unwrap_err();
    assert!(
        err.to_string().contains("not a DNS name or IP address"),
        "{err}"
    );
}

#[test]
fn ca_certificate_says_development_only() {
    let ca = ca("Yongshun county alliance");
    let der = CertificateDer::from_pem_slice(ca.ca_pem().as_bytes()).unwrap();
    let (_, x509) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
    let cn = x509.subject().iter_common_name().next().unwrap();
    assert_eq!(
        cn.as_str().unwrap(),
        "yilian DEVELOPMENT CA — Yongshun county alliance — not for clinical use"
    );
    assert!(x509.is_ca());
    let years = (x509.validity().not_after.timestamp() - x509.validity().not_before.timestamp())
        / (365 * 24 * 3600);
    assert!((9..=11).contains(&years), "{years}");
    assert!(matches!(
        yilian_transport::DevCa::generate("  "),
        Err(TransportError::InvalidInput(_))
    ));
}
