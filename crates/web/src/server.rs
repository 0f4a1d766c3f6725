//! The HTTPS listener: TLS (rustls), HTTP/1.1 and HTTP/2 (hyper), routes (axum).
//!
//! Each TCP connection is TLS-accepted here; the client certificate it presented (if any) is
//! read once and attached to every request of the connection ([`ConnCert`]), then hyper serves
//! the connection with the [`router`]. Handlers authenticate each request (`auth.rs`) and run
//! catalog queries on the blocking pool.

use crate::qido_http::search;
use crate::rendered_http::{rendered, Kind};
use crate::stow_http::stow;
use crate::wado_http::{bulk, frames, metadata, retrieve, wado_uri};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query as QueryParams, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, MethodRouter};
use axum::{Extension, Router};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};
use yilian_ingest::Ingest;
use yilian_store::QueryLevel;
use yilian_transport::read_ahead::ReadAhead;
use yilian_transport::{certificate_serial, identity_from_cert};

use crate::auth::ConnCert;
use crate::qido::Scope;
use crate::token::Tokens;
use crate::WebError;

/// A TLS handshake that takes longer than this is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// What every request handler shares.
pub struct WebState {
    /// A web viewer's static files, served at `/` (its `index.html` for any other path).
    pub viewer_dir: Option<std::path::PathBuf>,
    /// Origins of viewers served elsewhere that may call DICOMweb (`*`: any).
    pub cors_origins: Vec<String>,
    /// The one ingest path: store (catalog, outboxes), topology in force, audit.
    pub ingest: Arc<Ingest>,
    pub tokens: Tokens,
}

/// The TLS configuration new HTTPS connections get; a reload replaces it (new CRLs), and
/// from then on every handshake uses the new one.
pub struct TlsSwitch(std::sync::RwLock<Arc<rustls::ServerConfig>>);

impl TlsSwitch {
    pub fn new(config: rustls::ServerConfig) -> TlsSwitch {
        TlsSwitch(std::sync::RwLock::new(Arc::new(config)))
    }

    /// Use `config` for the handshakes from now on.
    pub fn replace(&self, config: rustls::ServerConfig) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
    }

    /// The configuration in force.
    pub fn current(&self) -> Arc<rustls::ServerConfig> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A bound HTTPS listener, ready to [`WebServer::run`].
pub struct WebServer {
    listener: TcpListener,
    tls: Arc<TlsSwitch>,
    router: Router,
}

impl WebServer {
    /// Bind `addr` with the TLS configuration `tls` (see
    /// `yilian_transport::https_server_config`).
    pub async fn bind(
        addr: SocketAddr,
        tls: Arc<TlsSwitch>,
        state: Arc<WebState>,
    ) -> Result<WebServer, WebError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| WebError::Bind { addr, source })?;
        Ok(Self::new(listener, tls, state))
    }

    /// Serve on a listener bound earlier (outside the runtime); call within the runtime.
    pub fn from_std(
        listener: std::net::TcpListener,
        tls: Arc<TlsSwitch>,
        state: Arc<WebState>,
    ) -> std::io::Result<WebServer> {
        listener.set_nonblocking(true)?;
        Ok(Self::new(TcpListener::from_std(listener)?, tls, state))
    }

    fn new(listener: TcpListener, tls: Arc<TlsSwitch>, state: Arc<WebState>) -> Self {
        WebServer {
            listener,
            tls,
            router: router(state),
        }
    }

    /// The address bound (the port, when 0 was asked for).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serve connections until the task is dropped.
    pub async fn run(self) {
        loop {
            let (tcp, remote) = match self.listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors, usually: wait instead of spinning.
                    warn!("HTTPS accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if let Err(e) = tcp.set_nodelay(true) {
                debug!(%remote, "TCP_NODELAY not set: {e}");
            }
            // The configuration in force now (a reload may have replaced its CRLs).
            let acceptor = TlsAcceptor::from(self.tls.current());
            let router = self.router.clone();
            let port = self.listener.local_addr().map_or(0, |a| a.port());
            tokio::spawn(async move {
                // Whole socket reads under TLS: rustls alone reads 4 KiB per `recv`.
                let tls = match tokio::time::timeout(
                    HANDSHAKE_TIMEOUT,
                    acceptor.accept(ReadAhead::new(tcp)),
                )
                .await
                {
                    Ok(Ok(t)) => t,
                    Ok(Err(e)) => {
                        debug!(%remote, "HTTPS handshake failed: {e}");
                        return;
                    }
                    Err(_) => {
                        debug!(%remote, "HTTPS handshake timed out");
                        return;
                    }
                };
                let cert = conn_cert(tls.get_ref().1.peer_certificates());
                let service =
                    TowerToHyperService::new(router.layer(Extension(Arc::new(cert))).layer(
                        tower::util::MapRequestLayer::new(
                            move |r: axum::http::Request<axum::body::Body>| host_with_port(r, port),
                        ),
                    ));
                let mut builder = auto::Builder::new(TokioExecutor::new());
                builder
                    .http2()
                    .initial_stream_window_size(H2_STREAM_WINDOW)
                    .initial_connection_window_size(H2_CONNECTION_WINDOW);
                if let Err(e) = builder.serve_connection(TokioIo::new(tls), service).await {
                    debug!(%remote, "HTTPS connection ended: {e}");
                }
            });
        }
    }
}

