//! Study manifests: a device says which instances make a study; once all are stored, readers
//! are told the study is complete.
//!
//! A manifest arrives in pieces (any size: a 5,000-slice CT is fine) and is answered in
//! pieces (`yilian_proto::manifest`). Only devices (and relays) may send one, only for a study
//! their site owns or that nobody owns yet (the first site to send a study owns it), and every
//! manifest, accepted or refused, is audited.

use bytes::BytesMut;
use quinn::{RecvStream, SendStream};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tracing::info;
use yilian_proto::{
    encode_manifest_reply, FrameDecoder, Manifest, ManifestAssembler, ManifestPart, ManifestReply,
    Refusal, RefuseCode,
};
use yilian_store::{AuditAction, ManifestStatus};
use yilian_transport::{PeerIdentity, Role};

use crate::ctx::Ctx;
use yilian_ingest::refusal;

/// How long the parts of one manifest may take to arrive.
const PARTS_TIMEOUT: Duration = Duration::from_secs(120);

/// Serve a manifest stream whose first frame was `header`.
pub(crate) async fn manifest(
    ctx: &Arc<Ctx>,
    peer: &PeerIdentity,
    send: &mut SendStream,
    recv: RecvStream,
    header: Manifest,
    dec: FrameDecoder,
) {
    let study = header.study_uid.clone();
    let listed = header.instances;
    let (missing, last) = match answer(ctx, peer, recv, header, dec).await {
        Ok(ManifestStatus::Complete { instances }) => {
            info!(study_uid = %study, instances, "study complete");
            ctx.ingest.hub.study_progress(&study);
            (Vec::new(), ManifestReply::Complete { instances })
        }
        Ok(ManifestStatus::Pending { missing }) => {
            let n = missing.len() as u32;
            (missing, ManifestReply::Pending { missing: n })
        }
        Ok(ManifestStatus::NoManifest) => (
            Vec::new(),
            ManifestReply::Refused(refusal(
                RefuseCode::Internal,
                "the relay could not record the manifest; try again",
            )),
        ),
        Err(r) => (Vec::new(), ManifestReply::Refused(r)),
    };
    let (outcome, detail) = match &last {
        ManifestReply::Complete { .. } => ("complete".to_string(), None),
        ManifestReply::Pending { missing } => {
            ("pending".to_string(), Some(format!("{missing} missing")))
        }
        ManifestReply::Refused(r) => (r.code.to_string(), Some(r.reason.clone())),
        ManifestReply::Missing { .. } => ("pending".to_string(), None),
    };
    crate::audit::record(
        ctx,
        peer,
        AuditAction::Manifest,
        Some(study),
        None,
        &outcome,
        Some(format!(
            "{listed} instances listed{}",
            detail.map(|d| format!("; {d}")).unwrap_or_default()
        )),
    )
    .await;
    for frame in encode_manifest_reply(&missing, &last) {
        if send.write_chunk(frame).await.is_err() {
            // The sender left; it asks again next run.
            return;
        }
    }
}

/// Read the manifest's parts, check who may declare it, record it.
async fn answer(
    ctx: &Arc<Ctx>,
    peer: &PeerIdentity,
    mut recv: RecvStream,
    header: Manifest,
    mut dec: FrameDecoder,
) -> Result<ManifestStatus, Refusal> {
    if !matches!(peer.role, Role::Device | Role::Relay) {
        return Err(refusal(
            RefuseCode::Unauthorized,
            "only devices and relays send study manifests",
        ));
    }
    let malformed = |e: &dyn std::fmt::Display| refusal(RefuseCode::Malformed, e.to_string());
    let mut asm = ManifestAssembler::new(header, ctx.config.limits.max_manifest_instances)
        .map_err(|e| malformed(&e))?;
    let read_all = async {
        let mut buf = BytesMut::with_capacity(64 * 1024);
        while !asm.is_complete() {
            if let Some(part) = dec
                .next_frame::<ManifestPart>("manifest part")
                .map_err(|e| malformed(&e))?
            {
                asm.push(part).map_err(|e| malformed(&e))?;
                continue;
            }
            buf.reserve(64 * 1024);
            match recv.read_buf(&mut buf).await {
                Ok(0) | Err(_) => {
                    return Err(malformed(
                        &"the manifest ended before all its parts arrived",
                    ))
                }
                Ok(_) => dec.push(buf.split().freeze()),
            }
        }
        Ok(())
    };
    match tokio::time::timeout(PARTS_TIMEOUT, read_all).await {
        Ok(r) => r?,
        Err(_) => return Err(malformed(&"the manifest's parts did not arrive in time")),
    }
    let (study, uids) = asm.into_parts();
    let store = ctx.ingest.store.clone();
    let site = peer.site.clone();
    tokio::task::spawn_blocking(move || store.record_manifest(&site, &study, &uids))
        .await
        .map_err(|e| refusal(RefuseCode::Internal, e.to_string()))?
        .map_err(|e| ctx.ingest.store_refusal(&e))
}
