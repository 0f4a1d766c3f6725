//! The QIDO-RS handler: authenticate, translate (`qido.rs`), search the catalog as the reader,
//! answer DICOM JSON, audit.

use crate::answer::*;
use crate::server::WebState;
use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tracing::warn;
use yilian_store::{AuditAction, AuditEvent, Key, QueryLevel, StoreError};

use crate::auth::ConnCert;
use crate::dicom_json;
use crate::qido::{self, Scope};

pub(crate) async fn search(
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
            let study = m.get(Key::StudyInstanceUid).unwrap_or("");
            let mut path = vec![("studies", study)];
            if let Some(series) = m.get(Key::SeriesInstanceUid) {
                path.push(("series", series));
            }
            if let Some(sop) = m.get(Key::SopInstanceUid) {
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
