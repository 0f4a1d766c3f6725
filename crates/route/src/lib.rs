//! Alliance topology and routing rules for yilian: pure functions over config.
//!
//! # Model
//!
//! A county medical alliance (医联体) is described by **one TOML file** that the alliance
//! administrator edits. It declares:
//!
//! - **sites**: township health centers, the county hospital, provincial hospitals. A site may
//!   have reading **departments** (radiology, ultrasound, cardiology, …), a **parent** (where its
//!   instances go when no rule says otherwise, normally township → county) and a
//!   **default department** (which of its departments receives what children send by default);
//! - **identities**: every peer that holds a certificate — `device`s that send as their own site,
//!   `reader`s that receive what is routed to their site/department, `relay`s;
//! - **rules**: "instances from these sites, with these modalities / SOP classes / body parts,
//!   go to these destinations, at this priority";
//! - **revoked** certificates (the deny list): an identity name and/or a certificate serial the
//!   relay must refuse, with the reason ([`Revocation`]).
//!
//! [`Topology::from_toml_str`] / [`Topology::load`] parse and validate the file once;
//! the resulting [`Topology`] is immutable and answers three questions with pure functions:
//! [`Topology::route`] (where does this instance go, how urgently),
//! [`Topology::readers_for`] (who reads what lands at a destination) and
//! [`Topology::revoked`] (is this certificate on the deny list). The relay replaces its
//! topology as a whole when the file changes; a file that does not validate changes nothing.
//!
//! # Routing
//!
//! All matching rules apply: destinations are their union (de-duplicated, stable order) and the
//! priority is the maximum of the requested one and every matching rule's priority. When no rule
//! matches, the instance goes to the source site's parent, at the parent's `default_department`.
//! No rule and no parent is an error telling the administrator what to add. See [`Rule`] for how
//! one rule matches.
//!
//! # File format
//!
//! ```toml
//! [alliance]
//! name = "Example County Medical Alliance"
//!
//! [[site]]
//! id = "county"                          # [a-z0-9][a-z0-9-]*, unique
//! name = "County People's Hospital"
//! kind = "county"                        # township | county | provincial
//! departments = ["radiology", "cardiology"]   # optional, [a-z0-9][a-z0-9-]* each
//! parent = "provincial"                  # optional: default route for this site's instances
//! default_department = "radiology"       # optional: one of departments
//! charset = "GBK"                        # optional: text its devices write without declaring
//!                                        # a character set (DICOM defined term)
//!
//! [[identity]]
//! name = "county-radiology"              # [a-z0-9][a-z0-9-]*, unique; certificate CN
//! site = "county"
//! role = "reader"                        # device | reader | relay
//! department = "radiology"               # optional, readers only
//!
//! [[rule]]
//! name = "stroke-ct"                     # unique
//! from_sites = ["township-a"]            # optional; empty or absent = any site
//! modalities = ["CT"]                    # optional; absent = any; case-insensitive
//! sop_classes = ["1.2.840.10008.5.1.4.1.1.2"] # optional; absent = any
//! body_parts = ["HEAD", "BRAIN"]         # optional; absent = any; case-insensitive
//! to = ["county/radiology"]              # "site" or "site/department", at least one
//! priority = "urgent"                    # optional: routine | urgent
//!
//! [[revoked]]                            # the deny list; none in a healthy alliance
//! name = "county-radiology"              # optional: a declared identity (every certificate of it)
//! serial = "4F2A01"                      # optional: one certificate (hex, as openssl prints it)
//! reason = "laptop stolen 2026-12-01"    # required; shown to the refused peer, audited
//!
//! [[ae]]                                 # a DICOM AE title that calls the relay (DIMSE)
//! title = "TWA_DR1"                      # 1-16 characters, unique
//! identity = "township-a-device"         # acts as this identity: a device (C-STORE as its
//!                                        # site) or a reader (Q/R sees what is routed to it)
//! addresses = ["192.168.10.21"]          # optional allow-list of calling addresses
//! host = "192.168.10.21"                 # optional, with port: where the relay reaches it
//! port = 104                             #   (C-MOVE destination)
//! charset = "GBK"                        # optional: overrides the site's charset
//! ```
//!
//! Unknown keys are rejected so that typos are caught. A present filter list must not be empty
//! (`modalities = []` could never match: remove the key to match anything). A `[[revoked]]`
//! entry needs a name or a serial (every field given must match, like a rule's filters); its
//! name must be a declared identity, since a misspelt revocation would silently revoke nobody.
//!
//! Identity names, site ids and departments are embedded in certificates as
//! `urn:yilian:peer:<name>:<site>:<role>[:<department>]` ([`Identity::peer_uri`]), hence their
//! syntax. Only readers have a department, and it is optional: a reader **without** department is
//! a site-wide reader — it receives what is routed to its bare site (e.g. reports sent back down
//! to a township), but not what is routed to one department of its site.
//!
//! The example alliance used in development is embedded as [`Topology::example`]
//! (`fixtures/topology.toml`).

mod ae;
mod destination;
mod error;
mod file;
mod identity;
mod name;
mod priority;
mod revocation;
mod rules;
mod serial;
mod site;
mod topology;
mod validate;

pub use ae::{is_valid_ae_title, AeTitle};
pub use destination::Destination;
pub use error::{
    ParseDestinationError, ParsePriorityError, ParseRoleError, ParseSerialError, RouteError,
    TopologyError,
};
pub use identity::{Identity, Role};
pub use name::is_valid_name;
pub use priority::Priority;
pub use revocation::{Revocation, MAX_REASON_CHARS};
pub use rules::{RouteDecision, RouteInput, Rule};
pub use serial::CertSerial;
pub use site::{Site, SiteKind};
pub use topology::Topology;
