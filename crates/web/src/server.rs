//! The HTTPS listener: TLS (rustls), HTTP/1.1 and HTTP/2 (hyper), routes (axum).
//!
//! Each TCP connection is TLS-accepted here; the client certificate it presented (if any) is
//! read once and attached to every request of the connection ([`ConnCert`]), then hyper serves
//! the connection with the [`router`]. Handlers authenticate each request (`auth.rs`) and run
//! catalog queries on the blocking pool.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{Path, Query as QueryParams, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::{Extension, Router};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};
use yilian_ingest::{Door, Ingest, Principal};
use yilian_store::{AuditAction, AuditEvent, QueryLevel, StoreError};
use yilian_transport::{certificate_serial, identity_from_cert};

use crate::auth::{authenticate, AuthError, Caller, ConnCert, Via};
use crate::qido::{self, Scope};
use crate::token::Tokens;
use crate::{dicom_json, stow, wado, WebError};

/// A TLS handshake that takes longer than this is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// Most `Warning` headers in one answer.
const MAX_WARNINGS: usize = 20;

/// The media type of QIDO-RS answers.
const DICOM_JSON: &str = "application/dicom+json";

/// What every request handler shares.
pub struct WebState {
    /// The one ingest path: store (catalog, outboxes), topology in force, audit.
    pub ingest: Arc<Ingest>,
    pub tokens: Tokens,
}

/// A bound HTTPS listener, ready to [`WebServer::run`].
pub struct WebServer {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: Router,
}

impl WebServer {
    /// Bind `addr` with the TLS configuration `tls` (see
    /// `yilian_transport::https_server_config`).
    pub async fn bind(
        addr: SocketAddr,
        tls: Arc<rustls::ServerConfig>,
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
        tls: Arc<rustls::ServerConfig>,
        state: Arc<WebState>,
    ) -> std::io::Result<WebServer> {
        listener.set_nonblocking(true)?;
        Ok(Self::new(TcpListener::from_std(listener)?, tls, state))
    }

    fn new(listener: TcpListener, tls: Arc<rustls::ServerConfig>, state: Arc<WebState>) -> Self {
        WebServer {
            listener,
            acceptor: TlsAcceptor::from(tls),
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
            let acceptor = self.acceptor.clone();
            let router = self.router.clone();
            tokio::spawn(async move {
                let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
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
                let service = TowerToHyperService::new(router.layer(Extension(Arc::new(cert))));
                if let Err(e) = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await
                {
                    debug!(%remote, "HTTPS connection ended: {e}");
                }
            });
        }
    }
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
    Router::new()
        .route(
            "/dicomweb/studies",
            qido_at(QueryLevel::Study).post(stow_handler),
        )
        .route("/dicomweb/series", qido_at(QueryLevel::Series))
        .route("/dicomweb/instances", qido_at(QueryLevel::Image))
        .route(
            "/dicomweb/studies/{study}/series",
            qido_at(QueryLevel::Series),
        )
        .route(
            "/dicomweb/studies/{study}/instances",
            qido_at(QueryLevel::Image),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}/instances",
            qido_at(QueryLevel::Image),
        )
        .route(
            "/dicomweb/studies/{study}",
            wado_at(QueryLevel::Study).post(stow_handler),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}",
            wado_at(QueryLevel::Series),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}/instances/{instance}",
            wado_at(QueryLevel::Image),
        )
        .with_state(state)
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