/// HTTP/2 flow control: how much of one request's body a client may send ahead of what its
/// handler has read. With hyper's default (1 MiB per stream and per connection) a STOW-RS
/// over HTTP/2 waited on window updates: four requests of 75 CT slices each ran at 620
/// files/s against 930 over HTTP/1.1 (curl, loopback); with 8 MiB per stream, 780. At most
/// [`H2_CONNECTION_WINDOW`] bytes per connection sit unread in memory.
const H2_STREAM_WINDOW: u32 = 8 << 20;
/// See [`H2_STREAM_WINDOW`].
const H2_CONNECTION_WINDOW: u32 = 32 << 20;

/// The request with a `Host` header that names the port it came to. The absolute URLs of
/// answers (Retrieve URL, BulkDataURI) are built from it, and clients differ: HTTP/2 gives
/// the host as `:authority` (no `Host` header), and some clients (dicomweb-client) leave a
/// non-default port out of `Host`, which would send the viewer to port 443.
fn host_with_port<B>(mut req: axum::http::Request<B>, port: u16) -> axum::http::Request<B> {
    use axum::http::{header, HeaderValue};
    let host = match req.headers().get(header::HOST) {
        Some(h) => h.to_str().ok().map(str::to_string),
        None => req.uri().authority().map(|a| a.as_str().to_string()),
    };
    let Some(host) = host.filter(|h| !h.is_empty()) else {
        return req;
    };
    // A port is there if the host ends in ":digits" after any IPv6 literal's "]".
    let after = host.rsplit(']').next().unwrap_or(&host);
    let has_port = after
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let host = if has_port || port == 443 || port == 0 {
        host
    } else {
        format!("{host}:{port}")
    };
    if let Ok(v) = HeaderValue::from_str(&host) {
        req.headers_mut().insert(header::HOST, v);
    }
    req
}

