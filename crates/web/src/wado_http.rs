//! The WADO-RS handlers: look up what a path names among the reader's instances (404 and audit
//! otherwise), then stream the stored bytes (`wado.rs`) or answer their metadata (`metadata.rs`).

use crate::answer::*;
use crate::server::WebState;
use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tracing::warn;
use yilian_store::{AuditAction, AuditEvent, Key, QueryLevel};

use crate::auth::{Caller, ConnCert};
use crate::rendered::Format;
use crate::{dicom_json, wado};

pub(crate) async fn metadata(
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
    if !accepts_json(headers) {
        return error(
            StatusCode::NOT_ACCEPTABLE,
            "metadata is served as application/dicom+json",
        );
    }
    let found = match lookup(state, &caller, level, path, "WADO-RS metadata").await {
        Ok(f) => f,
        Err(r) => return r,
    };
    // Each instance's URL: its Retrieve URL, and where its bulk data are.
    let urls: Vec<Option<String>> = found
        .iter()
        .map(|f| {
            retrieve_url(
                headers,
                &[
                    ("studies", f.study.as_str()),
                    ("series", f.series.as_str()),
                    ("instances", f.sop.as_str()),
                ],
            )
        })
        .collect();
    let files: Vec<(std::path::PathBuf, Option<String>)> = found
        .iter()
        .zip(&urls)
        .map(|(f, u)| (f.file.clone(), u.clone()))
        .collect();
    let read = tokio::task::spawn_blocking(move || {
        files
            .iter()
            .map(|(f, url)| crate::metadata::instance(f, url.as_deref()))
            .collect::<Vec<_>>()
    })
    .await;
    let read = match read {
        Ok(items) => items,
        Err(e) => {
            warn!("WADO-RS metadata failed: {e}");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the relay could not read the instances; its log says why",
            );
        }
    };
    // An instance dicom-rs cannot read in full still answers with what identifies it.
    let mut partial = 0;
    let items: Vec<serde_json::Value> = read
        .into_iter()
        .zip(&found)
        .map(|(item, f)| match item {
            Ok(item) => item,
            Err(e) => {
                partial += 1;
                warn!(sop_uid = %f.sop, "WADO-RS metadata: only the UIDs of an instance: {e}");
                dicom_json::dataset(
                    [
                        (Key::StudyInstanceUid, f.study.as_str()),
                        (Key::SeriesInstanceUid, f.series.as_str()),
                        (Key::SopInstanceUid, f.sop.as_str()),
                    ]
                    .into_iter(),
                    [],
                )
            }
        })
        .zip(urls)
        .map(|(mut item, url)| {
            if let (serde_json::Value::Object(map), Some(url)) = (&mut item, url) {
                map.insert("00081190".into(), dicom_json::attribute(*b"UR", &url));
            }
            item
        })
        .collect();
    let mut r = (StatusCode::OK, serde_json::Value::Array(items).to_string()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(DICOM_JSON));
    if partial > 0 {
        let w = warning(&format!(
            "{partial} instance(s) could not be read in full: their metadata holds only their UIDs"
        ));
        if let Ok(v) = HeaderValue::from_str(&w) {
            r.headers_mut().insert(header::WARNING, v);
        }
    }
    r
}

