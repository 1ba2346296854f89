//! A second, namespace-aware pass over XML feeds for what feed-rs drops:
//! `slash:comments`, RFC 4685 threading (`thr:total`, `thr:count` on
//! `replies` links, `thr:in-reply-to`) and `feedburner:origLink`.
//! Elements are matched by namespace URI, never by prefix.

use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{NamespaceResolver, ResolveResult, ResolveResult::Bound};

const NS_SLASH: &str = "http://purl.org/rss/1.0/modules/slash/";
const NS_THREAD: &str = "http://purl.org/syndication/thread/1.0";
const NS_FEEDBURNER: &str = "http://rssnamespace.org/feedburner/ext/1.0";
const NS_ATOM: &str = "http://www.w3.org/2005/Atom";
const NS_WFW: &str = "http://wellformedweb.org/CommentAPI/";
const NS_SY: &str = "http://purl.org/rss/1.0/modules/syndication/";

/// What the extension pass found for one entry, in document order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryExtensions {
    pub orig_link: Option<String>,
    /// `slash:comments`, `thr:total` or the `thr:count` of a replies link.
    pub comment_count: Option<u32>,
    /// An Atom `replies` link of a feed type, or `wfw:commentRss`.
    pub comment_feed: Option<String>,
    /// RFC 4685 `thr:in-reply-to`: the `ref` (id of the parent) and `href`.
    pub in_reply_to: Vec<InReplyTo>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InReplyTo {
    pub reference: String,
    pub href: Option<String>,
}

/// What the extension pass found in a document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// One record per `item`/`entry`, in document order.
    pub entries: Vec<EntryExtensions>,
    /// RSS syndication module (`sy:updatePeriod`, `sy:updateFrequency`):
    /// how often the feed says it changes.
    pub update_every: Option<std::time::Duration>,
}

/// The element whose text is being collected.
#[derive(Clone, Copy, PartialEq)]
enum Capture {
    SlashComments,
    ThrTotal,
    OrigLink,
    CommentRss,
    UpdatePeriod,
    UpdateFrequency,
}

/// The namespaces the scan knows, resolved once per element.
#[derive(Clone, Copy, PartialEq)]
enum Ns {
    Atom,
    Slash,
    Thread,
    Feedburner,
    Wfw,
    Sy,
    Other,
}

impl Ns {
    fn of(resolved: &ResolveResult) -> Ns {
        let Bound(n) = resolved else {
            return Ns::Other;
        };
        match n.as_ref() {
            NS_ATOM => Ns::Atom,
            NS_SLASH => Ns::Slash,
            NS_THREAD => Ns::Thread,
            NS_FEEDBURNER => Ns::Feedburner,
            NS_WFW => Ns::Wfw,
            NS_SY => Ns::Sy,
            _ => Ns::Other,
        }
    }
}