fn conn_cert(certs: Option<&[rustls_pki_types::CertificateDer<'static>]>) -> ConnCert {
    let Some(leaf) = certs.and_then(|c| c.first()) else {
        return ConnCert::None;
    };
    match (identity_from_cert(leaf), certificate_serial(leaf)) {
        (Ok(identity), Ok(serial)) => ConnCert::Peer { identity, serial },
        (Err(e), _) => ConnCert::Unreadable(e.to_string()),
        (_, Err(e)) => ConnCert::Unreadable(e.to_string()),
    }
}

/// The routes: DICOMweb under `/dicomweb`.
pub fn router(state: Arc<WebState>) -> Router {
    use Kind::{Rendered, Thumbnail};
    use QueryLevel::{Image, Series, Study};
    let study = "/dicomweb/studies/{study}";
    let series = "/dicomweb/studies/{study}/series/{series}";
    let instance = "/dicomweb/studies/{study}/series/{series}/instances/{instance}";
    let routes = [
        // QIDO-RS (and STOW-RS on the studies resource).
        (
            "/dicomweb/studies".to_string(),
            qido_at(Study).post(stow_handler),
        ),
        ("/dicomweb/series".into(), qido_at(Series)),
        ("/dicomweb/instances".into(), qido_at(Image)),
        (format!("{study}/series"), qido_at(Series)),
        (format!("{study}/instances"), qido_at(Image)),
        (format!("{series}/instances"), qido_at(Image)),
        // WADO-RS (and STOW-RS into a named study).
        (study.into(), wado_at(Study).post(stow_handler)),
        (series.into(), wado_at(Series)),
        (instance.into(), wado_at(Image)),
        (format!("{study}/metadata"), metadata_at(Study)),
        (format!("{series}/metadata"), metadata_at(Series)),
        (format!("{instance}/metadata"), metadata_at(Image)),
        (format!("{instance}/frames/{{frames}}"), get(frames_handler)),
        (format!("{instance}/bulk/{{tag}}"), get(bulk_handler)),
        // Rendered images and thumbnails. A study or series renders as one image, its middle
        // instance (as Orthanc answers, and dicomweb-client reads the answer).
        (format!("{study}/rendered"), rendered_at(Study, Rendered)),
        (format!("{series}/rendered"), rendered_at(Series, Rendered)),
        (format!("{instance}/rendered"), rendered_at(Image, Rendered)),
        (
            format!("{instance}/frames/{{frames}}/rendered"),
            rendered_at(Image, Rendered),
        ),
        (format!("{study}/thumbnail"), rendered_at(Study, Thumbnail)),
        (
            format!("{series}/thumbnail"),
            rendered_at(Series, Thumbnail),
        ),
        (
            format!("{instance}/thumbnail"),
            rendered_at(Image, Thumbnail),
        ),
        (
            format!("{instance}/frames/{{frames}}/thumbnail"),
            rendered_at(Image, Thumbnail),
        ),
        // WADO-URI.
        ("/dicomweb/wado".into(), get(wado_uri_handler)),
        ("/dicomweb".into(), get(wado_uri_handler)),
    ];
    let viewer = state.viewer_dir.clone();
    let cors = cors(&state.cors_origins);
    let mut router = routes
        .into_iter()
        .fold(Router::new(), |r, (path, method)| r.route(&path, method))
        .with_state(state);
    if let Some(dir) = viewer {
        // The viewer's own files need no credentials (they hold no patient data); a path the
        // viewer routes itself gets its index.html.
        let index = tower_http::services::ServeFile::new(dir.join("index.html"));
        router = router.fallback_service(tower_http::services::ServeDir::new(dir).fallback(index));
    }
    if let Some(cors) = cors {
        router = router.layer(cors);
    }
    // A bug in a handler answers 500 (and is logged) instead of dropping the connection.
    router.layer(tower_http::catch_panic::CatchPanicLayer::new())
}

/// CORS for viewers served from other origins: DICOMweb's methods and headers, the answers'
/// `Warning`, `ETag` and `Content-Range` readable; `None` when no origin is configured.
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{header, HeaderValue, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([
                header::AUTHORIZATION,
                header::ACCEPT,
                header::CONTENT_TYPE,
                header::RANGE,
                header::IF_NONE_MATCH,
            ])
            .expose_headers([
                header::WARNING,
                header::ETAG,
                header::CONTENT_RANGE,
                header::CONTENT_TYPE,
            ]),
    )
}

/// WADO-RS frames of one instance.
async fn frames_handler(
    State(s): State<Arc<WebState>>,
    Extension(c): Extension<Arc<ConnCert>>,
    Path(path): Path<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    frames(&s, &c, &headers, &path).await
}

/// WADO-RS bulk data of one instance (a metadata `BulkDataURI`).
async fn bulk_handler(
    State(s): State<Arc<WebState>>,
    Extension(c): Extension<Arc<ConnCert>>,
    Path(path): Path<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    bulk(&s, &c, &headers, &path).await
}