/// The stored instances a WADO-RS path names among what is routed to `caller`: each one's
/// file and (study, series, SOP) UIDs. A path that names nothing of the reader's is 404; every
/// lookup is audited (`service`: what the log and the audit call it).
pub(crate) async fn lookup(
    state: &Arc<WebState>,
    caller: &Caller,
    level: QueryLevel,
    path: &HashMap<String, String>,
    service: &str,
) -> Result<Vec<Found>, Response> {
    let study = path.get("study").cloned().unwrap_or_default();
    let series = path.get("series").cloned();
    let instance = path.get("instance").cloned();
    for uid in [Some(&study), series.as_ref(), instance.as_ref()]
        .into_iter()
        .flatten()
    {
        if !yilian_proto::valid_uid(uid) {
            return Err(error(
                StatusCode::BAD_REQUEST,
                format!("{uid:?} in the path is not a valid UID"),
            ));
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
                .map(|r| Found {
                    file: store.object_path(&r.hash),
                    study: r.study_uid,
                    series: r.series_uid,
                    sop: r.sop_uid,
                    hash: r.hash,
                    size: r.size,
                })
                .collect::<Vec<_>>()
        })
    })
    .await;
    let failed = |e: &dyn std::fmt::Display| {
        warn!("{service} lookup failed: {e}");
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the relay could not look up its index; its log says why",
        )
    };
    let found = match found {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => return Err(failed(&e)),
        Err(e) => return Err(failed(&e)),
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
            outcome: if found.is_empty() { "not-found" } else { "ok" }.into(),
            detail: Some(format!("{service} {what}: {} instance(s)", found.len())),
        })
        .await;
    if found.is_empty() {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!(
                "no such {what} among the studies routed to {}",
                caller.identity.name
            ),
        ));
    }
    Ok(found)
}

/// A stored instance a WADO-RS path names.
pub(crate) struct Found {
    pub(crate) file: std::path::PathBuf,
    pub(crate) study: String,
    pub(crate) series: String,
    pub(crate) sop: String,
    /// BLAKE3 of the stored file (its ETag).
    pub(crate) hash: [u8; 32],
    pub(crate) size: u64,
}

pub(crate) async fn retrieve(
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
    let wanted = wado::wanted(accept);
    if let wado::Wanted::NotServed(why) = wanted {
        return error(StatusCode::NOT_ACCEPTABLE, why);
    }
    let found = match lookup(state, &caller, level, path, "WADO-RS").await {
        Ok(found) => found,
        Err(r) => return r,
    };
    if let wado::Wanted::Syntaxes(accepted, why) = wanted {
        let files: Vec<std::path::PathBuf> = found.iter().map(|f| f.file.clone()).collect();
        if let Err(r) = stored_in(files, accepted, &why).await {
            return r;
        }
    }
    // One instance: a weak ETag, its BLAKE3 (the multipart framing differs per answer, the
    // instance does not), so a viewer that has it gets 304.
    let etag = match &found[..] {
        [one] if level == QueryLevel::Image => Some(format!("W/\"{}\"", hex::encode(one.hash))),
        _ => None,
    };
    if let Some(tag) = &etag {
        let has = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .any(|t| t.trim().trim_start_matches("W/") == tag.trim_start_matches("W/"))
            });
        if has {
            let mut r = StatusCode::NOT_MODIFIED.into_response();
            if let Ok(v) = HeaderValue::from_str(tag) {
                r.headers_mut().insert(header::ETAG, v);
            }
            return r;
        }
    }
    let files: Vec<std::path::PathBuf> = found.into_iter().map(|f| f.file).collect();
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
    if let Some(v) = etag.and_then(|t| HeaderValue::from_str(&t).ok()) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

/// Whether every file is stored in one of the `accepted` transfer syntaxes (read from their
/// file metas on the blocking pool); if not, the 406 to answer, `why` plus what is stored.
async fn stored_in(
    files: Vec<std::path::PathBuf>,
    accepted: Vec<String>,
    why: &str,
) -> Result<(), Response> {
    let checked = tokio::task::spawn_blocking(move || wado::all_stored_in(&files, &accepted))
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
    match checked {
        Ok(Ok(())) => Ok(()),
        Ok(Err(stored)) => Err(error(
            StatusCode::NOT_ACCEPTABLE,
            format!("{why}; an instance asked for is stored in transfer syntax {stored}"),
        )),
        Err(e) => {
            warn!("reading a stored instance's transfer syntax failed: {e}");
            Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the relay could not read a stored instance; its log says why",
            ))
        }
    }
}

/// What a WADO-URI request is answered with.
enum Served {
    /// The stored file (`application/dicom`).
    Stored,
    /// A rendered frame.
    Rendered(Format),
}

