//! Rendered outputs cached in memory, keyed by request and invalidated by
//! the store's generation (not a timer), each with its compressed forms;
//! plus the conditional-request rules: `ETag`/`If-None-Match` first, then
//! `Last-Modified`/`If-Modified-Since`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::model::Timestamp;

/// Cached outputs, at most; past this the cache starts over. Outputs are
/// a few hundred kilobytes at most, so this bounds memory to tens of MB.
pub const MAX_ENTRIES: usize = 128;

/// brotli quality for cached outputs: compressed once per store change,
/// then sent many times.
pub const BROTLI_QUALITY: u32 = 5;

/// One rendered output, ready to send.
pub struct Rendered {
    pub body: Bytes,
    pub content_type: &'static str,
    /// Weak: the bytes on the wire differ with compression, the content not.
    etag: String,
    last_modified: Option<Timestamp>,
    /// The headers every answer carries (validators, caching, `Vary`),
    /// made once.
    headers: Vec<(HeaderName, HeaderValue)>,
    /// The body compressed, made by the first request that asks for each.
    gzip: OnceLock<Bytes>,
    br: OnceLock<Bytes>,
}

/// The content codings a cached output is sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Br,
    Gzip,
}

impl Coding {
    fn name(self) -> &'static str {
        match self {
            Coding::Br => "br",
            Coding::Gzip => "gzip",
        }
    }

    /// The coding the `Accept-Encoding` values prefer (RFC 9110 §12.5.3):
    /// the highest weight above zero, brotli when gzip weighs the same;
    /// `*` stands for either one not named. `None`: send as it is.
    pub fn negotiate<'a>(accept: impl IntoIterator<Item = &'a str>) -> Option<Coding> {
        let (mut br, mut gzip, mut any) = (None, None, None);
        for item in accept.into_iter().flat_map(|value| value.split(',')) {
            let mut parts = item.split(';').map(str::trim);
            let name = parts.next().unwrap_or("").to_ascii_lowercase();
            let weight = parts
                .find_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
                .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok());
            let Some(weight) = weight else { continue };
            match name.as_str() {
                "br" => br = Some(weight),
                "gzip" | "x-gzip" => gzip = Some(weight),
                "*" => any = Some(weight),
                _ => {}
            }
        }
        let (br, gzip) = (br.or(any).unwrap_or(0.0), gzip.or(any).unwrap_or(0.0));
        match (br, gzip) {
            (b, g) if b > 0.0 && b >= g => Some(Coding::Br),
            (_, g) if g > 0.0 => Some(Coding::Gzip),
            _ => None,
        }
    }
}

impl Rendered {
    pub fn new(
        body: impl Into<Bytes>,
        content_type: &'static str,
        last_modified: Option<Timestamp>,
    ) -> Rendered {
        let body = body.into();
        let etag = etag_of(&body);
        Rendered::with_etag(body, content_type, last_modified, etag)
    }

    /// The output with a `Link` header naming its WebSub hub and itself.
    pub fn with_hub(mut self, hub: &str, self_url: &str) -> Rendered {
        let link = format!("<{hub}>; rel=\"hub\", <{self_url}>; rel=\"self\"");
        if let Ok(value) = HeaderValue::from_str(&link) {
            self.headers.push((header::LINK, value));
        }
        self
    }

    /// Its ETag: the same while its content is.
    pub fn etag(&self) -> &str {
        &self.etag
    }

