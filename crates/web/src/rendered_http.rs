//! The rendered and thumbnail handlers (PS3.18 §8.3.5): look up what the path names among the
//! reader's instances (`wado_http::lookup`: 404 and audit otherwise), render one frame
//! (`rendered.rs`) off the async runtime, a few at a time, and answer it with an `ETag`.
//!
//! A study or series (`…/rendered`, `…/thumbnail`) answers one image: its middle instance in
//! instance-number order, or the next one that renders (a series may begin with a localizer or
//! hold a report). That is what Orthanc answers and what dicomweb-client's
//! `retrieve_series_rendered` reads: a single image, not a multipart of every instance.

use crate::answer::*;
use crate::rendered::{self, Format, RenderError, Rendering};
use crate::server::WebState;
use crate::wado_http::{lookup, Found};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tracing::warn;
use yilian_store::QueryLevel;

use crate::auth::ConnCert;

/// Renders run at most this many at once (one per core): decoding is CPU work, and each holds
/// a decoded frame in memory.
static SLOTS: LazyLock<tokio::sync::Semaphore> = LazyLock::new(|| {
    tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
});

/// A study or series image tries this many of its instances (from the middle) before it gives
/// up: a series may begin with a localizer or hold a report.
const THUMBNAIL_TRIES: usize = 8;

/// What a rendered request asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `…/rendered`: the image as asked.
    Rendered,
    /// `…/thumbnail`: small, of an instance the relay picks for a study or series.
    Thumbnail,
}

/// A rendered or thumbnail resource of the study, series, instance or frame `path` names.
pub(crate) async fn rendered(
    state: &Arc<WebState>,
    cert: &ConnCert,
    headers: &HeaderMap,
    level: QueryLevel,
    path: &HashMap<String, String>,
    params: &[(String, String)],
    kind: Kind,
) -> Response {
    let caller = match reader(state, cert, headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let mut how = match Rendering::from_query(params, accept) {
        Ok(h) => h,
        Err(e) => return refusal(&e),
    };
    if kind == Kind::Thumbnail && how.fit.is_none() {
        how.fit = Some((rendered::THUMBNAIL, rendered::THUMBNAIL));
        how.shrink_only = true;
    }
    let frame = match path.get("frames").map(|l| one_frame(l)) {
        None => 1,
        Some(Ok(n)) => n,
        Some(Err(r)) => return r,
    };
    let service = match kind {
        Kind::Rendered => "WADO-RS rendered",
        Kind::Thumbnail => "WADO-RS thumbnail",
    };
    let found = match lookup(state, &caller, level, path, service).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    answer(headers, pick(found), frame, how, service).await
}

/// WADO-URI's rendered answer: frame `frameNumber` (default 1) of the instance, in `format`.
pub(crate) async fn wado_uri(
    headers: &HeaderMap,
    found: Found,
    params: &[(String, String)],
    format: Format,
) -> Response {
    let how = match Rendering::from_wado_uri(params, format) {
        Ok(h) => h,
        Err(e) => return refusal(&e),
    };
    let frame = match crate::wado::param(params, "frameNumber") {
        None => 1,
        Some(n) => match one_frame(n) {
            Ok(n) => n,
            Err(r) => return r,
        },
    };
    answer(headers, vec![found], frame, how, "WADO-URI rendered").await
}

/// The one frame number of a frame list: a rendered image holds one frame.
fn one_frame(list: &str) -> Result<u32, Response> {
    let list: Vec<&str> = list.split(',').map(str::trim).collect();
    if list.len() != 1 {
        return Err(error(
            StatusCode::NOT_ACCEPTABLE,
            "a rendered image (image/jpeg, image/png) holds one frame: ask for one frame at a time",
        ));
    }
    match list[0].parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            format!("{:?} is not a frame number (they count from 1)", list[0]),
        )),
    }
}

/// The instances to try, the middle one of the study or series first.
fn pick(mut found: Vec<Found>) -> Vec<Found> {
    let middle = found.len() / 2;
    found.rotate_left(middle);
    found.truncate(THUMBNAIL_TRIES);
    found
}

/// Render the first of `candidates` that renders; answer it (or 304 if the client has it).
async fn answer(
    headers: &HeaderMap,
    candidates: Vec<Found>,
    frame: u32,
    how: Rendering,
    service: &'static str,
) -> Response {
    // The same file rendered the same way is the same image: the ETag names both.
    let etag = |f: &Found| {
        let mut h = blake3::Hasher::new();
        h.update(&f.hash);
        h.update(format!("{frame}|{how:?}").as_bytes());
        format!("\"r-{}\"", h.finalize().to_hex())
    };
    if let Some(first) = candidates.first() {
        let tag = etag(first);
        let matches = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
        if matches {
            let mut r = StatusCode::NOT_MODIFIED.into_response();
            if let Ok(v) = HeaderValue::from_str(&tag) {
                r.headers_mut().insert(header::ETAG, v);
            }
            return r;
        }
    }
    let Ok(_slot) = SLOTS.acquire().await else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the relay is shutting down",
        );
    };
    let tags: Vec<String> = candidates.iter().map(etag).collect();
    let files: Vec<(std::path::PathBuf, String)> = candidates
        .iter()
        .map(|f| (f.file.clone(), f.sop.clone()))
        .collect();
    let format = how.format;
    let done = tokio::task::spawn_blocking(move || {
        let mut last = RenderError::NoPixelData;
        for (i, (file, sop)) in files.iter().enumerate() {
            match rendered::render(file, frame, &how) {
                Ok(image) => return Ok((i, image)),
                Err(e) => {
                    if let RenderError::Read(why) = &e {
                        warn!(sop_uid = %sop, "{service}: {why}");
                    }
                    last = e;
                }
            }
        }
        Err(last)
    })
    .await;
    match done {
        Ok(Ok((i, image))) => {
            let mut r = (StatusCode::OK, image).into_response();
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.media_type()),
            );
            if let Ok(v) = HeaderValue::from_str(&tags[i]) {
                h.insert(header::ETAG, v);
            }
            r
        }
        Ok(Err(e)) => refusal(&e),
        Err(e) => {
            // A decoder that panics on a malformed frame costs this request only.
            warn!("{service} failed: {e}");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the relay could not render the image; its log says why",
            )
        }
    }
}

/// The answer to a request that is not rendered: its status and why.
fn refusal(e: &RenderError) -> Response {
    let status = match e {
        RenderError::BadParameter(_) => StatusCode::BAD_REQUEST,
        RenderError::NoSuchFrame { .. } => StatusCode::NOT_FOUND,
        RenderError::NotAcceptable(_)
        | RenderError::NoPixelData
        | RenderError::Undecodable(_)
        | RenderError::TooLarge(_) => StatusCode::NOT_ACCEPTABLE,
        RenderError::Read(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, e.to_string())
}
