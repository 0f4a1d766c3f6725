//! What every DICOMweb handler answers with: who the caller is (authenticated, a reader),
//! plain-text errors, `Warning` headers, content negotiation for JSON, Retrieve URLs.

use crate::server::WebState;
use std::time::SystemTime;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tracing::info;
use yilian_store::{AuditAction, AuditEvent};

use crate::auth::{authenticate, AuthError, Caller, ConnCert};

/// Most `Warning` headers in one answer.
pub(crate) const MAX_WARNINGS: usize = 20;

/// The media type of QIDO-RS answers.
pub(crate) const DICOM_JSON: &str = "application/dicom+json";

/// A `Warning` header value (code 299) for `text`: header values are visible ASCII, so
/// anything else (a line break, a non-ASCII character in a reason) becomes a space or `?`.
pub(crate) fn warning(text: &str) -> String {
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
pub(crate) fn error(status: StatusCode, text: impl Into<String>) -> Response {
    let mut r = (status, text.into()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// 401 with the reason and the scheme to use.
pub(crate) fn unauthorized(text: String) -> Response {
    let mut r = error(StatusCode::UNAUTHORIZED, text);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"yilian\""),
    );
    r
}

/// The caller of a request, or the answer refusing it. A refused credential (not a missing
/// one: a browser's first request has none) is logged and audited.
pub(crate) async fn caller(
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
pub(crate) async fn reader(
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
pub(crate) fn accepts_json(headers: &HeaderMap) -> bool {
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
pub(crate) fn retrieve_url(headers: &HeaderMap, values: &[(&str, &str)]) -> Option<String> {
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
