//! Where a parsed instance goes: checked against what the front door declared, routed by the
//! topology, with the readers of its destinations. Pure (the topology is passed in).

use yilian_dicom::Metadata;
use yilian_proto::{Refusal, RefuseCode};
use yilian_route::{Priority, RouteInput, Topology};
use yilian_store::NewInstance;

use crate::principal::Principal;
use crate::refusal::refusal;

/// A routed instance: its index row and its readers.
pub(crate) struct Routed {
    pub instance: NewInstance,
    pub readers: Vec<String>,
}

/// Check `meta` against the declared UIDs (`sop_uid`, and `study_uid` when declared) and route
/// it from `principal`'s site at (at least) `requested` priority.
pub(crate) fn route_instance(
    topology: &Topology,
    principal: &Principal,
    sop_uid: &str,
    study_uid: Option<&str>,
    requested: Priority,
    meta: &Metadata,
) -> Result<Routed, Refusal> {
    if meta.sop_instance_uid != sop_uid || study_uid.is_some_and(|s| s != meta.study_instance_uid) {
        return Err(refusal(
            RefuseCode::Mismatch,
            "the file's SOP Instance UID or Study Instance UID differs from what the sender announced",
        ));
    }
    let decision = topology
        .route(&RouteInput {
            source_site: &principal.site,
            modality: meta.modality.as_deref(),
            sop_class_uid: meta.sop_class_uid.as_deref(),
            body_part: meta.body_part.as_deref(),
            requested_priority: requested,
        })
        .map_err(|e| refusal(RefuseCode::Unroutable, e.to_string()))?;
    let mut readers: Vec<String> = Vec::new();
    for d in &decision.destinations {
        for r in topology.readers_for(d) {
            if !readers.contains(&r.name) {
                readers.push(r.name.clone());
            }
        }
    }
    Ok(Routed {
        instance: NewInstance {
            sop_uid: meta.sop_instance_uid.clone(),
            study_uid: meta.study_instance_uid.clone(),
            series_uid: meta.series_instance_uid.clone().unwrap_or_default(),
            sop_class_uid: meta.sop_class_uid.clone().unwrap_or_default(),
            modality: meta.modality.clone().unwrap_or_default(),
            source_site: principal.site.clone(),
            source_identity: principal.name.clone(),
            priority: decision.priority.as_u8(),
        },
        readers,
    })
}