async fn retrieve(
    state: &Arc<WebState>,
    cert: &ConnCert,
    headers: &HeaderMap,
    level: QueryLevel,
    path: &HashMap<String, String>,
) -> Response {
    let caller = match reader(state, cert, headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    if let wado::Wanted::NotServed(why) = wado::wanted(accept) {
        return error(StatusCode::NOT_ACCEPTABLE, why);
    }
    let study = path.get("study").cloned().unwrap_or_default();
    let series = path.get("series").cloned();
    let instance = path.get("instance").cloned();
    for uid in [Some(&study), series.as_ref(), instance.as_ref()]
        .into_iter()
        .flatten()
    {
        if !yilian_proto::valid_uid(uid) {
            return error(
                StatusCode::BAD_REQUEST,
                format!("{uid:?} in the path is not a valid UID"),
            );
        }
    }
    let key = match level {
        QueryLevel::Image => instance.clone().unwrap_or_default(),
        QueryLevel::Series => series.clone().unwrap_or_default(),
        QueryLevel::Patient | QueryLevel::Study => study.clone(),
    };
    let store = state.ingest.store.clone();
    let reader = caller.identity.name.clone();
    let (want_study, want_series) = (study.clone(), series.clone());
    let found = tokio::task::spawn_blocking(move || {
        store.instances_for(&reader, level, &[key]).map(|recs| {
            recs.into_iter()
                // The path's UIDs must agree: a series of another study is not this one.
                .filter(|r| {
                    r.study_uid == want_study
                        && want_series.as_ref().is_none_or(|s| *s == r.series_uid)
                })
                .map(|r| store.object_path(&r.hash))
                .collect::<Vec<_>>()
        })
    })
    .await;
    let failed = |e: &dyn std::fmt::Display| {
        warn!("WADO-RS lookup failed: {e}");
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the relay could not look up its index; its log says why",
        )
    };
    let files = match found {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => return failed(&e),
        Err(e) => return failed(&e),
    };
    let what = match level {
        QueryLevel::Patient | QueryLevel::Study => "study",
        QueryLevel::Series => "series",
        QueryLevel::Image => "instance",
    };
    state
        .ingest
        .audit(AuditEvent {
            actor: caller.actor(),
            site: Some(caller.identity.site.clone()),
            action: AuditAction::Retrieve,
            study_uid: Some(study.clone()),
            sop_uid: instance.clone(),
            outcome: if files.is_empty() { "not-found" } else { "ok" }.into(),
            detail: Some(format!("WADO-RS {what}: {} instance(s)", files.len())),
        })
        .await;
    if files.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            format!(
                "no such {what} among the studies routed to {}",
                caller.identity.name
            ),
        );
    }
    let boundary = wado::boundary();
    let parts = wado::Parts::new(files, boundary.clone());
    let stream = futures_util::stream::unfold(parts, |mut p| async move {
        p.next().await.map(|piece| {
            if let Err(e) = &piece {
                warn!("WADO-RS response cut short: {e}");
            }
            (piece, p)
        })
    });
    let mut r = Response::new(axum::body::Body::from_stream(stream));
    let content_type =
        format!("multipart/related; type=\"application/dicom\"; boundary={boundary}");
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

