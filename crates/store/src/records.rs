use yilian_proto::Hash;

/// What the relay knows about an instance it is about to store (from the verified bytes and the
/// authenticated peer, never from the sender's claims). Attributes the file lacks (a Secondary
/// Capture without Modality, say) are empty strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewInstance {
    pub sop_uid: String,
    pub study_uid: String,
    pub series_uid: String,
    pub sop_class_uid: String,
    pub modality: String,
    pub source_site: String,
    pub source_identity: String,
    pub priority: u8,
}

/// A stored instance. A SOP Instance UID is unique per source site (`source_site`, `sop_uid`);
/// within a study, which belongs to one site, it is unique.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceRecord {
    /// Row id in the index.
    pub id: i64,
    pub sop_uid: String,
    pub study_uid: String,
    pub series_uid: String,
    pub sop_class_uid: String,
    pub modality: String,
    pub source_site: String,
    pub source_identity: String,
    pub size: u64,
    pub hash: Hash,
    pub priority: u8,
    pub stored_at_ms: i64,
}