/// WADO-URI (PS3.18 §9): `?requestType=WADO&studyUID=…&seriesUID=…&objectUID=…`.
/// `contentType=application/dicom` answers the one stored file, with an `ETag` (its BLAKE3),
/// `If-None-Match` (304) and byte ranges (206; a viewer resuming a large instance);
/// `image/jpeg` (the default) or `image/png` a rendered frame (`rendered_http`).
pub(crate) async fn wado_uri(
    state: &Arc<WebState>,
    cert: &ConnCert,
    headers: &HeaderMap,
    params: &[(String, String)],
) -> Response {
    let caller = match reader(state, cert, headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let param = |name: &str| wado::param(params, name).map(|v| v.trim().to_string());
    if param("requestType").as_deref() != Some("WADO") {
        return error(
            StatusCode::BAD_REQUEST,
            "WADO-URI needs requestType=WADO, studyUID, seriesUID and objectUID",
        );
    }
    // The first media type of contentType this relay serves; none named: a JPEG (PS3.18
    // §9.1.2.1: image/jpeg is the default for an image).
    let wanted = match param("contentType") {
        None => Some(Served::Rendered(Format::Jpeg)),
        Some(list) => list.split(',').find_map(|t| match t.trim() {
            "application/dicom" => Some(Served::Stored),
            other => Format::from_media_type(other).map(Served::Rendered),
        }),
    };
    let Some(wanted) = wanted else {
        return error(
            StatusCode::NOT_ACCEPTABLE,
            "this relay answers WADO-URI with contentType=application/dicom (the stored file), image/jpeg or image/png",
        );
    };
    // A transfer syntax named: served if the instance is stored in it (nothing is transcoded).
    let syntax = match (&wanted, param("transferSyntax").filter(|t| t != "*")) {
        (Served::Stored, Some(ts)) => Some(ts),
        _ => None,
    };
    let mut path = HashMap::new();
    for (name, key) in [
        ("studyUID", "study"),
        ("seriesUID", "series"),
        ("objectUID", "instance"),
    ] {
        match param(name) {
            Some(v) => {
                path.insert(key.to_string(), v);
            }
            None => return error(StatusCode::BAD_REQUEST, format!("WADO-URI needs {name}")),
        }
    }
    let found = match lookup(state, &caller, QueryLevel::Image, &path, "WADO-URI").await {
        Ok(mut f) => f.remove(0),
        Err(r) => return r,
    };
    if let Served::Rendered(format) = wanted {
        return crate::rendered_http::wado_uri(headers, found, params, format).await;
    }
    if let Some(ts) = syntax {
        let why = format!(
            "instances are sent as stored, not transcoded to {ts}; leave transferSyntax out or use *"
        );
        if let Err(r) = stored_in(vec![found.file.clone()], vec![ts], &why).await {
            return r;
        }
    }
    let etag = format!("\"{}\"", hex::encode(found.hash));
    let mut head = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        head.insert(header::ETAG, v);
    }
    head.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if not_modified {
        return (StatusCode::NOT_MODIFIED, head).into_response();
    }
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, len) = match range.map(|r| wado::byte_range(r, found.size)) {
        None => (StatusCode::OK, 0, found.size),
        Some(Some((start, len))) => {
            let end = start + len - 1;
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{}", found.size)) {
                head.insert(header::CONTENT_RANGE, v);
            }
            (StatusCode::PARTIAL_CONTENT, start, len)
        }
        Some(None) => {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", found.size)) {
                head.insert(header::CONTENT_RANGE, v);
            }
            return (StatusCode::RANGE_NOT_SATISFIABLE, head).into_response();
        }
    };
    head.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/dicom"),
    );
    head.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    let body = axum::body::Body::from_stream(wado::file_range(found.file, start, len));
    (status, head, body).into_response()
}

