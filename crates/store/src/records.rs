use yilian_proto::Hash;

/// What the relay knows about an instance it is about to store (from the verified bytes and the
/// authenticated peer, never from the sender's claims).
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

/// A stored instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceRecord {
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
