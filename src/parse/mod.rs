//! Bytes to model. The only module that knows feed-rs and quick-xml.
//! Pure: no I/O, no clock.

mod encoding;
mod extensions;
mod lenient;

pub use extensions::{EntryExtensions, InReplyTo};

use feed_rs::model::{Entry, LinkTarget, Text};
use url::Url;

use crate::model::{CommentInfo, ParsedEntry, ParsedFeed};
use crate::text::html_to_text;

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("the document is an HTML page, not a feed; the feed URL may have moved")]
    NotAFeed,
    #[error("the document is not a readable feed: {0}")]
    Invalid(String),
}

impl ParseError {
    pub fn kind(&self) -> crate::model::ErrorKind {
        match self {
            ParseError::NotAFeed => crate::model::ErrorKind::NotAFeed,
            ParseError::Invalid(_) => crate::model::ErrorKind::Parse,
        }
    }
}

/// Parses a feed document from its raw bytes, in whatever encoding its BOM,
/// its `Content-Type` or its XML declaration names (see `encoding`).
/// `base` resolves relative links.
pub fn parse_feed(
    body: &[u8],
    base: &Url,
    content_type: Option<&str>,
) -> Result<ParsedFeed, ParseError> {
    parse_document(body, base, content_type).map(|(feed, _)| feed)
}

/// Parses a comment feed: the same as a feed, plus each entry's
/// `thr:in-reply-to` references.
pub fn parse_with_replies(
    body: &[u8],
    base: &Url,
    content_type: Option<&str>,
) -> Result<(ParsedFeed, Vec<Vec<InReplyTo>>), ParseError> {
    parse_document(body, base, content_type)
}

/// Both passes over one document: feed-rs, then the extension scan, joined
/// by position.
fn parse_document(
    body: &[u8],
    base: &Url,
    content_type: Option<&str>,
) -> Result<(ParsedFeed, Vec<Vec<InReplyTo>>), ParseError> {
    let decoded = encoding::to_utf8(body, content_type);
    let versioned = lenient::rss_version_bytes(&decoded);
    let body = lenient::atom_text_types(&versioned);
    let body: &[u8] = &body;
    if looks_like_html(body) {
        return Err(ParseError::NotAFeed);
    }
    if lenient::is_empty_rss_bytes(body) {
        return Ok((ParsedFeed::default(), Vec::new()));
    }
    let parser = feed_rs::parser::Builder::new()
        .base_uri(Some(base.as_str()))
        // feed-rs would invent an id for entries without one (random for
        // some formats); an empty id tells normalize to derive its own.
        .id_generator(|_, _, _| String::new())
        .build();
    let feed = parser.parse(body).map_err(|e| {
        if content_type.is_some_and(|ct| ct.to_ascii_lowercase().contains("html")) {
            ParseError::NotAFeed
        } else {
            ParseError::Invalid(e.to_string())
        }
    })?;
    let is_xml = body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{');
    let scan = if is_xml {
        extensions::scan(body)
    } else {
        extensions::Scan::default()
    };
    let ttl = feed
        .ttl
        .map(|minutes| std::time::Duration::from_secs(u64::from(minutes) * 60));
    let update_every = ttl.max(scan.update_every);
    let extensions = scan.entries;
    // Join the two passes by position; if they disagree on the number of
    // entries (a document feed-rs repaired), drop the extension data rather
    // than attach it to the wrong stories.
    let extensions = (extensions.len() == feed.entries.len()).then_some(extensions);

    let site_link = feed
        .links
        .iter()
        .filter(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
        .find_map(|l| resolve(base, &l.href));
    let rel = |name: &str| {
        (feed.links.iter())
            .filter(|l| l.rel.as_deref() == Some(name))
            .find_map(|l| resolve(base, &l.href))
    };
    let (hub, self_link) = (rel("hub"), rel("self"));
    let replies = match &extensions {
        Some(x) => x.iter().map(|e| e.in_reply_to.clone()).collect(),
        None => vec![Vec::new(); feed.entries.len()],
    };
    let entries = feed
        .entries
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let ext = extensions.as_ref().and_then(|x| x.get(i));
            entry(e, ext, base)
        })
        .collect();
    let parsed = ParsedFeed {
        title: feed.title.map(|t| text(&t)).filter(|t| !t.is_empty()),
        site_link,
        hub,
        self_link,
        entries,
        update_every,
    };
    Ok((parsed, replies))
}

