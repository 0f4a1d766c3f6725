//! Errors of this crate. Every message is written for the alliance administrator who edits the
//! topology file: it names the offending `[[site]]`, `[[identity]]` or `[[rule]]` and says what
//! to add or fix.

use std::path::PathBuf;

use thiserror::Error;

const NAME_SYNTAX: &str = "lower-case letters, digits and '-', not starting with '-' \
     ([a-z0-9][a-z0-9-]*), because it is embedded in certificates";

/// The topology file could not be loaded: unreadable, not valid TOML for the expected shape, or
/// inconsistent.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TopologyError {
    /// The file could not be read.
    #[error("cannot read topology file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },

    /// Not TOML, an unknown key (typo), a missing key or a value of the wrong type.
    #[error("topology file does not have the expected shape: {0}")]
    Parse(#[from] toml::de::Error),

    /// `[alliance] name` is empty.
    #[error("[alliance] name is empty: give the alliance a name")]
    EmptyAllianceName,

    /// A site id does not match `[a-z0-9][a-z0-9-]*`.
    #[error("[[site]] id = {id:?} is not a valid site id: use {NAME_SYNTAX}")]
    InvalidSiteId {
        /// The offending id.
        id: String,
    },

    /// Two `[[site]]` tables have the same id.
    #[error("site id {id:?} is declared by more than one [[site]]: site ids must be unique")]
    DuplicateSite {
        /// The repeated id.
        id: String,
    },

    /// A department name of a site does not match `[a-z0-9][a-z0-9-]*`.
    #[error(
        "site {site:?} declares department {department:?}, which is not a valid department name: \
         use {NAME_SYNTAX}"
    )]
    InvalidDepartment {
        /// The site.
        site: String,
        /// The offending department.
        department: String,
    },

    /// A site lists the same department twice.
    #[error("site {site:?} lists department {department:?} more than once in departments")]
    DuplicateDepartment {
        /// The site.
        site: String,
        /// The repeated department.
        department: String,
    },

    /// A site's `parent` names no declared site.
    #[error(
        "site {site:?} has parent = {parent:?}, but no [[site]] has id = {parent:?}: \
         add that site or fix the parent"
    )]
    UnknownParent {
        /// The site with the bad parent.
        site: String,
        /// The unknown parent id.
        parent: String,
    },

    /// Following `parent` from some site comes back to it.
    #[error(
        "the parents of these sites form a cycle: {}; every chain of parents must end at a site \
         without parent (usually the provincial hospital)",
        cycle.join(" -> ")
    )]
    ParentCycle {
        /// The sites of the cycle, in parent order, the first repeated at the end.
        cycle: Vec<String>,
    },

    /// A site's `default_department` is not one of its departments.
    #[error(
        "site {site:?} has default_department = {department:?}, which is not one of its \
         departments: add {department:?} to its departments or fix default_department"
    )]
    UnknownDefaultDepartment {
        /// The site.
        site: String,
        /// The unknown department.
        department: String,
    },

    /// An identity name does not match `[a-z0-9][a-z0-9-]*`.
    #[error("[[identity]] name = {name:?} is not a valid identity name: use {NAME_SYNTAX}")]
    InvalidIdentityName {
        /// The offending name.
        name: String,
    },

    /// Two `[[identity]]` tables have the same name.
    #[error(
        "identity name {name:?} is declared by more than one [[identity]]: names must be unique"
    )]
    DuplicateIdentity {
        /// The repeated name.
        name: String,
    },

    /// An identity belongs to a site that is not declared.
    #[error(
        "identity {identity:?} has site = {site:?}, but no [[site]] has id = {site:?}: \
         add that site or fix the identity"
    )]
    UnknownIdentitySite {
        /// The identity.
        identity: String,
        /// The unknown site id.
        site: String,
    },

    /// A reader's department is not a department of its site.
    #[error(
        "identity {identity:?} has department = {department:?}, but site {site:?} has no such \
         department: add it to the site's departments or fix the identity"
    )]
    UnknownIdentityDepartment {
        /// The identity.
        identity: String,
        /// Its site.
        site: String,
        /// The unknown department.
        department: String,
    },

    /// A device or relay identity has a department.
    #[error(
        "identity {identity:?} is a {role} but has department = {department:?}: only readers \
         belong to a department; remove the department"
    )]
    DepartmentNotAllowed {
        /// The identity.
        identity: String,
        /// Its role (`device` or `relay`).
        role: crate::Role,
        /// The department it should not have.
        department: String,
    },

    /// A rule's name is empty.
    #[error("[[rule]] number {index} (counting from 1 in file order) has an empty name: name it")]
    EmptyRuleName {
        /// 1-based position of the rule in the file.
        index: usize,
    },

    /// Two `[[rule]]` tables have the same name.
    #[error("rule name {name:?} is declared by more than one [[rule]]: rule names must be unique")]
    DuplicateRule {
        /// The repeated name.
        name: String,
    },

    /// A rule's `from_sites` names an undeclared site.
    #[error(
        "rule {rule:?} lists {site:?} in from_sites, but no [[site]] has id = {site:?}: \
         add that site or fix the rule"
    )]
    UnknownRuleSource {
        /// The rule.
        rule: String,
        /// The unknown site id.
        site: String,
    },

    /// A rule has `to = []` (a rule without `to` at all is a [`TopologyError::Parse`]).
    #[error(
        "rule {rule:?} has an empty to list: give it at least one destination, e.g. \
         to = [\"county/radiology\"]"
    )]
    EmptyRuleTarget {
        /// The rule.
        rule: String,
    },

    /// A rule's `to` entry is not `site` or `site/department`.
    #[error(
        "rule {rule:?} has to entry {value:?}, which is not of the form \"site\" or \
         \"site/department\" (each part {NAME_SYNTAX})"
    )]
    InvalidRuleTarget {
        /// The rule.
        rule: String,
        /// The malformed entry.
        value: String,
    },

    /// A rule sends to an undeclared site.
    #[error(
        "rule {rule:?} sends to site {site:?}, but no [[site]] has id = {site:?}: \
         add that site or fix the rule's to"
    )]
    UnknownRuleTargetSite {
        /// The rule.
        rule: String,
        /// The unknown site id.
        site: String,
    },

    /// A rule sends to a department that its site does not have.
    #[error(
        "rule {rule:?} sends to \"{site}/{department}\", but site {site:?} has no department \
         {department:?}: add it to the site's departments or fix the rule's to"
    )]
    UnknownRuleTargetDepartment {
        /// The rule.
        rule: String,
        /// The destination site.
        site: String,
        /// The unknown department.
        department: String,
    },

    /// A rule filter is an empty list or contains an empty entry: it could never match.
    #[error(
        "rule {rule:?} has an empty {field} list or an empty entry in it, which can never match: \
         remove {field} to match any value, or fill it in"
    )]
    EmptyRuleFilter {
        /// The rule.
        rule: String,
        /// `modalities`, `sop_classes` or `body_parts`.
        field: &'static str,
    },

    /// A rule's `sop_classes` entry is not a DICOM UID.
    #[error(
        "rule {rule:?} lists SOP class {value:?}, which is not a valid DICOM UID \
         (digits separated by dots, e.g. \"1.2.840.10008.5.1.4.1.1.2\")"
    )]
    InvalidSopClass {
        /// The rule.
        rule: String,
        /// The malformed UID.
        value: String,
    },

    /// A `[[revoked]]` entry gives neither `name` nor `serial`.
    #[error(
        "[[revoked]] number {index} (counting from 1 in file order) gives neither name nor \
         serial: give name = \"<identity>\" to revoke every certificate of an identity, or \
         serial = \"<hex>\" to revoke one certificate"
    )]
    RevokedWithoutTarget {
        /// 1-based position of the entry in the file.
        index: usize,
    },

    /// A `[[revoked]]` entry names an identity the topology does not declare.
    #[error(
        "[[revoked]] name = {name:?}, but no [[identity]] has that name: fix the name (a \
         misspelt revocation would revoke nobody). An identity that is no longer declared is \
         refused anyway; to revoke one certificate whatever its identity, give its serial only"
    )]
    RevokedUnknownIdentity {
        /// The unknown name.
        name: String,
    },

    /// A `charset` is not a DICOM character set this relay knows.
    #[error(
        "{owner} has charset = {term:?}, which is not a DICOM character set yilian knows: use a \
         defined term such as \"GBK\", \"GB18030\" or \"ISO_IR 192\""
    )]
    UnknownCharset {
        /// `[[site]] "id"` or `[[ae]] "title"`.
        owner: String,
        /// The term.
        term: String,
    },

    /// An `[[ae]]` title is not a valid AE title.
    #[error(
        "[[ae]] title = {title:?} is not a valid AE title: use 1 to 16 printable ASCII \
         characters without backslash, not only spaces"
    )]
    InvalidAeTitle {
        /// The offending title.
        title: String,
    },

    /// Two `[[ae]]` tables have the same title.
    #[error("AE title {title:?} is declared by more than one [[ae]]: AE titles must be unique")]
    DuplicateAeTitle {
        /// The repeated title.
        title: String,
    },

    /// An `[[ae]]` acts as an identity that is not declared.
    #[error(
        "[[ae]] {title:?} has identity = {identity:?}, but no [[identity]] has that name: \
         declare the identity or fix the AE"
    )]
    UnknownAeIdentity {
        /// The AE title.
        title: String,
        /// The unknown identity.
        identity: String,
    },

    /// An `[[ae]]` has a host without a port or a port without a host.
    #[error("[[ae]] {title:?} gives only one of host and port: give both (or neither)")]
    AeHostWithoutPort {
        /// The AE title.
        title: String,
    },

    /// An `[[ae]]` with `push = true` lacks host and port.
    #[error(
        "[[ae]] {title:?} has push = true but no host and port: the relay must know where to \
         send (give host = \"…\" and port = …, where the peer's DICOM service listens), or \
         remove push"
    )]
    PushWithoutEndpoint {
        /// The AE title.
        title: String,
    },

    /// An `[[ae]]` with `push = true` acts as an identity that is not a reader.
    #[error(
        "[[ae]] {title:?} has push = true but acts as identity {identity:?}, a {role}: the relay \
         pushes what is routed to a reader, so a push AE must act as an identity with role = \
         \"reader\" (declare one for the peer, e.g. at the site and department it serves)"
    )]
    PushNotReader {
        /// The AE title.
        title: String,
        /// Its identity.
        identity: String,
        /// That identity's role.
        role: crate::Role,
    },

    /// Two `[[ae]]` with `push = true` act as the same reader identity.
    #[error(
        "[[ae]] {first:?} and {second:?} both have push = true for identity {identity:?}: one \
         reader's outbox can be pushed to one peer only; declare a reader identity per peer \
         (routing rules can send to both)"
    )]
    DuplicatePushReader {
        /// The identity.
        identity: String,
        /// The first AE title pushing to it.
        first: String,
        /// The second.
        second: String,
    },

    /// A `[[revoked]]` serial is not a certificate serial number.
    #[error(
        "[[revoked]] number {index} has serial = {value:?}, which is not a certificate serial: \
         write it in hexadecimal as `openssl x509 -noout -serial -in CERT.pem` prints it (e.g. \
         \"4F2A01\"; \"4f:2a:01\" is fine too), at most 20 octets"
    )]
    InvalidRevokedSerial {
        /// 1-based position of the entry in the file.
        index: usize,
        /// The malformed serial.
        value: String,
    },

    /// A `[[revoked]]` reason is empty, multi-line or too long.
    #[error(
        "[[revoked]] number {index} has {problem}: the reason is shown to the refused peer and \
         written to the audit log; give one line of at most {max} characters, e.g. \
         reason = \"laptop stolen 2026-12-01\" (never patient data)",
        max = crate::revocation::MAX_REASON_CHARS
    )]
    InvalidRevocationReason {
        /// 1-based position of the entry in the file.
        index: usize,
        /// What is wrong with it.
        problem: &'static str,
    },
}

