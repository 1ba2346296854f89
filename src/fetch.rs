//! The only module that knows reqwest. One shared client; conditional GET;
//! a body cap counted on decompressed bytes while streaming; every failure
//! classified into one [`FetchError`] with a sentence an operator can act on.

use std::io::Read;
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};
use url::Url;

use crate::config::{PollConfig, Source};
use crate::model::{ErrorKind, Validators};

/// What feed servers are told we understand.
const ACCEPT: &str = "application/rss+xml, application/atom+xml, application/feed+json, \
application/rdf+xml;q=0.9, application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5";

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("no answer within {0:?}; the server is slow or unreachable")]
    Timeout(Duration),
    #[error("could not resolve the host name {host:?}; check the URL")]
    Dns { host: String },
    #[error("could not connect to {host:?}: {detail}")]
    Connect { host: String, detail: String },
    #[error("TLS handshake with {host:?} failed: {detail}")]
    Tls { host: String, detail: String },
    #[error("the server answered HTTP {status}{}", retry_after.map(|d| format!(" and asked to wait {}s", d.as_secs())).unwrap_or_default())]
    Status {
        status: u16,
        /// `Retry-After` (seconds or an HTTP date), when the server sent one.
        retry_after: Option<Duration>,
    },
    #[error("the feed is gone (HTTP 410); it will not be polled until its url changes")]
    Gone,
    #[error("the body is larger than the {limit}-byte cap ([poll].max_body_bytes)")]
    TooLarge { limit: u64 },
    #[error("more than {0} redirects, or a redirect loop")]
    Redirects(usize),
    #[error("the answer from {host:?} broke off or could not be decoded: {detail}")]
    Body { host: String, detail: String },
    #[error("the answer from {host:?} is not HTTP that can be read: {detail}")]
    Protocol { host: String, detail: String },
    #[error("the server answered 304 Not Modified to a request that had no validators to match")]
    UnaskedNotModified,
    #[error("cannot read {path}: {detail}")]
    File { path: String, detail: String },
}

impl FetchError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            FetchError::Timeout(_) => ErrorKind::Timeout,
            FetchError::Dns { .. } => ErrorKind::Dns,
            FetchError::Connect { .. } => ErrorKind::Connect,
            FetchError::Tls { .. } => ErrorKind::Tls,
            FetchError::Status { .. } => ErrorKind::HttpStatus,
            FetchError::Gone => ErrorKind::Gone,
            FetchError::TooLarge { .. } => ErrorKind::TooLarge,
            FetchError::Redirects(_) => ErrorKind::Redirects,
            FetchError::Body { .. } => ErrorKind::Body,
            FetchError::Protocol { .. } => ErrorKind::Protocol,
            FetchError::UnaskedNotModified => ErrorKind::HttpStatus,
            FetchError::File { .. } => ErrorKind::File,
        }
    }
}

/// A fetched document.
#[derive(Debug, Clone)]
pub struct Document {
    pub body: Vec<u8>,
    /// Where the body came from after redirects: the base for relative links.
    pub url: Url,
    pub content_type: Option<String>,
    pub validators: Validators,
    pub hints: Hints,
}

/// What the server said about when to ask again, and where.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hints {
    /// `Cache-Control: max-age` or `Expires`: fresh for this long.
    pub fresh_for: Option<Duration>,
    /// Every redirect on the way was permanent (301/308): the feed lives
    /// here now.
    pub moved_to: Option<Url>,
    /// The `Link` header's `rel="hub"` and `rel="self"` (WebSub discovery).
    pub hub: Option<String>,
    pub self_link: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Fetched {
    /// 304, or a file whose size and time have not changed: nothing to do.
    NotModified(Hints),
    Document(Document),
}

/// Fetches feed documents. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct Fetcher {
    /// Redirects are followed by hand, to see each hop: permanent moves are
    /// reported, and URLs from feed content may not leave their host.
    client: reqwest::Client,
    max_body: u64,
    timeout: Duration,
    connect_timeout: Duration,
    max_redirects: usize,
}