async fn stow(
    state: &Arc<WebState>,
    cert: &ConnCert,
    headers: &HeaderMap,
    study: Option<String>,
    body: axum::body::Body,
) -> Response {
    let caller = match caller(state, cert, headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if caller.identity.role != yilian_route::Role::Device {
        return error(
            StatusCode::FORBIDDEN,
            format!(
                "{} is a {} identity: only a device (a township console or gateway) stores instances",
                caller.identity.name, caller.identity.role
            ),
        );
    }
    if let Some(uid) = study.as_ref().filter(|u| !yilian_proto::valid_uid(u)) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("{uid:?} in the path is not a valid UID"),
        );
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = match stow::boundary(content_type) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, e.to_string()),
    };
    let principal = Arc::new(Principal {
        name: caller.identity.name.clone(),
        site: caller.identity.site.clone(),
        role: caller.identity.role,
        department: caller.identity.department.clone(),
        door: Door::Https {
            token: match &caller.via {
                Via::Token { id } => Some(id.clone()),
                Via::Certificate => None,
            },
        },
    });
    let stream = futures_util::TryStreamExt::map_err(body.into_data_stream(), |e| {
        std::io::Error::other(e.to_string())
    });
    let outcomes =
        match stow::store_parts(&state.ingest, principal, boundary, stream, study.clone()).await {
            Ok(o) => o,
            Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
        };
    let stored = outcomes
        .iter()
        .filter(|o| matches!(o, stow::PartOutcome::Stored { .. }))
        .count();
    info!(
        peer = %caller.identity.name,
        stored,
        failed = outcomes.len() - stored,
        "STOW-RS request done"
    );
    let status = if stored == outcomes.len() {
        StatusCode::OK
    } else if stored == 0 {
        StatusCode::CONFLICT
    } else {
        StatusCode::ACCEPTED
    };
    let url = |path: &[(&str, &str)]| retrieve_url(headers, path).unwrap_or_default();
    let mut referenced = Vec::new();
    let mut failed = Vec::new();
    let mut warnings = Vec::new();
    for o in &outcomes {
        match o {
            stow::PartOutcome::Stored {
                sop_class,
                sop_instance,
                study,
            } => referenced.push(serde_json::json!({
                "00081150": dicom_json::attribute(*b"UI", sop_class),
                "00081155": dicom_json::attribute(*b"UI", sop_instance),
                "00081190": dicom_json::attribute(*b"UR", &url(&[("studies", study)])),
            })),
            stow::PartOutcome::Failed {
                sop_class,
                sop_instance,
                status,
                reason,
            } => {
                failed.push(serde_json::json!({
                    "00081150": dicom_json::attribute(*b"UI", sop_class.as_deref().unwrap_or("")),
                    "00081155": dicom_json::attribute(*b"UI", sop_instance.as_deref().unwrap_or("")),
                    "00081197": dicom_json::attribute(*b"US", &status.to_string()),
                }));
                warnings.push(warning(&format!(
                    "{}: {reason}",
                    sop_instance.as_deref().unwrap_or("a part")
                )));
            }
        }
    }
    let mut answer = serde_json::Map::new();
    if let Some(study) = &study {
        answer.insert(
            "00081190".into(),
            dicom_json::attribute(*b"UR", &url(&[("studies", study)])),
        );
    }
    if !failed.is_empty() {
        answer.insert(
            "00081198".into(),
            serde_json::json!({"vr": "SQ", "Value": failed}),
        );
    }
    if !referenced.is_empty() {
        answer.insert(
            "00081199".into(),
            serde_json::json!({"vr": "SQ", "Value": referenced}),
        );
    }
    // One Warning per failure, up to a bound (clients cap the headers they read).
    if warnings.len() > MAX_WARNINGS {
        let more = warnings.len() - (MAX_WARNINGS - 1);
        warnings.truncate(MAX_WARNINGS - 1);
        warnings.push(warning(&format!(
            "{more} more part(s) failed; the Failed SOP Sequence lists every one"
        )));
    }
    let mut r = (status, serde_json::Value::Object(answer).to_string()).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(DICOM_JSON));
    for w in warnings {
        if let Ok(v) = HeaderValue::from_str(&w) {
            h.append(header::WARNING, v);
        }
    }
    r
}

/// A `Warning` header value (code 299) for `text`: header values are visible ASCII, so
/// anything else (a line break, a non-ASCII character in a reason) becomes a space or `?`.
fn warning(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| match c {
            ' '..='~' => c,
            '\r' | '\n' | '\t' => ' ',
            _ => '?',
        })
        .collect();
    format!("299 yilian: {clean}")
}

/// A plain-text error answer.
fn error(status: StatusCode, text: impl Into<String>) -> Response {
    let mut r = (status, text.into()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// 401 with the reason and the scheme to use.
fn unauthorized(text: String) -> Response {
    let mut r = error(StatusCode::UNAUTHORIZED, text);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"yilian\""),
    );
    r
}

/// The caller of a request, or the answer refusing it. A refused credential (not a missing
/// one: a browser's first request has none) is logged and audited.
async fn caller(
    state: &WebState,
    cert: &ConnCert,
    headers: &HeaderMap,
) -> Result<Caller, Response> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"));
    match authenticate(
        &state.ingest.topology(),
        &state.tokens,
        cert,
        authorization,
        SystemTime::now(),
    ) {
        Ok(c) => Ok(c),
        Err(AuthError::NoCredentials) => Err(unauthorized(AuthError::NoCredentials.to_string())),
        Err(e) => {
            info!("HTTPS request refused: {e}");
            let actor = match cert {
                ConnCert::Peer { identity, .. } => format!("{} (HTTPS)", identity.name),
                _ => "unauthenticated (HTTPS)".to_string(),
            };
            state
                .ingest
                .audit(AuditEvent {
                    actor,
                    site: None,
                    action: AuditAction::Connect,
                    study_uid: None,
                    sop_uid: None,
                    outcome: "refused".into(),
                    detail: Some(e.to_string()),
                })
                .await;
            Err(unauthorized(e.to_string()))
        }
    }
}