fn entry(e: Entry, ext: Option<&EntryExtensions>, base: &Url) -> ParsedEntry {
    let mut comments = CommentInfo::default();
    let mut link = None;
    for l in &e.links {
        match (&l.target, l.rel.as_deref()) {
            (Some(LinkTarget::Comments), _) if comments.page_url.is_none() => {
                comments.page_url = resolve(base, &l.href);
            }
            (Some(LinkTarget::CommentsFeed), _) if comments.feed_url.is_none() => {
                comments.feed_url = resolve(base, &l.href);
            }
            (None, None | Some("alternate")) if link.is_none() => {
                link = resolve(base, &l.href);
            }
            (None, Some("replies")) => {
                let is_feed = l.media_type.as_deref().is_some_and(|t| !t.contains("html"));
                let slot = if is_feed {
                    &mut comments.feed_url
                } else {
                    &mut comments.page_url
                };
                if slot.is_none() {
                    *slot = resolve(base, &l.href);
                }
            }
            _ => {}
        }
    }
    if let Some(ext) = ext {
        if let Some(orig) = ext.orig_link.as_deref().and_then(|o| resolve(base, o)) {
            link = Some(orig);
        }
        comments.count = ext.comment_count;
        if comments.feed_url.is_none() {
            comments.feed_url = ext.comment_feed.as_deref().and_then(|f| resolve(base, f));
        }
    }
    let image = e
        .media
        .iter()
        .flat_map(|m| m.thumbnails.iter().map(|t| t.image.uri.clone()))
        .chain(e.media.iter().flat_map(|m| {
            m.content
                .iter()
                .filter(|c| {
                    c.content_type
                        .as_ref()
                        .is_some_and(|t| t.ty().as_str() == "image")
                })
                .filter_map(|c| c.url.as_ref().map(|u| u.to_string()))
        }))
        .find_map(|u| resolve(base, &u));
    let guid = Some(e.id.trim().to_string()).filter(|g| !g.is_empty());
    ParsedEntry {
        guid,
        title: e.title.as_ref().map(text).unwrap_or_default(),
        link,
        authors: e
            .authors
            .iter()
            .filter_map(|p| p.name.clone().or_else(|| p.email.clone()))
            .map(|n| html_to_text(&n))
            .filter(|n| !n.is_empty())
            .collect(),
        summary: e
            .summary
            .map(|s| s.content)
            .filter(|s| !s.trim().is_empty()),
        content: e
            .content
            .and_then(|c| c.body)
            .filter(|s| !s.trim().is_empty()),
        published: e.published.or(e.updated),
        updated: e.updated,
        categories: e
            .categories
            .iter()
            .map(|c| c.label.clone().unwrap_or_else(|| c.term.clone()))
            .map(|c| html_to_text(&c))
            .filter(|c| !c.is_empty())
            .collect(),
        image,
        comments,
    }
}

/// Titles end up as plain text whatever the feed declared: RSS titles
/// routinely carry entities and stray markup.
fn text(t: &Text) -> String {
    html_to_text(&t.content)
}