impl Fetcher {
    pub fn new(cfg: &PollConfig) -> anyhow::Result<Fetcher> {
        // reqwest is built without a bundled crypto provider so that only
        // `ring` is compiled; install it once. A second install fails
        // harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(ACCEPT));
        let client = reqwest::Client::builder()
            .user_agent(cfg.user_agent.clone())
            .default_headers(headers)
            .connect_timeout(cfg.connect_timeout)
            .timeout(cfg.timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Fetcher {
            client,
            max_body: cfg.max_body_bytes,
            timeout: cfg.timeout,
            connect_timeout: cfg.connect_timeout,
            max_redirects: cfg.max_redirects,
        })
    }

    /// Fetches `source`, conditionally when `validators` are known.
    pub async fn fetch(
        &self,
        source: &Source,
        validators: &Validators,
    ) -> Result<Fetched, FetchError> {
        match source {
            Source::Http(url) => self.fetch_http(url, validators, false).await,
            Source::File(path) => {
                let path = path.clone();
                let validators = validators.clone();
                let cap = self.max_body;
                tokio::task::spawn_blocking(move || read_file(&path, &validators, cap))
                    .await
                    .unwrap_or_else(|e| {
                        Err(FetchError::File {
                            path: String::new(),
                            detail: e.to_string(),
                        })
                    })
            }
        }
    }

    /// Fetches a URL found in feed content: like [`Fetcher::fetch`], but a
    /// redirect to another host is not followed (its 3xx is the answer).
    pub async fn fetch_same_host(
        &self,
        url: &Url,
        validators: &Validators,
    ) -> Result<Fetched, FetchError> {
        self.fetch_http(url, validators, true).await
    }

    /// `[poll].timeout` bounds the whole fetch, redirects and body included.
    async fn fetch_http(
        &self,
        url: &Url,
        validators: &Validators,
        same_host: bool,
    ) -> Result<Fetched, FetchError> {
        tokio::time::timeout(self.timeout, self.follow(url, validators, same_host))
            .await
            .unwrap_or(Err(FetchError::Timeout(self.timeout)))
    }