/// An instance could not be routed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteError {
    /// The source site is not in the topology.
    #[error(
        "cannot route an instance from site {site:?}: the topology has no such site; \
         add a [[site]] with id = {site:?}"
    )]
    UnknownSourceSite {
        /// The unknown site id.
        site: String,
    },

    /// No rule matches and the source site has no parent to fall back to.
    #[error(
        "no route for a {modality:?} instance (SOP class {sop_class_uid:?}) from site {site:?}: \
         no [[rule]] matches it and site {site:?} has no parent; add a [[rule]] whose from_sites \
         includes {site:?} (or that has no from_sites), or set parent on site {site:?}"
    )]
    NoRoute {
        /// The source site.
        site: String,
        /// The instance's modality.
        modality: String,
        /// The instance's SOP class UID.
        sop_class_uid: String,
    },
}

/// A text is not a [`crate::Role`].
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("unknown role {value:?}: expected \"device\", \"reader\" or \"relay\"")]
pub struct ParseRoleError {
    /// The text that failed to parse.
    pub value: String,
}

/// A text is not a [`crate::Priority`].
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("unknown priority {value:?}: expected \"routine\" or \"urgent\"")]
pub struct ParsePriorityError {
    /// The text that failed to parse.
    pub value: String,
}

/// A text is not a [`crate::Destination`].
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error(
    "invalid destination {value:?}: expected \"site\" or \"site/department\", each part made of \
     lower-case letters, digits and '-'"
)]
pub struct ParseDestinationError {
    /// The text that failed to parse.
    pub value: String,
}

/// A text is not a [`crate::CertSerial`].
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error(
    "invalid certificate serial {value:?}: expected hexadecimal digits (\"4F2A01\", \
     \"4f:2a:01\" or \"0x4f2a01\"), at most 20 octets"
)]
pub struct ParseSerialError {
    /// The text that failed to parse.
    pub value: String,
}
