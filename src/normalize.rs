//! Pure identity rules: canonical links, stable ids, and dedupe within one
//! feed document (the store applies the same keys across feeds); and the
//! bounds every stored story keeps, applied once, here.

use std::collections::HashSet;
use std::time::Duration;

use sha2::{Digest, Sha256};
use url::Url;

use crate::model::{Candidate, ItemId, ParsedEntry, Timestamp};
use crate::text::{clean_html, cut_chars, xml_chars};

/// Longest title kept, in characters.
pub const MAX_TITLE_CHARS: usize = 1000;
/// Longest author name or category kept, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Most authors, and most categories, kept per story.
pub const MAX_NAMES: usize = 50;
/// Longest link kept (article, image, comments), in bytes; a longer one is
/// dropped. A longer guid is kept as its SHA-256.
pub const MAX_URL_BYTES: usize = 4096;
/// A date later than this past the poll is no date: feeds that put stories
/// in the year 10000 would pin every output's `updated` there.
pub const MAX_FUTURE: Duration = Duration::from_secs(86_400);

/// Query parameters that identify a campaign or a click, never a page.
/// Matched case-insensitively; `utm_` is a prefix.
const TRACKING_PARAMS: &[&str] = &[
    "fbclid",
    "gclid",
    "dclid",
    "gbraid",
    "wbraid",
    "msclkid",
    "yclid",
    "twclid",
    "igshid",
    "mc_cid",
    "mc_eid",
    "_hsenc",
    "_hsmi",
    "mkt_tok",
    "ncid",
    "cmpid",
    "guccounter",
    "soc_src",
    "soc_trk",
    "sr_share",
    "oly_anon_id",
    "oly_enc_id",
    "vero_id",
    "wt.mc_id",
    "_ga",
    "_gl",
];

/// The canonical form of an article link: scheme and host lowercased,
/// default port, credentials, tracking parameters and navigation fragments
/// (`#more-12`, `#respond`) dropped. Other fragments name something within
/// the page (`#comment-123`) and stay: they tell entries apart. Returns
/// `None` for anything that is not an absolute http(s) URL.
pub fn canonical_link(link: &str) -> Option<String> {
    let mut url = Url::parse(link.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    if !url.username().is_empty() || url.password().is_some() {
        let _ = url.set_username("");
        let _ = url.set_password(None);
    }
    if url.fragment().is_some_and(is_navigation) {
        url.set_fragment(None);
    }
    if url.query().is_some() {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| !is_tracking(k))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
    }
    Some(url.into())
}

/// Fragments that jump within a story's page rather than name a part of
/// it: WordPress's "read more" and comment-form anchors, page landmarks,
/// and tracking parameters some sites put after the `#`.
fn is_navigation(fragment: &str) -> bool {
    const JUMPS: &[&str] = &[
        "",
        "more",
        "respond",
        "comments",
        "comment-form",
        "reply-title",
        "disqus_thread",
        "top",
        "main",
        "content",
        "main-content",
        "page",
    ];
    let f = fragment.to_ascii_lowercase();
    JUMPS.contains(&f.as_str())
        || f.strip_prefix("more-")
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        || f.starts_with("utm_")
        || f.starts_with("xtor=")
}

fn is_tracking(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.starts_with("utm_") || TRACKING_PARAMS.contains(&key.as_str())
}

fn hash_id(parts: &[&str]) -> ItemId {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    let digest = h.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    ItemId(id)
}

/// The id an entry gets when first stored: from the feed's guid (scoped to
/// the feed, since guids like "123" are only unique within a site), else
/// from the canonical link, else from title and date.
pub fn fresh_id(
    feed: &str,
    guid: Option<&str>,
    canonical: Option<&str>,
    entry: &ParsedEntry,
) -> ItemId {
    match (guid, canonical) {
        (Some(g), _) => hash_id(&["guid", feed, g]),
        (None, Some(link)) => hash_id(&["link", link]),
        (None, None) => {
            let date = entry.published.map(|d| d.to_rfc3339()).unwrap_or_default();
            hash_id(&["title", feed, &entry.title, &date])
        }
    }
}