    async fn follow(
        &self,
        start: &Url,
        validators: &Validators,
        same_host: bool,
    ) -> Result<Fetched, FetchError> {
        let mut url = start.clone();
        let mut permanent = true;
        let mut hops = 0;
        let mut resp = loop {
            let mut req = self.client.get(url.clone());
            if let Some(etag) = &validators.etag {
                req = req.header(header::IF_NONE_MATCH, etag);
            }
            if let Some(lm) = &validators.last_modified {
                req = req.header(header::IF_MODIFIED_SINCE, lm);
            }
            let resp = req.send().await.map_err(|e| self.classify(e, &url))?;
            let status = resp.status();
            let next = status
                .is_redirection()
                .then(|| header_string(resp.headers(), header::LOCATION))
                .flatten()
                .and_then(|loc| url.join(&loc).ok())
                .filter(|next| matches!(next.scheme(), "http" | "https"));
            let Some(next) = next else { break resp };
            if same_host && site(&next) != site(start) {
                break resp;
            }
            hops += 1;
            if hops > self.max_redirects {
                return Err(FetchError::Redirects(self.max_redirects));
            }
            permanent &= matches!(status.as_u16(), 301 | 308);
            url = next;
        };
        let links = link_header(resp.headers(), &url);
        let rel = |name: &str| {
            links
                .iter()
                .find(|(r, _)| r == name)
                .map(|(_, u)| u.clone())
        };
        let hints = Hints {
            fresh_for: freshness(resp.headers()),
            moved_to: (hops > 0 && permanent).then(|| url.clone()),
            hub: rel("hub"),
            self_link: rel("self"),
        };
        let status = resp.status();
        if status == StatusCode::NOT_MODIFIED {
            // Only an answer to our validators: otherwise nothing was
            // fetched, and calling it a success would hide a broken server.
            if validators.etag.is_none() && validators.last_modified.is_none() {
                return Err(FetchError::UnaskedNotModified);
            }
            return Ok(Fetched::NotModified(hints));
        }
        if status == StatusCode::GONE {
            return Err(FetchError::Gone);
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                status: status.as_u16(),
                retry_after: retry_after(resp.headers()),
            });
        }
        if resp.content_length().is_some_and(|n| n > self.max_body) {
            return Err(FetchError::TooLarge {
                limit: self.max_body,
            });
        }
        let validators = Validators {
            etag: header_string(resp.headers(), header::ETAG),
            last_modified: header_string(resp.headers(), header::LAST_MODIFIED),
        };
        let content_type = header_string(resp.headers(), header::CONTENT_TYPE);
        // Chunks arrive decompressed, so the cap holds against gzip bombs
        // and endless bodies alike.
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.classify(e, &url))? {
            if (body.len() + chunk.len()) as u64 > self.max_body {
                return Err(FetchError::TooLarge {
                    limit: self.max_body,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched::Document(Document {
            body,
            url,
            content_type,
            validators,
            hints,
        }))
    }

    fn classify(&self, e: reqwest::Error, url: &Url) -> FetchError {
        let host = url.host_str().unwrap_or_default().to_string();
        let detail = error_chain(&e);
        let lower = detail.to_ascii_lowercase();
        if e.is_timeout() && e.is_connect() {
            FetchError::Timeout(self.connect_timeout)
        } else if e.is_timeout() {
            FetchError::Timeout(self.timeout)
        } else if e.is_body() || e.is_decode() {
            FetchError::Body { host, detail }
        } else if !e.is_connect() {
            // Connected, then the answer could not be read as HTTP.
            FetchError::Protocol { host, detail }
        } else if lower.contains("dns error") || lower.contains("failed to lookup address") {
            FetchError::Dns { host }
        } else if lower.contains("certificate")
            || lower.contains("tls")
            || lower.contains("handshake")
        {
            FetchError::Tls { host, detail }
        } else {
            FetchError::Connect { host, detail }
        }
    }
}

/// The innermost causes are the useful ones ("connection refused"); the
/// outer ones repeat the URL.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = Vec::new();
    let mut cur = e.source();
    while let Some(err) = cur {
        let s = err.to_string();
        if !parts.contains(&s) {
            parts.push(s);
        }
        cur = err.source();
    }
    if parts.is_empty() {
        parts.push(e.to_string());
    }
    parts.join(": ")
}

/// Host and port, with http and https on their default ports the same.
fn site(url: &Url) -> (Option<String>, Option<u16>) {
    let port = match (url.scheme(), url.port_or_known_default()) {
        ("http", Some(80)) | ("https", Some(443)) => None,
        (_, p) => p,
    };
    (url.host_str().map(str::to_ascii_lowercase), port)
}

/// `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
/// The `Link` header's links (RFC 8288) as (rel, absolute URL): each
/// `<url>; rel="a b"` gives one pair per relation. Tolerant: what it
/// cannot read it skips.
pub fn link_header(headers: &HeaderMap, base: &Url) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for value in headers.get_all(reqwest::header::LINK) {
        let Ok(text) = value.to_str() else { continue };
        let mut rest = text;
        while let Some(open) = rest.find('<') {
            let Some(close) = rest[open..].find('>') else {
                break;
            };
            let target = &rest[open + 1..open + close];
            let after = &rest[open + close + 1..];
            let params = &after[..after.find('<').unwrap_or(after.len())];
            rest = &after[params.len()..];
            let Ok(url) = base.join(target.trim()) else {
                continue;
            };
            if !matches!(url.scheme(), "http" | "https") {
                continue;
            }
            for param in params.split(';') {
                let Some((key, val)) = param.split_once('=') else {
                    continue;
                };
                if key.trim().eq_ignore_ascii_case("rel") {
                    let val = val.trim().trim_end_matches(',').trim().trim_matches('"');
                    for r in val.split_ascii_whitespace() {
                        out.push((r.to_ascii_lowercase(), url.to_string()));
                    }
                }
            }
        }
    }
    out
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = header_string(headers, header::RETRY_AFTER)?;
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    (at.to_utc() - chrono::Utc::now()).to_std().ok()
}

