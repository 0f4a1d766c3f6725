//! DICOM TLS's server configuration: the alliance CA and its CRLs, as for QUIC, without ALPN
//! (DICOM TLS has none). Built at start and again by every reload, so that a certificate
//! revoked since is refused from the next handshake on.

use std::sync::Arc;
use yilian_transport::{Crls, TlsPem, TransportError};

pub(crate) fn server_config(
    tls: &TlsPem,
    crls: &Crls,
) -> Result<Arc<rustls::ServerConfig>, TransportError> {
    let mut config = yilian_transport::server_tls_config_with_crls(tls, crls)?;
    config.alpn_protocols.clear();
    Ok(Arc::new(config))
}