/// The caller, if it is a reader (it searches and retrieves what is routed to it).
async fn reader(
    state: &WebState,
    cert: &ConnCert,
    headers: &HeaderMap,
) -> Result<Caller, Response> {
    let caller = caller(state, cert, headers).await?;
    if !caller.is_reader() {
        return Err(error(
            StatusCode::FORBIDDEN,
            format!(
                "{} is a {} identity: only readers search and retrieve studies",
                caller.identity.name, caller.identity.role
            ),
        ));
    }
    Ok(caller)
}

/// Whether the client accepts DICOM JSON (or any JSON, or anything).
fn accepts_json(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    accept.split(',').any(|a| {
        let media = a.split(';').next().unwrap_or("").trim();
        matches!(
            media,
            "application/dicom+json" | "application/json" | "*/*" | "application/*" | ""
        )
    })
}

/// The absolute URL a match can be retrieved from (Retrieve URL, 0008,1190).
fn retrieve_url(headers: &HeaderMap, values: &[(&str, &str)]) -> Option<String> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && !h.contains(['/', ' ']))?;
    let mut url = format!("https://{host}/dicomweb");
    for (segment, uid) in values {
        url.push_str(&format!("/{segment}/{uid}"));
    }
    Some(url)
}

async fn search(
    state: &Arc<WebState>,
    cert: &ConnCert,
    headers: &HeaderMap,
    params: &[(String, String)],
    level: QueryLevel,
    scope: Scope,
) -> Response {
    let caller = match reader(state, cert, headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if !accepts_json(headers) {
        return error(
            StatusCode::NOT_ACCEPTABLE,
            "QIDO-RS answers here are application/dicom+json only",
        );
    }
    let search = match qido::parse(level, &scope, params) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let keys: Vec<String> = search
        .query
        .keys()
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, _)| k.keyword().to_string())
        .collect();
    let store = state.ingest.store.clone();
    let reader = caller.identity.name.clone();
    let query = search.query.clone();
    let failed = |e: &dyn std::fmt::Display| {
        warn!("QIDO-RS search failed: {e}");
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the relay could not search its catalog; its log says why",
        )
    };
    let found =
        match tokio::task::spawn_blocking(move || store.find_limited(&reader, level, &query)).await
        {
            Ok(Ok(f)) => f,
            Ok(Err(StoreError::BadQuery(why))) => return error(StatusCode::BAD_REQUEST, why),
            Ok(Err(e)) => return failed(&e),
            Err(e) => return failed(&e),
        };
    let what = match level {
        QueryLevel::Patient | QueryLevel::Study => "studies",
        QueryLevel::Series => "series",
        QueryLevel::Image => "instances",
    };
    state
        .ingest
        .audit(AuditEvent {
            actor: caller.actor(),
            site: Some(caller.identity.site.clone()),
            action: AuditAction::Query,
            study_uid: scope.study.clone(),
            sop_uid: None,
            outcome: "ok".into(),
            detail: Some(format!(
                "QIDO-RS {what} on {}: {} match(es)",
                if keys.is_empty() {
                    "no keys".to_string()
                } else {
                    keys.join(", ")
                },
                found.matches.len()
            )),
        })
        .await;
    let body: Vec<serde_json::Value> = found
        .matches
        .iter()
        .map(|m| {
            let study = m.get(yilian_store::Key::StudyInstanceUid).unwrap_or("");
            let mut path = vec![("studies", study)];
            if let Some(series) = m.get(yilian_store::Key::SeriesInstanceUid) {
                path.push(("series", series));
            }
            if let Some(sop) = m.get(yilian_store::Key::SopInstanceUid) {
                path.push(("instances", sop));
            }
            let url = retrieve_url(headers, &path)
                .map(|u| ((0x0008, 0x1190), *b"UR", u))
                .into_iter();
            dicom_json::dataset(m.values(), url)
        })
        .collect();
    let mut warnings = search.warnings;
    if found.truncated {
        warnings.push(
            "299 yilian: The number of results exceeded the maximum supported by the server. Additional results can be requested."
                .into(),
        );
    }
    let mut r = (StatusCode::OK, serde_json::Value::Array(body).to_string()).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(DICOM_JSON));
    for w in warnings {
        if let Ok(v) = HeaderValue::from_str(&w) {
            h.append(header::WARNING, v);
        }
    }
    r
}
