//! Pure identity rules: canonical links, stable ids, and dedupe within one
//! feed document. The store applies the same keys across feeds.

use std::collections::HashSet;

use sha2::{Digest, Sha256};
use url::Url;

use crate::model::{Candidate, ItemId, ParsedEntry};

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
/// default port, fragment and tracking parameters dropped. Returns `None`
/// for anything that is not an absolute http(s) URL.
pub fn canonical_link(link: &str) -> Option<String> {
    let mut url = Url::parse(link.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    url.set_fragment(None);
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

/// Turns a feed's parsed entries into candidates for the store, dropping
/// entries that repeat one already in the same document (same id or same
/// canonical link; the first wins, as feeds list newest first).
pub fn candidates(feed: &str, entries: Vec<ParsedEntry>) -> Vec<Candidate> {
    let mut seen_ids = HashSet::new();
    let mut seen_links = HashSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for mut entry in entries {
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
                Some("https://a.example:8443/x"),
            ),
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
            entry(Some("2"), Some("https://a.example/x#c"), "Same link"),
            entry(None, None, "Only a title"),
            entry(None, None, ""),
        ];
        let c = candidates("f", entries);
        let titles: Vec<_> = c.iter().map(|c| c.entry.title.as_str()).collect();
        assert_eq!(titles, ["First", "Only a title"]);
        assert_eq!(c[0].entry.link.as_deref(), Some("https://a.example/x"));
    }
}
