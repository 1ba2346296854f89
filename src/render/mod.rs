//! Stored data to bytes: Atom, RSS and JSON Feed. Pure functions of the
//! items and a description of the channel; no store, no clock, no network.

mod atom;
pub mod digest;
pub mod html;
mod jsonfeed;
mod rss;

pub use atom::atom;
pub use jsonfeed::{CommentView, json_feed, json_feed_rising};
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
    /// A WebSub hub that pushes this output (`rel="hub"`), when there is one.
    pub hub: Option<String>,
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

/// A time every output format can say: RFC 2822 and RFC 3339 have
/// four-digit years. Stories are stored with believable dates (see
/// `normalize::tidy`); this keeps a renderer total whatever it is given.
/// What a story gained, in words: "+12 comments in the last 6 hours"
/// ("at least" when the count is a lower bound).
pub fn gain_line(heat: &crate::stories::Heat, now: Timestamp) -> String {
    let n = heat.gained;
    let comments = if n == 1 { "comment" } else { "comments" };
    let bound = if heat.lower_bound { "at least " } else { "" };
    let minutes = heat
        .since
        .and_then(|s| (now - s).to_std().ok())
        .map_or(0, |d| d.as_secs().div_ceil(60))
        .max(1);
    let span = match minutes {
        m if m < 60 => format!("{m} minute{}", if m == 1 { "" } else { "s" }),
        m => {
            let h = m.div_ceil(60);
            format!("{h} hour{}", if h == 1 { "" } else { "s" })
        }
    };
    format!("+{bound}{n} {comments} in the last {span}")
}

/// The story as a rising feed shows it in Atom and RSS: its gain as a
/// first line of its summary.
pub fn with_gain_line(item: &Item, heat: &crate::stories::Heat, now: Timestamp) -> Item {
    let line = format!("<p>{}</p>", gain_line(heat, now));
    let mut shown = item.clone();
    shown.summary = Some(match (&item.summary, &item.content) {
        (Some(s), _) => format!("{line}{s}"),
        (None, Some(c)) => {
            let excerpt = crate::text::html_excerpt(c, 400);
            format!("{line}<p>{}</p>", html_escape::encode_text(&excerpt))
        }
        (None, None) => line,
    });
    shown
}

pub fn date(t: Timestamp) -> Timestamp {
    static FIRST: LazyLock<Timestamp> = LazyLock::new(|| {
        chrono::DateTime::parse_from_rfc3339("0001-01-01T00:00:00Z")
            .expect("a valid time")
            .to_utc()
    });
    static LAST: LazyLock<Timestamp> = LazyLock::new(|| {
        chrono::DateTime::parse_from_rfc3339("9999-12-31T23:59:59Z")
            .expect("a valid time")
            .to_utc()
    });
    t.clamp(*FIRST, *LAST)
}

/// The newest change among `items`, for the channel's `updated`.
fn newest(items: &[Item], fallback: Timestamp) -> Timestamp {
    let newest = items
        .iter()
        .map(|i| i.updated.unwrap_or(i.sort_time()).max(i.last_changed))
        .max()
        .unwrap_or(fallback);
    date(newest)
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
            hub: None,
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
            // As stored: sanitized at ingest (see `text::clean_html`).
            summary: Some(crate::text::clean_html(
                "<p>Nissan’s upscale <script>alert(1)</script>cars</p>",
            )),
            content: Some(crate::text::clean_html(
                "<p onclick=\"x()\">Full <a href=\"javascript:alert(2)\">story</a></p>",
            )),
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
            comment_history: Vec::new(),
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