/// Scans an XML feed, already decoded to UTF-8 (see `encoding`). Errors
/// mean the XML is broken, which feed-rs reports better, so they end the
/// scan and return what was found so far. Invalid UTF-8 (which the
/// decoding left only where the document claimed UTF-8) ends it too.
pub fn scan(xml: &[u8]) -> Scan {
    let mut scanner = Scanner::default();
    let text = match std::str::from_utf8(xml) {
        Ok(text) => text,
        Err(e) => std::str::from_utf8(&xml[..e.valid_up_to()]).unwrap_or_default(),
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = NsReader::from_str(text);
    reader.config_mut().expand_empty_elements = true;
    while let Ok((ns, event)) = reader.read_resolved_event() {
        let ns = Ns::of(&ns);
        if !scanner.on(ns, &event, reader.resolver()) {
            break;
        }
    }
    scanner.finish()
}

/// The scan's state between events.
#[derive(Default)]
struct Scanner {
    period: Option<u64>,
    frequency: Option<u64>,
    entries: Vec<EntryExtensions>,
    depth: usize,
    entry_depth: Option<usize>,
    capture: Option<Capture>,
    text: String,
}

impl Scanner {
    /// Takes one event; false at the end of the document.
    fn on(&mut self, ns: Ns, event: &Event, resolver: &NamespaceResolver) -> bool {
        match event {
            Event::Start(e) => self.start(ns, e, resolver),
            Event::Text(t) if self.capture.is_some() => self.text.push_str(t),
            Event::CData(t) if self.capture.is_some() => self.text.push_str(t),
            Event::GeneralRef(r) if self.capture.is_some() => {
                if let Ok(Some(ch)) = r.resolve_char_ref() {
                    self.text.push(ch);
                } else if let Some(s) = quick_xml::escape::resolve_predefined_entity(r) {
                    self.text.push_str(s);
                }
            }
            Event::End(_) => self.end(),
            Event::Eof => return false,
            _ => {}
        }
        true
    }

    fn start(&mut self, ns: Ns, e: &BytesStart, resolver: &NamespaceResolver) {
        self.depth += 1;
        let local = e.local_name();
        let local = local.as_ref();
        match self.entry_depth {
            None if local == "item" || (local == "entry" && ns == Ns::Atom) => {
                self.entry_depth = Some(self.depth);
                self.entries.push(EntryExtensions::default());
            }
            None if ns == Ns::Sy => {
                self.capture = match local {
                    "updatePeriod" => Some(Capture::UpdatePeriod),
                    "updateFrequency" => Some(Capture::UpdateFrequency),
                    _ => None,
                };
                self.text.clear();
            }
            Some(d) if self.depth == d + 1 => {
                let current = self.entries.last_mut().expect("inside an entry");
                self.capture = match (ns, local) {
                    (Ns::Slash, "comments") => Some(Capture::SlashComments),
                    (Ns::Thread, "total") => Some(Capture::ThrTotal),
                    (Ns::Feedburner, "origLink") => Some(Capture::OrigLink),
                    (Ns::Wfw, "commentRss" | "commentRSS") => Some(Capture::CommentRss),
                    (Ns::Thread, "in-reply-to") => {
                        if let Some(r) = in_reply_to(resolver, e) {
                            current.in_reply_to.push(r);
                        }
                        None
                    }
                    (Ns::Atom, "link") => {
                        replies_link(resolver, e, current);
                        None
                    }
                    _ => None,
                };
                self.text.clear();
            }
            _ => {}
        }
    }

    fn end(&mut self) {
        let value = self.text.trim();
        match (self.capture.take(), self.entry_depth) {
            (Some(Capture::UpdatePeriod), None) => {
                self.period = match value {
                    "hourly" => Some(3600),
                    "daily" => Some(86400),
                    "weekly" => Some(7 * 86400),
                    "monthly" => Some(30 * 86400),
                    "yearly" => Some(365 * 86400),
                    _ => self.period,
                }
            }
            (Some(Capture::UpdateFrequency), None) => {
                self.frequency = value.parse().ok().filter(|f| *f > 0)
            }
            (Some(c), Some(d)) if self.depth == d + 1 => {
                let current = self.entries.last_mut().expect("inside an entry");
                match c {
                    Capture::SlashComments | Capture::ThrTotal => {
                        if let Ok(n) = value.parse::<u32>() {
                            current.comment_count = Some(n);
                        }
                    }
                    Capture::OrigLink if !value.is_empty() => {
                        current.orig_link = Some(value.to_string())
                    }
                    Capture::CommentRss if !value.is_empty() => {
                        current
                            .comment_feed
                            .get_or_insert_with(|| value.to_string());
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        if self.entry_depth == Some(self.depth) {
            self.entry_depth = None;
        }
        self.depth = self.depth.saturating_sub(1);
    }

    fn finish(self) -> Scan {
        let frequency = self.frequency.unwrap_or(1);
        Scan {
            entries: self.entries,
            update_every: self
                .period
                .map(|p| std::time::Duration::from_secs(p / frequency)),
        }
    }
}

fn attr(
    resolver: &NamespaceResolver,
    e: &BytesStart,
    ns: Option<&str>,
    name: &str,
) -> Option<String> {
    e.attributes().flatten().find_map(|a| {
        let (resolved, local) = resolver.resolve_attribute(a.key);
        let ns_ok = match (ns, &resolved) {
            (None, ResolveResult::Unbound) => true,
            (Some(want), Bound(n)) => n.as_ref() == want,
            _ => false,
        };
        (ns_ok && local.as_ref() == name)
            .then(|| {
                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .ok()
                    .map(|v| v.trim().to_string())
            })
            .flatten()
    })
}

fn in_reply_to(resolver: &NamespaceResolver, e: &BytesStart) -> Option<InReplyTo> {
    let reference = attr(resolver, e, None, "ref")?;
    Some(InReplyTo {
        reference,
        href: attr(resolver, e, None, "href"),
    })
}

fn replies_link(resolver: &NamespaceResolver, e: &BytesStart, out: &mut EntryExtensions) {
    if attr(resolver, e, None, "rel").as_deref() != Some("replies") {
        return;
    }
    if let Some(n) = attr(resolver, e, Some(NS_THREAD), "count").and_then(|c| c.parse().ok()) {
        // `thr:total` on the entry wins over a link's count.
        out.comment_count.get_or_insert(n);
    }
    let is_feed = attr(resolver, e, None, "type").is_some_and(|t| {
        let t = t.to_ascii_lowercase();
        t.contains("atom") || t.contains("rss") || t.contains("xml") || t.contains("json")
    });
    if is_feed && let Some(href) = attr(resolver, e, None, "href") {
        out.comment_feed.get_or_insert(href);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_namespaces_not_prefixes() {
        let xml = br#"<?xml version="1.0"?>
<rss xmlns:s="http://purl.org/rss/1.0/modules/slash/" xmlns:slash="urn:not-slash"
     xmlns:fb="http://rssnamespace.org/feedburner/ext/1.0"><channel>
  <item><s:comments>4</s:comments><fb:origLink>https://a.example/x?a=1&amp;b=2</fb:origLink></item>
  <item><slash:comments>9</slash:comments></item>
</channel></rss>"#;
        let found = scan(xml).entries;
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].comment_count, Some(4));
        assert_eq!(
            found[0].orig_link.as_deref(),
            Some("https://a.example/x?a=1&b=2")
        );
        assert_eq!(
            found[1].comment_count, None,
            "wrong namespace must not count"
        );
    }

    #[test]
    fn reads_the_syndication_module() {
        let xml = br#"<rss xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"><channel>
  <sy:updatePeriod>
    hourly  </sy:updatePeriod><sy:updateFrequency>2</sy:updateFrequency><item/></channel></rss>"#;
        assert_eq!(
            scan(xml).update_every,
            Some(std::time::Duration::from_secs(1800))
        );
    }

    #[test]
    fn reads_atom_threading() {
        let xml = br#"<feed xmlns="http://www.w3.org/2005/Atom" xmlns:t="http://purl.org/syndication/thread/1.0">
  <entry><id>a</id><link rel="replies" type="application/atom+xml" href="https://b.example/a/feed" t:count="7"/></entry>
  <entry><id>b</id><t:total>3</t:total><link rel="replies" type="text/html" href="https://b.example/b#c" t:count="2"/></entry>
  <entry><id>c</id><t:in-reply-to ref="a" href="https://b.example/a"/></entry>
</feed>"#;
        let found = scan(xml).entries;
        assert_eq!(found[0].comment_count, Some(7));
        assert_eq!(
            found[0].comment_feed.as_deref(),
            Some("https://b.example/a/feed")
        );
        assert_eq!(found[1].comment_count, Some(3));
        assert_eq!(found[1].comment_feed, None);
        assert_eq!(found[2].in_reply_to[0].reference, "a");
    }
}
