//! What a front door knows about an instance before its bytes.

use bytes::Bytes;
use yilian_proto::{Hash, InstanceFacts};
use yilian_route::Priority;

/// What a front door knows about an instance before its bytes.
#[derive(Clone, Debug, Default)]
pub struct UploadSpec {
    /// SOP Instance UID (yilian/1: the offer's; C-STORE: the command's Affected SOP Instance).
    pub sop_uid: String,
    /// Study Instance UID, when known up front (yilian/1). The file must then carry it.
    pub study_uid: Option<String>,
    /// The whole file's size, when known up front (yilian/1). An upload with both size and
    /// study is resumable (its partial survives a broken stream) and reaches connected readers
    /// while it arrives; one without is stored in a scratch file and reaches them once stored.
    pub size: Option<u64>,
    /// The priority requested (the routing rules may raise it).
    pub priority: Priority,
    /// Header facts declared before the data (urgent first before the header is read).
    pub facts: Option<InstanceFacts>,
    /// The whole file's hash, if the sender knows it up front (an identical instance already
    /// stored is then acknowledged without its bytes).
    pub hash: Option<Hash>,
    /// Bytes in front of the received ones, made up by the front door (C-STORE: the file meta
    /// information synthesized from the association). Part of the stored file and its hash.
    pub prefix: Option<Bytes>,
}

impl UploadSpec {
    pub(crate) fn resumable(&self) -> bool {
        self.size.is_some() && self.study_uid.is_some()
    }
}
