//! Rendered outputs cached in memory, keyed by request and invalidated by
//! the store's generation (not a timer), plus the conditional-request
//! rules: `ETag`/`If-None-Match` first, then `Last-Modified`/
//! `If-Modified-Since`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::model::Timestamp;

/// Cached outputs, at most; past this the cache starts over. Outputs are
/// a few hundred kilobytes at most, so this bounds memory to tens of MB.
pub const MAX_ENTRIES: usize = 128;

/// One rendered output, ready to send.
pub struct Rendered {
    pub body: Bytes,
    pub content_type: &'static str,
    /// Weak: the bytes on the wire differ with compression, the content not.
    pub etag: String,
    pub last_modified: Option<Timestamp>,
}

impl Rendered {
    pub fn new(
        body: impl Into<Bytes>,
        content_type: &'static str,
        last_modified: Option<Timestamp>,
    ) -> Rendered {
        let body = body.into();
        Rendered {
            etag: etag_of(&body),
            body,
            content_type,
            last_modified,
        }
    }
}

/// `W/"…"` from the first 128 bits of a SHA-256 of `bytes`.
pub fn etag_of(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("W/\"{hex}\"")
}

#[derive(Default)]
pub struct RenderCache {
    entries: Mutex<HashMap<String, (u64, Arc<Rendered>)>>,
}

impl RenderCache {
    /// The cached output for `key` if it was rendered at `generation`,
    /// else a fresh one from `render`.
    pub fn get_or_render<E>(
        &self,
        key: &str,
        generation: u64,
        render: impl FnOnce() -> Result<Rendered, E>,
    ) -> Result<Arc<Rendered>, E> {
        if let Some((g, hit)) = self.lock().get(key)
            && *g == generation
        {
            return Ok(hit.clone());
        }
        let fresh = Arc::new(render()?);
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key.to_string(), (generation, fresh.clone()));
        Ok(fresh)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, Arc<Rendered>)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A 304 when the request's validators match, else the output.
pub fn respond(request: &HeaderMap, r: &Rendered) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::ETAG,
        HeaderValue::from_str(&r.etag).expect("hex is a valid header"),
    );
    if let Some(t) = r.last_modified {
        headers.insert(
            header::LAST_MODIFIED,
            HeaderValue::from_str(&http_date(t)).expect("ASCII"),
        );
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if not_modified(request, r) {
        // The compression layer marks only bodies it compressed; a 304
        // must carry the same Vary as the 200 it stands for.
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(r.content_type),
    );
    (headers, r.body.clone()).into_response()
}

fn not_modified(request: &HeaderMap, r: &Rendered) -> bool {
    if let Some(inm) = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        // Weak comparison (RFC 9110 §13.1.2): the W/ prefix does not count.
        let ours = r.etag.trim_start_matches("W/");
        return inm
            .split(',')
            .map(str::trim)
            .any(|t| t == "*" || t.trim_start_matches("W/") == ours);
    }
    match (
        request
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok()),
        r.last_modified,
    ) {
        (Some(since), Some(modified)) => modified.timestamp() <= since.timestamp(),
        _ => false,
    }
}

pub fn http_date(t: Timestamp) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered() -> Rendered {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-21T08:00:00Z")
            .unwrap()
            .to_utc();
        Rendered::new("<feed/>", "application/atom+xml", Some(t))
    }

    fn status(headers: &[(&'static str, &str)]) -> StatusCode {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(*k, v.parse().unwrap());
        }
        respond(&h, &rendered()).status()
    }

    #[test]
    fn conditional_requests() {
        let etag = rendered().etag;
        let strong = etag.trim_start_matches("W/").to_string();
        assert_eq!(status(&[]), StatusCode::OK);
        assert_eq!(
            status(&[("if-none-match", &etag)]),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            status(&[("if-none-match", &strong)]),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            status(&[("if-none-match", "\"other\", W/\"x\"")]),
            StatusCode::OK
        );
        assert_eq!(
            status(&[("if-modified-since", "Sat, 21 Nov 2026 08:00:00 GMT")]),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            status(&[("if-modified-since", "Sat, 21 Nov 2026 07:59:59 GMT")]),
            StatusCode::OK
        );
        // If-None-Match decides when both are sent.
        assert_eq!(
            status(&[
                ("if-none-match", "\"other\""),
                ("if-modified-since", "Sat, 21 Nov 2026 09:00:00 GMT")
            ]),
            StatusCode::OK
        );
    }

    #[test]
    fn the_cache_follows_the_generation() {
        let cache = RenderCache::default();
        let mut renders = 0;
        let mut get = |g| {
            cache
                .get_or_render::<()>("/feed.atom", g, || {
                    renders += 1;
                    Ok(rendered())
                })
                .unwrap()
        };
        get(1);
        get(1);
        get(2);
        assert_eq!(renders, 2);
    }
}