/// Turns a feed's parsed entries into candidates for the store: at most
/// `max` of them (the newest by date, in document order), each
/// [`tidy`]ed, dropping entries that repeat one already in the same
/// document: the same id, or the same canonical link (one link is one
/// story, in a document as across feeds; the first wins, as feeds list
/// newest first). A comment feed's entries stay apart by their links'
/// `#comment-N` fragments, which canonical links keep.
pub fn candidates(
    feed: &str,
    entries: Vec<ParsedEntry>,
    max: usize,
    now: Timestamp,
) -> Vec<Candidate> {
    let entries = newest(entries, max);
    let mut seen_ids = HashSet::new();
    let mut seen_links = HashSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for mut entry in entries {
        tidy(&mut entry, now);
        let canonical = entry.link.as_deref().and_then(canonical_link);
        if canonical.is_some() {
            entry.link.clone_from(&canonical);
        }
        if entry.title.is_empty() && canonical.is_none() && entry.guid.is_none() {
            continue; // nothing to show and nothing to know it by
        }
        let id = fresh_id(feed, entry.guid.as_deref(), canonical.as_deref(), &entry);
        if !seen_ids.insert(id) {
            continue;
        }
        if let Some(link) = &canonical
            && !seen_links.insert(link.clone())
        {
            continue;
        }
        out.push(Candidate {
            fresh_id: id,
            canonical_link: canonical,
            entry,
        });
    }
    out
}

/// The `max` newest entries (by stated date; undated ones count as older
/// than every dated one), kept in document order.
fn newest(mut entries: Vec<ParsedEntry>, max: usize) -> Vec<ParsedEntry> {
    if entries.len() <= max {
        return entries;
    }
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|&a, &b| {
        let date = |i: usize| entries[i].published.or(entries[i].updated);
        date(b).cmp(&date(a)).then(a.cmp(&b))
    });
    let mut keep = vec![false; entries.len()];
    for &i in &order[..max] {
        keep[i] = true;
    }
    let mut i = 0;
    entries.retain(|_| {
        i += 1;
        keep[i - 1]
    });
    entries
}

/// Bounds one entry as every stored story is bounded: HTML sanitized and
/// cut ([`crate::text::clean_html`]), text fields cut and free of the
/// characters XML forbids, overlong links dropped, dates outside
/// 1970..`now` + [`MAX_FUTURE`] dropped (an output could not say them, or
/// they would pin its `updated`).
pub fn tidy(entry: &mut ParsedEntry, now: Timestamp) {
    let text = |s: &str, max: usize| xml_chars(cut_chars(s, max)).trim().to_string();
    entry.title = text(&entry.title, MAX_TITLE_CHARS);
    entry.guid = entry.guid.take().map(|g| {
        if g.len() > MAX_URL_BYTES {
            format!("sha256:{:x}", Sha256::digest(g.as_bytes()))
        } else {
            xml_chars(&g).into_owned()
        }
    });
    for names in [&mut entry.authors, &mut entry.categories] {
        names.truncate(MAX_NAMES);
        for n in names.iter_mut() {
            *n = text(n, MAX_NAME_CHARS);
        }
        names.retain(|n| !n.is_empty());
    }
    let links = [
        &mut entry.link,
        &mut entry.image,
        &mut entry.comments.page_url,
        &mut entry.comments.feed_url,
    ];
    for link in links {
        if link.as_ref().is_some_and(|l| l.len() > MAX_URL_BYTES) {
            *link = None;
        }
    }
    for html in [&mut entry.summary, &mut entry.content] {
        *html = html
            .as_deref()
            .map(clean_html)
            .filter(|h| !h.trim().is_empty());
    }
    let latest = crate::model::later(now, MAX_FUTURE);
    let believable = |t: &Timestamp| *t >= chrono::DateTime::UNIX_EPOCH && *t <= latest;
    entry.published = entry.published.filter(believable);
    entry.updated = entry.updated.filter(believable);
}

