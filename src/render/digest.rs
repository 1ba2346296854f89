//! The digest for newsletter tooling: the stories first seen in a window,
//! with their comments and each feed's health. Schema version 1, described
//! in `schema/digest.schema.json`.

use serde::Serialize;

use super::{CommentView, Directory, feed_info};
use crate::model::{Item, RecentComment, Timestamp};
use crate::text::html_excerpt;

pub const DIGEST_VERSION: u32 = 1;
/// Stories named in `most_discussed`, at most.
pub const MOST_DISCUSSED: usize = 5;
/// Stories named in `rising`, at most.
pub const RISING: usize = 5;
/// Plain-text summary length, in characters.
pub const SUMMARY_CHARS: usize = 400;

/// Everything a digest shows, gathered by the caller.
pub struct DigestInput<'a> {
    pub title: &'a str,
    pub generated_at: Timestamp,
    pub since: Timestamp,
    pub until: Timestamp,
    pub next_since: Timestamp,
    pub group: Option<&'a str>,
    /// The window's stories, in any order.
    pub items: &'a [Item],
    /// Recent comments in the window, newest first.
    pub comments: &'a [RecentComment],
    pub feeds: Vec<FeedHealth>,
    pub directory: &'a Directory,
    /// The groups of each feed id.
    pub groups: &'a dyn Fn(&str) -> Vec<String>,
    /// `[output].heat_window`: what `comments_gained` and `rising` count.
    pub heat_window: std::time::Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct FeedHealth {
    pub id: String,
    pub title: String,
    pub ok: bool,
    pub last_error: Option<String>,
    pub last_success: Option<Timestamp>,
}

#[derive(Serialize)]
pub struct Digest<'a> {
    pub version: u32,
    pub title: &'a str,
    pub generated_at: Timestamp,
    pub since: Timestamp,
    pub until: Timestamp,
    pub next_since: Timestamp,
    pub group: Option<&'a str>,
    pub empty: bool,
    pub items: Vec<DigestItem<'a>>,
    pub most_discussed: Vec<String>,
    pub rising: Vec<String>,
    pub recent_comments: Vec<DigestComment<'a>>,
    pub feeds: Vec<FeedHealth>,
}

#[derive(Serialize)]
pub struct DigestItem<'a> {
    pub id: String,
    pub title: &'a str,
    pub url: Option<&'a str>,
    pub feed: &'a str,
    pub feed_title: String,
    pub groups: Vec<String>,
    pub authors: &'a [String],
    pub published: Option<Timestamp>,
    pub first_seen: Timestamp,
    pub summary: String,
    pub image: Option<&'a str>,
    pub categories: &'a [String],
    pub comment_count: Option<u32>,
    pub comments_url: Option<&'a str>,
    pub recent_comments: Vec<CommentView<'a>>,
    pub also_in: &'a [String],
    /// Comments gained in the heat window (a lower bound when the count
    /// is).
    pub comments_gained: u32,
}

#[derive(Serialize)]
pub struct DigestComment<'a> {
    #[serde(flatten)]
    pub comment: CommentView<'a>,
    pub item_id: Option<String>,
}

/// Builds the digest document. Stories are listed newest first.
pub fn digest<'a>(input: &'a DigestInput<'a>) -> Digest<'a> {
    let mut items: Vec<&Item> = input.items.iter().collect();
    items.sort_by(|a, b| b.first_seen.cmp(&a.first_seen));
    let mut discussed: Vec<&Item> = items
        .iter()
        .copied()
        .filter(|i| i.comments.count.is_some_and(|n| n > 0))
        .collect();
    discussed.sort_by(|a, b| {
        b.comments
            .count
            .cmp(&a.comments.count)
            .then(b.first_seen.cmp(&a.first_seen))
    });
    let heat =
        |i: &Item| crate::stories::heat(&i.comment_history, input.heat_window, input.generated_at);
    let mut rising: Vec<(&Item, crate::stories::Heat)> = (items.iter())
        .map(|i| (*i, heat(i)))
        .filter(|(_, h)| h.heat > 0.0)
        .collect();
    rising.sort_by(|(a, ha), (b, hb)| {
        hb.heat
            .total_cmp(&ha.heat)
            .then(b.first_seen.cmp(&a.first_seen))
    });
    Digest {
        version: DIGEST_VERSION,
        title: input.title,
        generated_at: input.generated_at,
        since: input.since,
        until: input.until,
        next_since: input.next_since,
        group: input.group,
        empty: items.is_empty(),
        most_discussed: discussed
            .iter()
            .take(MOST_DISCUSSED)
            .map(|i| i.id.to_hex())
            .collect(),
        rising: rising
            .iter()
            .take(RISING)
            .map(|(i, _)| i.id.to_hex())
            .collect(),
        items: items
            .iter()
            .map(|i| digest_item(i, heat(i).gained, input))
            .collect(),
        recent_comments: input
            .comments
            .iter()
            .map(|c| DigestComment {
                comment: CommentView::from(&c.comment),
                item_id: c.item.map(|id| id.to_hex()),
            })
            .collect(),
        feeds: input.feeds.clone(),
    }
}

fn digest_item<'a>(i: &'a Item, comments_gained: u32, input: &DigestInput<'_>) -> DigestItem<'a> {
    let html = i.summary.as_deref().or(i.content.as_deref());
    DigestItem {
        id: i.id.to_hex(),
        title: &i.title,
        url: i.link.as_deref(),
        feed: &i.feed,
        feed_title: feed_info(input.directory, &i.feed).title,
        groups: (input.groups)(&i.feed),
        authors: &i.authors,
        published: i.published.map(super::date),
        first_seen: super::date(i.first_seen),
        summary: html.map_or_else(String::new, |h| html_excerpt(h, SUMMARY_CHARS)),
        image: i.image.as_deref(),
        categories: &i.categories,
        comment_count: i.comments.count,
        comments_url: i
            .comments
            .page_url
            .as_deref()
            .or(i.comments.feed_url.as_deref()),
        recent_comments: i.recent_comments.iter().map(CommentView::from).collect(),
        also_in: &i.also_in,
        comments_gained,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::model::ItemId;

    #[test]
    fn most_discussed_and_plain_summaries() {
        let mut quiet = item();
        quiet.id = ItemId([1; 16]);
        quiet.comments.count = Some(0);
        let mut busy = item();
        busy.id = ItemId([2; 16]);
        busy.comments.count = Some(90);
        let items = [item(), quiet, busy];
        let t = channel().updated;
        let groups = |_: &str| vec!["news".to_string()];
        let input = DigestInput {
            title: "Auto news",
            generated_at: t,
            since: t,
            until: t,
            next_since: t,
            group: None,
            items: &items,
            comments: &[],
            feeds: vec![],
            directory: &directory(),
            groups: &groups,
            heat_window: std::time::Duration::from_secs(86400),
        };
        let d = serde_json::to_value(digest(&input)).unwrap();
        assert_eq!(
            d["most_discussed"],
            serde_json::json!([
                "02020202020202020202020202020202",
                "07070707070707070707070707070707"
            ])
        );
        assert_eq!(d["items"][0]["summary"], "Nissan’s upscale cars");
        assert_eq!(d["items"][0]["groups"][0], "news");
        assert_eq!(d["items"][0]["feed_title"], "The Truth About Cars");
        assert_eq!(d["empty"], false);
    }
}
