//! The STOW-RS handler: a device's credential becomes the upload's principal, the parts go
//! through the ingest path (`stow.rs`), the answer lists what was stored and what failed.

use crate::answer::*;
use crate::server::WebState;
use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tracing::info;
use yilian_ingest::{Door, Principal};

use crate::auth::{ConnCert, Via};
use crate::{dicom_json, stow};

pub(crate) async fn stow(
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