/// What [`tidy`] does to text and HTML, for a story stored before ingest
/// did it (see the store's one-time cleaning at open).
pub fn tidy_stored(item: &mut crate::model::Item) {
    item.title = xml_chars(cut_chars(&item.title, MAX_TITLE_CHARS)).into_owned();
    for html in [&mut item.summary, &mut item.content] {
        *html = html.as_deref().map(clean_html);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_links() {
        let cases = [
            (
                "https://WWW.TheTruthAboutCars.com/2012/04/infiniti/?utm_source=rss&utm_medium=rss#more",
                Some("https://www.thetruthaboutcars.com/2012/04/infiniti/"),
            ),
            (
                "HTTP://Example.com:80/a?id=7&fbclid=x&gclid=y",
                Some("http://example.com/a?id=7"),
            ),
            (
                "https://a.example/p?UTM_Campaign=x&page=2",
                Some("https://a.example/p?page=2"),
            ),
            (
                "https://a.example/p?mc_cid=1&mc_eid=2",
                Some("https://a.example/p"),
            ),
            (
                "https://a.example:8443/x#comment-5",
                Some("https://a.example:8443/x#comment-5"),
            ),
            (
                "https://user:secret@a.example/x#more-4411",
                Some("https://a.example/x"),
            ),
            ("https://a.example/x#respond", Some("https://a.example/x")),
            ("mailto:editor@example.com", None),
            ("/relative/path", None),
            ("", None),
        ];
        for (input, want) in cases {
            assert_eq!(canonical_link(input).as_deref(), want, "input {input:?}");
        }
    }

    fn entry(guid: Option<&str>, link: Option<&str>, title: &str) -> ParsedEntry {
        ParsedEntry {
            guid: guid.map(str::to_string),
            link: link.map(str::to_string),
            title: title.to_string(),
            ..Default::default()
        }
    }

    #[test]
    fn ids_are_stable_and_scoped() {
        let e = entry(Some("42"), Some("https://a.example/x"), "T");
        let a = fresh_id("one", Some("42"), None, &e);
        assert_eq!(
            a,
            fresh_id("one", Some("42"), None, &e),
            "same input, same id"
        );
        assert_ne!(
            a,
            fresh_id("two", Some("42"), None, &e),
            "guids are scoped to a feed"
        );
        let by_link = fresh_id("one", None, Some("https://a.example/x"), &e);
        assert_eq!(
            by_link,
            fresh_id("two", None, Some("https://a.example/x"), &e)
        );
        let untitled = fresh_id("one", None, None, &e);
        assert_ne!(
            untitled,
            fresh_id("one", None, None, &entry(None, None, "U"))
        );
    }

    #[test]
    fn duplicates_within_a_document_are_dropped() {
        let entries = vec![
            entry(
                Some("1"),
                Some("https://a.example/x?utm_source=rss"),
                "First",
            ),
            entry(Some("1"), Some("https://a.example/y"), "Same guid"),
            entry(Some("2"), Some("https://a.example/x#more-12"), "Same link"),
            entry(None, None, "Only a title"),
            entry(None, None, ""),
        ];
        let c = candidates("f", entries, 100, chrono::Utc::now());
        let titles: Vec<_> = c.iter().map(|c| c.entry.title.as_str()).collect();
        assert_eq!(titles, ["First", "Only a title"]);
        assert_eq!(c[0].entry.link.as_deref(), Some("https://a.example/x"));
        // Without guids, one link is one entry.
        let c = candidates(
            "f",
            vec![
                entry(None, Some("https://a.example/x"), "A"),
                entry(None, Some("https://a.example/x?utm_source=rss"), "B"),
            ],
            100,
            chrono::Utc::now(),
        );
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn a_comment_feed_keeps_every_comment() {
        // WordPress per-post comment feeds: one post, thirty comments, each
        // linking to its own fragment and with its own guid.
        let entries = (1..=30)
            .map(|n| {
                let link = format!("https://cars.example/post/#comment-{n}");
                entry(
                    Some(&format!("https://cars.example/?p=1&cid={n}")),
                    Some(&link),
                    "On post",
                )
            })
            .collect();
        let c = candidates("comments", entries, 100, chrono::Utc::now());
        assert_eq!(c.len(), 30);
        assert_eq!(
            c[4].entry.link.as_deref(),
            Some("https://cars.example/post/#comment-5")
        );
    }

    #[test]
    fn entries_are_bounded_and_the_newest_kept() {
        use chrono::TimeZone;
        let now = chrono::Utc.with_ymd_and_hms(2026, 11, 21, 8, 0, 0).unwrap();
        let mut e = entry(
            Some("g"),
            Some("https://a.example/x"),
            &"t\u{0}".repeat(5000),
        );
        e.published = Some(chrono::Utc.with_ymd_and_hms(9999, 1, 1, 0, 0, 0).unwrap());
        e.updated = Some(chrono::Utc.with_ymd_and_hms(1600, 1, 1, 0, 0, 0).unwrap());
        e.authors = vec!["x".repeat(1000); 500];
        e.image = Some(format!("https://a.example/{}", "i".repeat(MAX_URL_BYTES)));
        e.content = Some(format!(
            "{}deep{}",
            "<div>".repeat(50_000),
            "</div>".repeat(50_000)
        ));
        let c = &candidates("f", vec![e], 10, now)[0].entry;
        assert_eq!(c.title.chars().count(), MAX_TITLE_CHARS / 2);
        assert!(!c.title.contains('\u{0}'));
        assert_eq!((c.published, c.updated), (None, None));
        assert_eq!(c.authors.len(), MAX_NAMES);
        assert_eq!(c.authors[0].chars().count(), MAX_NAME_CHARS);
        assert_eq!(c.image, None);
        assert_eq!(c.content.as_deref(), Some("<p>deep</p>"));

        let dated = |n: i64| {
            let mut e = entry(Some(&n.to_string()), None, "x");
            e.published = Some(now - chrono::Duration::days(n));
            e
        };
        // Oldest first in the document: the two newest are kept, in order.
        let c = candidates("f", vec![dated(5), dated(1), dated(9), dated(2)], 2, now);
        let guids: Vec<_> = c.iter().map(|c| c.entry.guid.as_deref().unwrap()).collect();
        assert_eq!(guids, ["1", "2"]);
    }
}
