//! Comments: turning a comments feed into comments with ways to find their
//! story, and the rules for which comment feeds may be followed. Pure; the
//! poller fetches and the store joins.

use std::collections::HashMap;

use url::Url;

use crate::model::{Comment, IncomingComment, ItemId, ParsedEntry, ParsedFeed, Target};
use crate::normalize::{canonical_link, fresh_id};
use crate::parse::InReplyTo;
use crate::text::html_excerpt;

/// Comments from a site-wide comments feed of feed `feed`, oldest first so
/// a parent is joined before its replies. Each comment carries its ways to
/// its story: RFC 4685 `thr:in-reply-to` (the story's id, or a parent
/// comment's), else its link without the `#comment-N` fragment.
pub fn from_site_feed(
    feed: &str,
    parsed: ParsedFeed,
    replies: Vec<Vec<InReplyTo>>,
    excerpt_chars: usize,
) -> Vec<IncomingComment> {
    let mut out: Vec<IncomingComment> = parsed
        .entries
        .into_iter()
        .zip(replies.into_iter().chain(std::iter::repeat(Vec::new())))
        .map(|(entry, refs)| {
            let mut targets = Vec::new();
            for r in &refs {
                // The parent is the story (its id, scoped to the feed as
                // stored ids are) or another comment.
                targets.push(Target::Item(fresh_id(
                    feed,
                    Some(&r.reference),
                    None,
                    &ParsedEntry::default(),
                )));
                targets.push(Target::Comment(r.reference.clone()));
                if let Some(link) = r.href.as_deref().and_then(story_link) {
                    targets.push(Target::Link(link));
                }
            }
            for link in [entry.link.as_deref(), entry.guid.as_deref()]
                .into_iter()
                .flatten()
            {
                if let Some(link) = story_link(link)
                    && !targets.contains(&Target::Link(link.clone()))
                {
                    targets.push(Target::Link(link));
                }
            }
            IncomingComment {
                comment: comment(entry, excerpt_chars),
                targets,
            }
        })
        .collect();
    oldest_first(&mut out);
    resolve_chains(&mut out);
    keep_newest(&mut out);
    out
}

/// Comments from one story's own comment feed: the story is known.
pub fn from_item_feed(
    item: ItemId,
    parsed: ParsedFeed,
    excerpt_chars: usize,
) -> Vec<IncomingComment> {
    let mut out: Vec<IncomingComment> = parsed
        .entries
        .into_iter()
        .map(|entry| IncomingComment {
            comment: comment(entry, excerpt_chars),
            targets: vec![Target::Item(item)],
        })
        .collect();
    oldest_first(&mut out);
    keep_newest(&mut out);
    out
}

/// Comments taken from one comments document, at most: the newest. A
/// comments feed lists tens (WordPress: 10 by default); a document with
/// more is an archive or an attack, and a poll holds every comment it read
/// until its one write.
pub const MAX_COMMENTS_PER_DOCUMENT: usize = 500;

/// The newest [`MAX_COMMENTS_PER_DOCUMENT`] of comments in oldest-first order.
fn keep_newest(comments: &mut Vec<IncomingComment>) {
    let extra = comments.len().saturating_sub(MAX_COMMENTS_PER_DOCUMENT);
    comments.drain(..extra);
}

fn oldest_first(comments: &mut [IncomingComment]) {
    // Feeds list newest first; a stable sort keeps that order for equal or
    // missing dates, reversed.
    comments.reverse();
    comments.sort_by_key(|c| c.comment.published);
}

/// A reply whose parent comment is in the same document inherits the
/// parent's ways to the story, so a reply to a reply finds it even when
/// it names no story link of its own.
fn resolve_chains(comments: &mut [IncomingComment]) {
    let by_id: HashMap<String, Vec<Target>> = comments
        .iter()
        .map(|c| (c.comment.id.clone(), c.targets.clone()))
        .collect();
    for c in comments.iter_mut() {
        let mut extra = Vec::new();
        let mut frontier: Vec<String> = c
            .targets
            .iter()
            .filter_map(|t| match t {
                Target::Comment(id) => Some(id.clone()),
                _ => None,
            })
            .collect();
        // Bounded: a comment cycle in a hostile feed must not hang us.
        for _ in 0..16 {
            let Some(parent) = frontier.pop() else { break };
            for t in by_id.get(&parent).into_iter().flatten() {
                if let Target::Comment(grand) = t {
                    frontier.push(grand.clone());
                }
                if !c.targets.contains(t) && !extra.contains(t) {
                    extra.push(t.clone());
                }
            }
        }
        c.targets.extend(extra);
    }
}

fn comment(entry: ParsedEntry, excerpt_chars: usize) -> Comment {
    let author = entry
        .authors
        .first()
        .cloned()
        .or_else(|| author_from_title(&entry.title));
    let html = entry
        .content
        .as_deref()
        .or(entry.summary.as_deref())
        .unwrap_or_default();
    let text = html_excerpt(html, excerpt_chars);
    let id = entry
        .guid
        .clone()
        .or_else(|| entry.link.clone())
        .unwrap_or_else(|| format!("{}|{text}", author.as_deref().unwrap_or("")));
    Comment {
        id,
        author,
        text,
        url: entry.link,
        // A date every output can print, or none.
        published: entry
            .published
            .filter(|t| (1970..=9999).contains(&chrono::Datelike::year(t))),
    }
}