/// `Cache-Control: max-age` (or `s-maxage`), else `Expires` minus `Date`.
fn freshness(headers: &HeaderMap) -> Option<Duration> {
    if let Some(cc) = header_string(headers, header::CACHE_CONTROL) {
        for directive in cc.split(',') {
            let directive = directive.trim().to_ascii_lowercase();
            if let Some(v) = directive
                .strip_prefix("max-age=")
                .or(directive.strip_prefix("s-maxage="))
            {
                return v
                    .trim_matches('"')
                    .parse::<u64>()
                    .ok()
                    .map(Duration::from_secs);
            }
        }
    }
    let date = |name| {
        header_string(headers, name)
            .and_then(|v| chrono::DateTime::parse_from_rfc2822(v.trim()).ok())
            .map(|d| d.to_utc())
    };
    let expires = date(header::EXPIRES)?;
    let now = date(header::DATE).unwrap_or_else(chrono::Utc::now);
    (expires - now).to_std().ok()
}

fn header_string(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Local files get validators from their size and modification time, so a
/// demo feed that has not changed is skipped like a 304.
fn read_file(
    path: &std::path::Path,
    validators: &Validators,
    cap: u64,
) -> Result<Fetched, FetchError> {
    let err = |e: std::io::Error| FetchError::File {
        path: path.display().to_string(),
        detail: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(err)?;
    let meta = file.metadata().map_err(err)?;
    if meta.len() > cap {
        return Err(FetchError::TooLarge { limit: cap });
    }
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let stamp = modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let etag = format!("\"{:x}-{:x}\"", meta.len(), stamp.as_nanos());
    if validators.etag.as_deref() == Some(etag.as_str()) {
        return Ok(Fetched::NotModified(Hints::default()));
    }
    let mut body = Vec::with_capacity(meta.len() as usize);
    // `take` guards against a file that grows while it is read.
    file.take(cap + 1).read_to_end(&mut body).map_err(err)?;
    if body.len() as u64 > cap {
        return Err(FetchError::TooLarge { limit: cap });
    }
    let last_modified = chrono::DateTime::<chrono::Utc>::from(modified)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    Ok(Fetched::Document(Document {
        body,
        url: Url::from_file_path(path).unwrap_or_else(|_| Url::parse("file:///").expect("static")),
        content_type: None,
        validators: Validators {
            etag: Some(etag),
            last_modified: Some(last_modified),
        },
        hints: Hints::default(),
    }))
}

/// GETs a document from one of Paddock's own servers (`paddock digest
/// --server`): the body on a 2xx, else an error with the server's words.
pub async fn get_text(url: &Url) -> anyhow::Result<String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let resp = reqwest::Client::new()
        .get(url.clone())
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach {url}: {}", error_chain(&e)))?;
    let status = resp.status();
    let body = resp
        .text()
        .await
        .map_err(|e| anyhow::anyhow!("reading {url}: {e}"))?;
    if !status.is_success() {
        let said = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or(body);
        anyhow::bail!("{url} answered {status}: {said}");
    }
    Ok(body)
}

#[cfg(test)]
mod link_tests {
    use super::*;

    #[test]
    fn link_headers_name_hubs_and_selves() {
        let mut h = HeaderMap::new();
        h.append(
            reqwest::header::LINK,
            "<https://hub.example/>; rel=\"hub\", </feed>; rel=\"self\", <x>; rel=\"alternate nofollow\""
                .parse()
                .unwrap(),
        );
        h.append(
            reqwest::header::LINK,
            "<javascript:alert(1)>; rel=hub".parse().unwrap(),
        );
        let base = Url::parse("https://site.example/blog/").unwrap();
        let links = link_header(&h, &base);
        assert_eq!(
            links,
            [
                ("hub".to_string(), "https://hub.example/".to_string()),
                ("self".to_string(), "https://site.example/feed".to_string()),
                (
                    "alternate".to_string(),
                    "https://site.example/blog/x".to_string()
                ),
                (
                    "nofollow".to_string(),
                    "https://site.example/blog/x".to_string()
                ),
            ]
        );
    }
}