/// WADO-URI: `?requestType=WADO&…` on the DICOMweb root (or `/dicomweb/wado`).
async fn wado_uri_handler(
    State(s): State<Arc<WebState>>,
    Extension(c): Extension<Arc<ConnCert>>,
    headers: HeaderMap,
    QueryParams(p): QueryParams<Vec<(String, String)>>,
) -> Response {
    wado_uri(&s, &c, &headers, &p).await
}

/// STOW-RS: store the body's instances (into the route's study, if it names one).
async fn stow_handler(
    State(s): State<Arc<WebState>>,
    Extension(c): Extension<Arc<ConnCert>>,
    path: Option<Path<HashMap<String, String>>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let study = path.and_then(|Path(m)| m.get("study").cloned());
    stow(&s, &c, &headers, study, body).await
}

/// WADO-RS metadata of the study, series or instance the route names.
fn metadata_at(level: QueryLevel) -> MethodRouter<Arc<WebState>> {
    get(
        move |State(s): State<Arc<WebState>>,
              Extension(c): Extension<Arc<ConnCert>>,
              Path(path): Path<HashMap<String, String>>,
              headers: HeaderMap| async move { metadata(&s, &c, &headers, level, &path).await },
    )
}

/// A rendered image or thumbnail of what the route names.
fn rendered_at(level: QueryLevel, kind: Kind) -> MethodRouter<Arc<WebState>> {
    get(
        move |State(s): State<Arc<WebState>>,
              Extension(c): Extension<Arc<ConnCert>>,
              Path(path): Path<HashMap<String, String>>,
              headers: HeaderMap,
              QueryParams(p): QueryParams<Vec<(String, String)>>| async move {
            rendered(&s, &c, &headers, level, &path, &p, kind).await
        },
    )
}

/// A WADO-RS retrieve of the study, series or instance the route names.
fn wado_at(level: QueryLevel) -> MethodRouter<Arc<WebState>> {
    get(
        move |State(s): State<Arc<WebState>>,
              Extension(c): Extension<Arc<ConnCert>>,
              Path(path): Path<HashMap<String, String>>,
              headers: HeaderMap| async move { retrieve(&s, &c, &headers, level, &path).await },
    )
}

/// A QIDO-RS search at `level`, scoped by the route's `{study}` and `{series}` if it has them.
fn qido_at(level: QueryLevel) -> MethodRouter<Arc<WebState>> {
    get(
        move |State(s): State<Arc<WebState>>,
              Extension(c): Extension<Arc<ConnCert>>,
              path: Option<Path<HashMap<String, String>>>,
              headers: HeaderMap,
              QueryParams(p): QueryParams<Vec<(String, String)>>| async move {
            let path = path.map(|Path(m)| m).unwrap_or_default();
            let scope = Scope {
                study: path.get("study").cloned(),
                series: path.get("series").cloned(),
            };
            search(&s, &c, &headers, &p, level, scope).await
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_of(uri: &str, host: Option<&str>, port: u16) -> Option<String> {
        let mut b = axum::http::Request::builder().uri(uri);
        if let Some(h) = host {
            b = b.header("host", h);
        }
        let r = host_with_port(b.body(()).unwrap(), port);
        r.headers()
            .get("host")
            .map(|h| h.to_str().unwrap().to_string())
    }

    #[test]
    fn every_request_names_its_host_with_its_port() {
        // A Host without the port (dicomweb-client): the port the request came to.
        assert_eq!(
            host_of("/x", Some("relay"), 8443).as_deref(),
            Some("relay:8443")
        );
        assert_eq!(
            host_of("/x", Some("relay:9000"), 8443).as_deref(),
            Some("relay:9000")
        );
        assert_eq!(host_of("/x", Some("relay"), 443).as_deref(), Some("relay"));
        assert_eq!(
            host_of("/x", Some("[::1]"), 8443).as_deref(),
            Some("[::1]:8443")
        );
        assert_eq!(
            host_of("/x", Some("[::1]:8443"), 8443).as_deref(),
            Some("[::1]:8443")
        );
        // HTTP/2: the authority.
        assert_eq!(
            host_of("https://relay:8443/x", None, 8443).as_deref(),
            Some("relay:8443")
        );
        assert_eq!(host_of("/x", None, 8443), None);
    }
}