/// WordPress titles comments "Comment on STORY by NAME" in the site feed
/// and "By: NAME" in a story's own feed.
pub fn author_from_title(title: &str) -> Option<String> {
    let name = if let Some(rest) = title.strip_prefix("By: ") {
        rest
    } else if title.starts_with("Comment on ") {
        title.rsplit_once(" by ")?.1
    } else {
        return None;
    };
    Some(name.trim().to_string()).filter(|n| !n.is_empty())
}

/// The story a comment link points into: canonical, without the
/// `#comment-N` fragment or a WordPress `comment-page-N/` segment.
pub fn story_link(link: &str) -> Option<String> {
    let canonical = canonical_link(link)?;
    let mut url = Url::parse(&canonical).ok()?;
    url.set_fragment(None);
    let path = url.path().to_string();
    if let Some(i) = path.find("/comment-page-") {
        url.set_path(&path[..=i]);
    }
    Some(url.into())
}

/// Whether a comment-feed URL found in feed content may be followed: same
/// host and port as one of the operator's URLs, with http and https on
/// their default ports counting as the same.
pub fn same_site(candidate: &Url, trusted: &[Url]) -> bool {
    let key = |u: &Url| {
        let port = match (u.scheme(), u.port_or_known_default()) {
            ("http", Some(80)) | ("https", Some(443)) => None,
            (_, p) => p,
        };
        (u.host_str().map(str::to_ascii_lowercase), port)
    };
    matches!(candidate.scheme(), "http" | "https")
        && trusted
            .iter()
            .any(|t| matches!(t.scheme(), "http" | "https") && key(t) == key(candidate))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_comments_document_gives_its_newest_comments_only() {
        use chrono::TimeZone;
        let entries = (0..MAX_COMMENTS_PER_DOCUMENT + 50)
            .map(|n| ParsedEntry {
                guid: Some(format!("c{n}")),
                title: format!("Comment {n}"),
                published: Some(
                    chrono::Utc
                        .timestamp_opt(1_700_000_000 + n as i64, 0)
                        .unwrap(),
                ),
                ..Default::default()
            })
            .collect();
        let parsed = ParsedFeed {
            entries,
            ..Default::default()
        };
        let out = from_item_feed(ItemId([1; 16]), parsed, 200);
        assert_eq!(out.len(), MAX_COMMENTS_PER_DOCUMENT);
        assert_eq!(out[0].comment.id, "c50", "the oldest fifty are left out");
        assert_eq!(
            out.last().unwrap().comment.id,
            format!("c{}", MAX_COMMENTS_PER_DOCUMENT + 49)
        );
    }

    use super::*;

    #[test]
    fn authors_from_wordpress_titles() {
        let cases = [
            (
                "Comment on Infiniti Production To Leave Japan by Lou_BC",
                Some("Lou_BC"),
            ),
            (
                "Comment on Stand by Me by the Road by sirwired",
                Some("sirwired"),
            ),
            ("By: G35 Owner", Some("G35 Owner")),
            ("A story title", None),
            ("Comment on Nothing", None),
        ];
        for (title, want) in cases {
            assert_eq!(author_from_title(title).as_deref(), want, "{title}");
        }
    }

    #[test]
    fn story_links_drop_comment_anchors_and_pages() {
        assert_eq!(
            story_link("https://www.example.com/2012/04/story/#comment-1966120").as_deref(),
            Some("https://www.example.com/2012/04/story/")
        );
        assert_eq!(
            story_link("https://www.example.com/2012/04/story/comment-page-2/#comment-5")
                .as_deref(),
            Some("https://www.example.com/2012/04/story/")
        );
    }

    #[test]
    fn same_site_rules() {
        let trusted = [Url::parse("https://cars.example/feed/").unwrap()];
        let ok = |s: &str| same_site(&Url::parse(s).unwrap(), &trusted);
        assert!(ok("https://cars.example/2012/04/a/feed/"));
        assert!(
            ok("http://cars.example/2012/04/a/feed/"),
            "default ports count as the same"
        );
        assert!(ok("https://CARS.example:443/x"));
        assert!(!ok("https://cars.example:8443/x"));
        assert!(!ok("https://evil.example/feed/"));
        assert!(!ok("https://sub.cars.example/feed/"));
    }

    fn entry(id: &str, link: &str) -> ParsedEntry {
        ParsedEntry {
            guid: Some(id.into()),
            link: Some(link.into()),
            title: format!("By: {id}"),
            content: Some(format!("<p>Comment <b>{id}</b></p>")),
            ..Default::default()
        }
    }

    #[test]
    fn replies_to_replies_inherit_the_story() {
        let feed = ParsedFeed {
            entries: vec![
                ParsedEntry {
                    link: None,
                    ..entry("c3", "")
                },
                entry("c2", "https://cars.example/a#comment-2"),
            ],
            ..Default::default()
        };
        let refs = vec![
            vec![InReplyTo {
                reference: "c2".into(),
                href: None,
            }],
            vec![],
        ];
        let comments = from_site_feed("f", feed, refs, 100);
        let c3 = comments.iter().find(|c| c.comment.id == "c3").unwrap();
        assert!(
            c3.targets
                .contains(&Target::Link("https://cars.example/a".into())),
            "{c3:?}"
        );
        assert_eq!(c3.comment.text, "Comment c3");
        assert_eq!(c3.comment.author.as_deref(), Some("c3"));
    }
}
