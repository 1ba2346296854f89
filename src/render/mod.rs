//! Stored data to bytes: Atom, RSS and JSON Feed. Pure functions of the
//! items and a description of the channel; no store, no clock, no network.

mod atom;
pub mod digest;
pub mod html;
mod jsonfeed;
mod rss;

pub use atom::atom;
pub use jsonfeed::{CommentView, json_feed};
pub use rss::rss;

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::model::{Item, Timestamp};

pub const NS_THREAD: &str = "http://purl.org/syndication/thread/1.0";
pub const NS_SLASH: &str = "http://purl.org/rss/1.0/modules/slash/";
pub const NS_WFW: &str = "http://wellformedweb.org/CommentAPI/";

/// The merged feed being rendered.
#[derive(Debug, Clone)]
pub struct Channel {
    pub title: String,
    /// This output's own URL (`rel="self"`); also its Atom id.
    pub self_url: String,
    /// The HTML page for humans.
    pub home_url: String,
    /// Shown when the channel has no items.
    pub updated: Timestamp,
}

/// How an output names a source feed.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedInfo {
    pub id: String,
    pub title: String,
    /// The feed's public URL: its origin for http(s) feeds, Paddock's
    /// republished copy for local files (a server path is nobody's business).
    pub url: String,
    pub site: Option<String>,
}

pub type Directory = HashMap<String, FeedInfo>;

/// Feed HTML made safe to republish: no scripts, no event handlers, no
/// `javascript:` URLs. Readers sanitize too, but we do not rely on it.
pub fn safe_html(html: &str) -> String {
    static CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
        let mut b = ammonia::Builder::default();
        b.link_rel(Some("noopener noreferrer nofollow"));
        b
    });
    CLEANER.clean(html).to_string()
}

/// The newest change among `items`, for the channel's `updated`.
fn newest(items: &[Item], fallback: Timestamp) -> Timestamp {
    items
        .iter()
        .map(|i| i.updated.unwrap_or(i.sort_time()).max(i.last_changed))
        .max()
        .unwrap_or(fallback)
}

fn feed_info(feeds: &Directory, id: &str) -> FeedInfo {
    feeds.get(id).cloned().unwrap_or_else(|| FeedInfo {
        id: id.to_string(),
        title: id.to_string(),
        url: String::new(),
        site: None,
    })
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::model::{CommentInfo, ItemId};
    use chrono::TimeZone;

    pub fn channel() -> Channel {
        Channel {
            title: "Auto news".into(),
            self_url: "http://127.0.0.1:8080/feed.atom".into(),
            home_url: "http://127.0.0.1:8080/".into(),
            updated: chrono::Utc.with_ymd_and_hms(2026, 11, 21, 8, 0, 0).unwrap(),
        }
    }

    pub fn directory() -> Directory {
        let mut d = Directory::new();
        d.insert(
            "ttac".into(),
            FeedInfo {
                id: "ttac".into(),
                title: "The Truth About Cars".into(),
                url: "https://www.thetruthaboutcars.com/feed/".into(),
                site: Some("https://www.thetruthaboutcars.com/".into()),
            },
        );
        d
    }

    pub fn item() -> Item {
        let t = chrono::Utc.with_ymd_and_hms(2012, 4, 5, 14, 30, 0).unwrap();
        Item {
            id: ItemId([7; 16]),
            feed: "ttac".into(),
            also_in: vec!["wire".into()],
            guid: Some("https://www.thetruthaboutcars.com/?p=438921".into()),
            title: "Infiniti Production To Leave Japan & <Go> West".into(),
            link: Some("https://www.thetruthaboutcars.com/2012/04/infiniti/".into()),
            authors: vec!["Bertel Schmitt".into()],
            summary: Some("<p>Nissan’s upscale <script>alert(1)</script>cars</p>".into()),
            content: Some(
                "<p onclick=\"x()\">Full <a href=\"javascript:alert(2)\">story</a></p>".into(),
            ),
            published: Some(t),
            updated: None,
            first_seen: t,
            last_changed: t,
            categories: vec!["Infiniti".into()],
            image: None,
            recent_comments: vec![crate::model::Comment {
                id: "c1".into(),
                author: Some("Lou_BC".into()),
                text: "I’ve never used the jack".into(),
                url: Some("https://www.thetruthaboutcars.com/2012/04/infiniti/#comment-1".into()),
                published: Some(t),
            }],
            comments_seen: 1,
            comments: CommentInfo {
                source: Some(crate::model::CountSource::Feed),
                count: Some(4),
                page_url: Some(
                    "https://www.thetruthaboutcars.com/2012/04/infiniti/#respond".into(),
                ),
                feed_url: Some("https://www.thetruthaboutcars.com/2012/04/infiniti/feed/".into()),
            },
        }
    }
}
