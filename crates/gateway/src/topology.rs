//! The gateway's own, synthetic topology: one site (the certificate's), the gateway as the
//! device every console acts as, and one reader, `upstream`, that receives everything.
//!
//! The local ingest path routes by a topology like the relay's. The gateway has no alliance
//! file: what it needs is built from its certificate, so that whatever a console stores lands
//! in exactly one outbox, the forwarder's. Routing proper (departments, urgent rules) happens at
//! the county relay, from the header of what the gateway forwards.

use yilian_ingest::{Door, Principal};
use yilian_route::{Role, Topology};
use yilian_transport::PeerIdentity;

use crate::GatewayError;

/// The name of the local reader the forwarder acts as (unless the gateway itself is called
/// so; then [`UPSTREAM_FALLBACK`]).
pub const UPSTREAM_READER: &str = "upstream";
/// The reader's name when the gateway's identity is itself called `upstream`.
pub const UPSTREAM_FALLBACK: &str = "upstream-relay";

/// What the local ingest path needs: the topology, the principal every console stores as,
/// and the reader whose outbox is the forwarder's queue.
#[derive(Debug)]
pub struct Local {
    pub topology: Topology,
    pub principal: Principal,
    pub reader: String,
}

impl Local {
    /// The local topology for a gateway holding the certificate of `identity` (a device, or a
    /// relay forwarding for its site; a reader's certificate cannot upload and is refused).
    pub fn for_identity(identity: &PeerIdentity) -> Result<Local, GatewayError> {
        if !matches!(identity.role, Role::Device | Role::Relay) {
            return Err(GatewayError::Identity(format!(
                "the certificate is {identity}: a gateway needs a device certificate of its site (a {} may not upload to the relay)",
                identity.role
            )));
        }
        let reader = if identity.name == UPSTREAM_READER {
            UPSTREAM_FALLBACK
        } else {
            UPSTREAM_READER
        };
        // Names and sites are [a-z0-9][a-z0-9-]* (checked when the certificate was parsed):
        // safe inside TOML strings.
        identity
            .validate()
            .map_err(|e| GatewayError::Identity(e.to_string()))?;
        let toml = format!(
            r#"[alliance]
name = "township gateway of {site}"

[[site]]
id = "{site}"
name = "{site} (township gateway)"
kind = "township"

[[identity]]
name = "{name}"
site = "{site}"
role = "{role}"

[[identity]]
name = "{reader}"
site = "{site}"
role = "reader"

# Everything goes to the site, whose only reader is the forwarder.
[[rule]]
name = "everything-upstream"
to = ["{site}"]
"#,
            site = identity.site,
            name = identity.name,
            role = identity.role,
        );
        let topology = Topology::from_toml_str(&toml)
            .map_err(|e| GatewayError::Identity(format!("local topology: {e}")))?;
        Ok(Local {
            topology,
            principal: Principal {
                name: identity.name.clone(),
                site: identity.site.clone(),
                role: identity.role,
                department: None,
                // Set per association by the door (the calling AE title).
                door: Door::Dimse {
                    calling_ae: String::new(),
                },
            },
            reader: reader.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yilian_route::{Destination, Priority, RouteInput};

    fn id(name: &str, site: &str, role: Role) -> PeerIdentity {
        PeerIdentity::new(name, site, role, None).unwrap()
    }

    #[test]
    fn everything_a_console_sends_goes_to_the_upstream_reader_only() {
        let local =
            Local::for_identity(&id("township-a-device", "township-a", Role::Device)).unwrap();
        assert_eq!(local.reader, "upstream");
        assert_eq!(local.principal.site, "township-a");
        assert_eq!(local.principal.name, "township-a-device");
        assert!(local.principal.may_upload());
        let t = &local.topology;
        assert_eq!(t.sites().count(), 1);
        for (modality, sop_class, body) in [
            ("CT", "1.2.840.10008.5.1.4.1.1.2", Some("HEAD")),
            ("US", "1.2.840.10008.5.1.4.1.1.3.1", None),
            ("ECG", "1.2.840.10008.5.1.4.1.1.9.1.1", None),
            ("", "1.2.840.10008.5.1.4.1.1.7", None),
        ] {
            let mut input = RouteInput::new("township-a", modality, sop_class);
            if modality.is_empty() {
                input = input.without_modality();
            }
            if let Some(b) = body {
                input = input.with_body_part(b);
            }
            let d = t.route(&input).unwrap();
            // The gateway does not judge urgency: the county relay's rules do, from the header.
            assert_eq!(d.priority, Priority::Routine);
            let readers: Vec<&str> = d
                .destinations
                .iter()
                .flat_map(|dest: &Destination| t.readers_for(dest))
                .map(|i| i.name.as_str())
                .collect();
            assert_eq!(readers, ["upstream"], "{modality}");
        }
    }

    #[test]
    fn a_relay_certificate_works_and_a_reader_certificate_is_refused() {
        let local =
            Local::for_identity(&id("township-b-relay", "township-b", Role::Relay)).unwrap();
        assert_eq!(local.principal.role, Role::Relay);
        assert!(local.principal.may_upload());
        let reader = PeerIdentity::new(
            "county-radiology",
            "county",
            Role::Reader,
            Some("radiology"),
        )
        .unwrap();
        let e = Local::for_identity(&reader).unwrap_err().to_string();
        assert!(e.contains("device certificate"), "{e}");
    }

    #[test]
    fn a_gateway_called_upstream_gets_another_reader_name() {
        let local = Local::for_identity(&id("upstream", "township-c", Role::Device)).unwrap();
        assert_eq!(local.reader, UPSTREAM_FALLBACK);
        assert!(local.topology.identity(UPSTREAM_FALLBACK).is_some());
    }
}