/// Resolves a link from feed content against the document's URL. Only
/// http(s) links survive: a `javascript:` or `data:` link is an attack, and
/// a `file:` link (a relative link in a local demo file) leads nowhere.
/// Credentials in a link (`user:password@`) are dropped: republished, they
/// would hand them to every reader.
fn resolve(base: &Url, href: &str) -> Option<String> {
    let mut url = base.join(href.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    if !url.username().is_empty() || url.password().is_some() {
        let _ = url.set_username("");
        let _ = url.set_password(None);
    }
    Some(url.into())
}

fn looks_like_html(body: &[u8]) -> bool {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    let head: Vec<u8> = body[start..]
        .iter()
        .take(15)
        .map(u8::to_ascii_lowercase)
        .collect();
    head.starts_with(b"<!doctype html") || head.starts_with(b"<html")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://cars.example/feed/").unwrap()
    }

    #[test]
    fn html_pages_are_not_feeds() {
        let page = b"\n  <!DOCTYPE html><html><head><title>Cars</title></head><body></body></html>";
        assert!(matches!(
            parse_feed(page, &base(), None),
            Err(ParseError::NotAFeed)
        ));
    }

    #[test]
    fn garbage_is_an_invalid_feed() {
        let err = parse_feed(b"<rss><channel><item><title>cut", &base(), None).unwrap_err();
        assert!(matches!(err, ParseError::Invalid(_)), "{err:?}");
    }

    #[test]
    fn only_http_links_survive() {
        let rss = br#"<rss version="2.0"><channel><title>T</title>
<item><title>A</title><link>javascript:alert(1)</link><comments>data:text/html,x</comments></item></channel></rss>"#;
        let feed = parse_feed(rss, &base(), None).unwrap();
        assert_eq!(feed.entries[0].link, None);
        assert_eq!(feed.entries[0].comments.page_url, None);
        let rss = br#"<rss version="2.0"><channel><title>T</title>
<item><title>A</title><link>https://editor:hunter2@cars.example/a</link></item></channel></rss>"#;
        let feed = parse_feed(rss, &base(), None).unwrap();
        assert_eq!(
            feed.entries[0].link.as_deref(),
            Some("https://cars.example/a")
        );
    }

    #[test]
    fn every_encoding_reaches_both_passes_as_the_same_text() {
        let doc = "<?xml version=\"1.0\" encoding=\"ENC\"?>\
<rss version=\"2.0\" xmlns:slash=\"http://purl.org/rss/1.0/modules/slash/\"><channel><title>T</title>\
<item><title>Café</title><link>https://cars.example/a</link><slash:comments>5</slash:comments></item>\
</channel></rss>";
        let utf16 = doc.replace("ENC", "UTF-16");
        let be: Vec<u8> = utf16.encode_utf16().flat_map(u16::to_be_bytes).collect();
        let le: Vec<u8> = utf16.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let latin1 = doc.replace("ENC", "ISO-8859-1");
        let (latin1, _, _) = encoding_rs::WINDOWS_1252.encode(&latin1);
        for bytes in [
            [&[0xfe, 0xff][..], &be].concat(),
            be,
            le,
            latin1.into_owned(),
        ] {
            let feed = parse_feed(&bytes, &base(), None).unwrap();
            assert_eq!(feed.entries[0].title, "Café");
            assert_eq!(feed.entries[0].comments.count, Some(5));
        }
    }

    #[test]
    fn undeclared_html_entities_are_read_as_html_reads_them() {
        let rss = b"<rss version=\"2.0\"><channel><title>T</title>\
<item><title>Caf&eacute;&nbsp;x &amp; y</title><link>https://cars.example/a</link></item></channel></rss>";
        let feed = parse_feed(rss, &base(), None).unwrap();
        assert_eq!(feed.entries[0].title, "Café x & y");
    }

    #[test]
    fn entries_without_ids_get_none_not_an_invented_id() {
        let rss = br#"<rss version="2.0"><channel><title>T</title>
<item><title>No guid</title><link>/2026/11/story</link></item></channel></rss>"#;
        let feed = parse_feed(rss, &base(), None).unwrap();
        assert_eq!(feed.entries[0].guid, None);
        assert_eq!(
            feed.entries[0].link.as_deref(),
            Some("https://cars.example/2026/11/story")
        );
    }

    #[test]
    fn a_feed_names_its_hub_and_itself() {
        let base = url::Url::parse("https://h.example/feed").unwrap();
        let rss = "<rss version=\"2.0\" xmlns:atom=\"http://www.w3.org/2005/Atom\"><channel><title>H</title>\
                   <link>https://h.example/</link><atom:link rel=\"hub\" href=\"https://hub.example/\"/>\
                   <atom:link rel=\"self\" href=\"https://h.example/feed\"/></channel></rss>";
        let atom = "<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>A</title><id>x</id><updated>2026-01-01T00:00:00Z</updated>\
                    <link rel=\"hub\" href=\"https://hub.example/\"/><link rel=\"self\" href=\"https://h.example/feed\"/></feed>";
        for doc in [rss, atom] {
            let parsed = parse_feed(doc.as_bytes(), &base, None).unwrap();
            assert_eq!(parsed.hub.as_deref(), Some("https://hub.example/"), "{doc}");
            assert_eq!(
                parsed.self_link.as_deref(),
                Some("https://h.example/feed"),
                "{doc}"
            );
        }
    }
}