    /// An output whose ETag is not its body's own (see [`etag_of`]).
    pub fn with_etag(
        body: impl Into<Bytes>,
        content_type: &'static str,
        last_modified: Option<Timestamp>,
        etag: String,
    ) -> Rendered {
        let mut headers = vec![(
            header::ETAG,
            HeaderValue::from_str(&etag).expect("hex is a valid header"),
        )];
        if let Some(t) = last_modified {
            headers.push((
                header::LAST_MODIFIED,
                HeaderValue::from_str(&http_date(t)).expect("ASCII"),
            ));
        }
        headers.push((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")));
        headers.push((header::VARY, HeaderValue::from_static("accept-encoding")));
        Rendered {
            body: body.into(),
            content_type,
            etag,
            last_modified,
            headers,
            gzip: OnceLock::new(),
            br: OnceLock::new(),
        }
    }

    /// The body in `coding`, compressed on first use.
    pub fn encoded(&self, coding: Coding) -> &Bytes {
        match coding {
            Coding::Gzip => self.gzip.get_or_init(|| {
                let mut out = flate2::write::GzEncoder::new(
                    Vec::with_capacity(self.body.len() / 3),
                    flate2::Compression::default(),
                );
                out.write_all(&self.body).expect("writing to memory");
                out.finish().expect("writing to memory").into()
            }),
            Coding::Br => self.br.get_or_init(|| {
                let mut out = brotli::CompressorWriter::new(
                    Vec::with_capacity(self.body.len() / 3),
                    4096,
                    BROTLI_QUALITY,
                    22,
                );
                out.write_all(&self.body).expect("writing to memory");
                out.into_inner().into()
            }),
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
    /// One lock per output being rendered: requests that miss together
    /// wait for one rendering instead of each making their own.
    rendering: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl RenderCache {
    /// The cached output for `key` if it was rendered at `generation`:
    /// what most requests find, answered without leaving the runtime
    /// thread.
    pub fn peek(&self, key: &str, generation: u64) -> Option<Arc<Rendered>> {
        match self.lock().get(key) {
            Some((g, hit)) if *g == generation => Some(hit.clone()),
            _ => None,
        }
    }

    /// The cached output for `key` if it was rendered at `generation`,
    /// else a fresh one from `render`. When `render` fails (the store
    /// cannot be read: a full or failing disk), an older rendering of the
    /// same output is served instead: stale stories beat none.
    pub fn get_or_render<E: std::fmt::Debug>(
        &self,
        key: &str,
        generation: u64,
        render: impl FnOnce() -> Result<Rendered, E>,
    ) -> Result<Arc<Rendered>, E> {
        if let Some(hit) = self.peek(key, generation) {
            return Ok(hit);
        }
        let flight = {
            let mut rendering = self.rendering.lock().unwrap_or_else(|p| p.into_inner());
            rendering.entry(key.to_string()).or_default().clone()
        };
        let rendered = {
            let _one_at_a_time = flight.lock().unwrap_or_else(|p| p.into_inner());
            self.render_once(key, generation, render)
        };
        // Every clone is made and dropped under this lock: the last caller
        // out finds only the map's and removes it.
        let mut rendering = self.rendering.lock().unwrap_or_else(|p| p.into_inner());
        drop(flight);
        if rendering
            .get(key)
            .is_some_and(|f| Arc::strong_count(f) == 1)
        {
            rendering.remove(key);
        }
        rendered
    }

    /// [`RenderCache::get_or_render`] with this output's lock held: the
    /// rendering another request just made is taken if it is current.
    fn render_once<E: std::fmt::Debug>(
        &self,
        key: &str,
        generation: u64,
        render: impl FnOnce() -> Result<Rendered, E>,
    ) -> Result<Arc<Rendered>, E> {
        let stale = match self.lock().get(key) {
            Some((g, hit)) if *g == generation => return Ok(hit.clone()),
            Some((_, old)) => Some(old.clone()),
            None => None,
        };
        let fresh = match render() {
            Ok(fresh) => Arc::new(fresh),
            Err(e) => match stale {
                Some(old) => {
                    tracing::warn!(key, error = ?e, "serving an older rendering: the output could not be rendered");
                    return Ok(old);
                }
                None => return Err(e),
            },
        };
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

/// A 304 when the request's validators match, else the output, in the
/// coding the request prefers (then the compression layer leaves it be).
pub fn respond(request: &HeaderMap, r: &Rendered) -> Response {
    if not_modified(request, r) {
        return with_headers(StatusCode::NOT_MODIFIED.into_response(), &r.headers);
    }
    let coding = Coding::negotiate(
        request
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    let body = match coding {
        Some(coding) => r.encoded(coding),
        None => &r.body,
    };
    let mut response = with_headers(Response::new(Body::from(body.clone())), &r.headers);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(r.content_type),
    );
    if let Some(coding) = coding {
        headers.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(coding.name()),
        );
    }
    response
}

fn with_headers(mut response: Response, headers: &[(HeaderName, HeaderValue)]) -> Response {
    let map = response.headers_mut();
    map.reserve(headers.len() + 2);
    for (name, value) in headers {
        map.insert(name.clone(), value.clone());
    }
    response
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
    fn accept_encoding_is_negotiated_by_weight() {
        use Coding::*;
        for (accept, want) in [
            ("", None),
            ("identity", None),
            ("gzip", Some(Gzip)),
            ("x-gzip", Some(Gzip)),
            ("gzip, deflate, br", Some(Br)),
            ("GZIP;Q=0.9, br;q=0.5", Some(Gzip)),
            ("br;q=0, gzip", Some(Gzip)),
            ("br;q=0, gzip;q=0", None),
            ("*", Some(Br)),
            ("*;q=0.5, br;q=0", Some(Gzip)),
            ("gzip;q=bad, br;q=0", None),
            ("deflate", None),
        ] {
            assert_eq!(Coding::negotiate([accept]), want, "{accept:?}");
        }
        // A request may send the header more than once.
        assert_eq!(Coding::negotiate(["br;q=0", "gzip"]), Some(Gzip));
    }

    #[test]
    fn compressed_forms_are_made_once_and_read_back() {
        use std::io::Read;
        let r = Rendered::new("<feed>".repeat(500), "application/atom+xml", None);
        let gz = r.encoded(Coding::Gzip).clone();
        assert!(gz.len() < r.body.len() / 10);
        assert_eq!(r.encoded(Coding::Gzip).as_ptr(), gz.as_ptr(), "kept");
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, r.body);
        let mut plain = Vec::new();
        brotli::Decompressor::new(&r.encoded(Coding::Br)[..], 4096)
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, r.body);

        let mut h = HeaderMap::new();
        h.insert("accept-encoding", "gzip".parse().unwrap());
        let response = respond(&h, &r);
        assert_eq!(response.headers()["content-encoding"], "gzip");
        assert_eq!(response.headers()["vary"], "accept-encoding");
        assert!(
            !respond(&HeaderMap::new(), &r)
                .headers()
                .contains_key("content-encoding")
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

    #[test]
    fn requests_that_miss_together_wait_for_one_rendering() {
        let cache = Arc::new(RenderCache::default());
        let renders = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (cache, renders) = (cache.clone(), renders.clone());
                std::thread::spawn(move || {
                    cache
                        .get_or_render::<()>("/digest.json", 7, || {
                            renders.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(100));
                            Ok(rendered())
                        })
                        .unwrap()
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(renders.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(
            cache.rendering.lock().unwrap().is_empty(),
            "no lock left behind"
        );
    }
}
