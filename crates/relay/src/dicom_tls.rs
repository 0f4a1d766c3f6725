//! DICOM TLS's server configuration: the alliance CA and its CRLs, as for QUIC, without ALPN
//! (DICOM TLS has none). Built at start and again by every reload, so that a certificate
//! revoked since is refused from the next handshake on; a reload also ends the live DICOM TLS
//! associations the new lists revoke (CRLs, or the topology's deny list), as it closes QUIC
//! connections (`revocation.rs`).

use std::sync::Arc;
use tracing::warn;
use yilian_route::Topology;
use yilian_store::{AuditAction, AuditEvent};
use yilian_transport::{certificate_serial, Crls, TlsPem, TransportError};

use crate::ctx::Ctx;

pub(crate) fn server_config(
    tls: &TlsPem,
    crls: &Crls,
) -> Result<Arc<rustls::ServerConfig>, TransportError> {
    let mut config = yilian_transport::server_tls_config_with_crls(tls, crls)?;
    config.alpn_protocols.clear();
    Ok(Arc::new(config))
}

/// After a reload: end every live DICOM TLS association whose certificate `crls` or the deny
/// list of `topology` now revoke; log and audit each. Returns how many were ended.
pub(crate) async fn end_no_longer_admitted(
    ctx: &Arc<Ctx>,
    topology: &Topology,
    crls: &Crls,
) -> usize {
    let Some(live) = &ctx.dicom_tls else {
        return 0;
    };
    let ended = live.end_where(|identity, certificate| {
        let by_name_or_serial = certificate_serial(certificate)
            .ok()
            .and_then(|serial| topology.revoked(identity, &serial))
            .map(|r| r.reason.clone());
        by_name_or_serial.or_else(|| {
            crls.revokes(certificate)
                .map(|_| "listed in the alliance CA's revocation list".to_string())
        })
    });
    for e in &ended {
        let reason = crate::revocation::revoked_reason(&e.identity, &e.reason);
        warn!(peer = %e.peer, identity = %e.identity, "ended a live DICOM TLS association: {reason}");
        ctx.ingest
            .audit(AuditEvent {
                actor: format!("{} (DICOM TLS)", e.identity),
                site: topology.identity(&e.identity).map(|i| i.site.clone()),
                action: AuditAction::Connect,
                study_uid: None,
                sop_uid: None,
                outcome: "revoked".into(),
                detail: Some(reason),
            })
            .await;
    }
    ended.len()
}