/// WADO-RS frames: the chosen frames of one instance (all of them when the path names none:
/// the bulk data of its Pixel Data), each as stored (`frames.rs`).
pub(crate) async fn frames(
    state: &Arc<WebState>,
    cert: &ConnCert,
    headers: &HeaderMap,
    path: &HashMap<String, String>,
) -> Response {
    let caller = match reader(state, cert, headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let found = match lookup(state, &caller, QueryLevel::Image, path, "WADO-RS frames").await {
        Ok(mut f) => f.remove(0),
        Err(r) => return r,
    };
    let file = found.file.clone();
    let map = match tokio::task::spawn_blocking(move || crate::frames::map(&file)).await {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => {
            use crate::frames::FramesError as E;
            let status = match &e {
                E::NoPixelData | E::NoSuchFrame { .. } => StatusCode::NOT_FOUND,
                E::Deflated | E::Unsplittable(_) => StatusCode::NOT_ACCEPTABLE,
                E::Read(_) => {
                    warn!(sop_uid = %found.sop, "WADO-RS frames: {e}");
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            };
            return error(status, e.to_string());
        }
        Err(e) => {
            warn!("WADO-RS frames failed: {e}");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the relay could not read the instance; its log says why",
            );
        }
    };
    let count = u32::try_from(map.frames.len()).unwrap_or(u32::MAX);
    // No frame list: every frame (the bulk data of Pixel Data).
    let wanted = match path.get("frames") {
        None => (1..=count).collect(),
        Some(list) => match crate::frames::parse_list(list, count) {
            Ok(w) => w,
            Err(e) => return error(StatusCode::NOT_FOUND, e.to_string()),
        },
    };
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    if let Err(why) = wado::frames_wanted(accept, map.media_type, &map.transfer_syntax) {
        return error(StatusCode::NOT_ACCEPTABLE, why);
    }
    let boundary = wado::boundary();
    let part_type = format!(
        "{}; transfer-syntax={}",
        map.media_type, map.transfer_syntax
    );
    let ranges: Vec<Vec<(u64, u64)>> = wanted
        .iter()
        .map(|n| map.frames[*n as usize - 1].clone())
        .collect();
    let body = wado::frame_parts(found.file, ranges, boundary.clone(), part_type);
    let mut r = Response::new(axum::body::Body::from_stream(body));
    let content_type = format!(
        "multipart/related; type=\"{}\"; boundary={boundary}",
        map.media_type
    );
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

/// WADO-RS bulk data (PS3.18 §10.4.1.1.5): the value a metadata `BulkDataURI` names. Pixel
/// Data's bulk data are the instance's frames (`frames`); another binary value is read from
/// the header and answered as one `application/octet-stream` part (or bare, if the client
/// accepts only `application/octet-stream`).
pub(crate) async fn bulk(
    state: &Arc<WebState>,
    cert: &ConnCert,
    headers: &HeaderMap,
    path: &HashMap<String, String>,
) -> Response {
    let tag = match crate::metadata::bulk_tag(path.get("tag").map_or("", String::as_str)) {
        Ok(t) => t,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    if tag == dicom_dictionary_std::tags::PIXEL_DATA {
        return frames(state, cert, headers, path).await;
    }
    let caller = match reader(state, cert, headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let found = match lookup(state, &caller, QueryLevel::Image, path, "WADO-RS bulk data").await {
        Ok(mut f) => f.remove(0),
        Err(r) => return r,
    };
    let file = found.file.clone();
    let value = tokio::task::spawn_blocking(move || crate::metadata::bulk_value(&file, tag)).await;
    let bytes = match value {
        Ok(Ok(b)) => b,
        Ok(Err(e @ crate::metadata::BulkError::NoSuchValue(_))) => {
            return error(StatusCode::NOT_FOUND, e.to_string())
        }
        Ok(Err(e)) => {
            warn!(sop_uid = %found.sop, "WADO-RS bulk data: {e}");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the relay could not read the instance; its log says why",
            );
        }
        Err(e) => {
            warn!("WADO-RS bulk data failed: {e}");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the relay could not read the instance; its log says why",
            );
        }
    };
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let bare = accept.split(',').all(|r| {
        r.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/octet-stream"))
    });
    if bare {
        let mut r = (StatusCode::OK, bytes).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        return r;
    }
    let boundary = wado::boundary();
    let mut body =
        format!("--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n").into_bytes();
    body.extend_from_slice(&bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut r = (StatusCode::OK, body).into_response();
    let content_type =
        format!("multipart/related; type=\"application/octet-stream\"; boundary={boundary}");
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}
