//! A whole object the relay made itself (an ECG session's recording) into the ingest path.

use std::sync::Arc;

use bytes::Bytes;
use yilian_proto::{Hash, Refusal};

use crate::upload::{Event, Opened};
use crate::{Ingest, Principal, UploadSpec};

/// Bytes per `Upload::data` call.
const CHUNK: usize = 256 * 1024;

impl Ingest {
    /// Store `bytes` (one whole Part 10 file) for `principal`, exactly as any upload: the same
    /// checks, routing, durability and audit. `spec` needs the SOP Instance UID; its size and
    /// hash are filled in here. Answers the stored hash once durable and committed; an
    /// identical instance already stored is a success, a refusal is audited and returned.
    pub async fn store_whole(
        self: &Arc<Self>,
        principal: Arc<Principal>,
        mut spec: UploadSpec,
        bytes: Bytes,
    ) -> Result<Hash, Refusal> {
        let hash: Hash = *blake3::hash(&bytes).as_bytes();
        spec.size = Some(bytes.len() as u64);
        spec.hash = Some(hash);
        let (study, sop) = (spec.study_uid.clone(), spec.sop_uid.clone());
        let outcome = self.store_whole_inner(principal.clone(), spec, bytes).await;
        if let Err(r) = &outcome {
            self.refused(&principal, study, Some(sop), r).await;
        }
        outcome
    }

    async fn store_whole_inner(
        self: &Arc<Self>,
        principal: Arc<Principal>,
        spec: UploadSpec,
        bytes: Bytes,
    ) -> Result<Hash, Refusal> {
        let mut up = self.begin(principal, spec, crate::next_conn()).await?;
        if let Err(r) = up.lease().await {
            up.close().await;
            return Err(r);
        }
        let offset = match up.open().await {
            Ok(Opened::At(o)) => o,
            Ok(Opened::AlreadyStored(h)) => {
                up.close().await;
                return Ok(h);
            }
            Err(r) => {
                up.close().await;
                return Err(r);
            }
        };
        let mut rest = bytes.slice((offset as usize).min(bytes.len())..);
        let mut refused = false;
        while !rest.is_empty() && !refused {
            let n = rest.len().min(CHUNK);
            refused = !up.data(rest.split_to(n)).await;
        }
        if !refused {
            up.finish(None).await;
        }
        let outcome = loop {
            match up.next_event().await {
                Event::Hold(_) | Event::Checkpoint(_) => continue,
                Event::Stored(h) => break Ok(h),
                Event::Refused(r) => break Err(r),
            }
        };
        up.close().await;
        outcome
    }
}
