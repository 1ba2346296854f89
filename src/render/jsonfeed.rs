use serde::Serialize;

use super::{Channel, Directory, date, feed_info};
use crate::model::{Comment, Item, Timestamp};
use crate::stories::Heat;

/// A JSON Feed 1.1 document; Paddock's additions live under `_paddock`, as
/// the spec asks of extensions.
pub fn json_feed(channel: &Channel, items: &[Item], feeds: &Directory) -> String {
    json_feed_with(channel, items, &[], feeds)
}

/// The rising feed: each story with what it gained (`heats[i]` is
/// `items[i]`'s), under `_paddock.comments_gained` and `_paddock.heat`.
pub fn json_feed_rising(
    channel: &Channel,
    items: &[Item],
    heats: &[Heat],
    feeds: &Directory,
) -> String {
    json_feed_with(channel, items, heats, feeds)
}

fn json_feed_with(channel: &Channel, items: &[Item], heats: &[Heat], feeds: &Directory) -> String {
    let doc = Doc {
        version: "https://jsonfeed.org/version/1.1",
        title: &channel.title,
        home_page_url: &channel.home_url,
        feed_url: &channel.self_url,
        hubs: (channel.hub.iter())
            .map(|url| Hub {
                kind: "WebSub",
                url,
            })
            .collect(),
        items: (items.iter().enumerate())
            .map(|(n, i)| entry(i, heats.get(n), feeds))
            .collect(),
    };
    serde_json::to_string_pretty(&doc).expect("plain data serializes")
}

#[derive(Serialize)]
struct Doc<'a> {
    version: &'static str,
    title: &'a str,
    home_page_url: &'a str,
    feed_url: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hubs: Vec<Hub<'a>>,
    items: Vec<Entry<'a>>,
}

/// A JSON Feed `hubs` entry.
#[derive(Serialize)]
struct Hub<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    url: &'a str,
}

#[derive(Serialize)]
struct Entry<'a> {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    title: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_html: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    date_published: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    date_modified: Option<Timestamp>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    authors: Vec<Author<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tags: &'a [String],
    _paddock: Extension<'a>,
}

#[derive(Serialize)]
struct Author<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct Extension<'a> {
    feed: &'a str,
    feed_title: String,
    also_in: &'a [String],
    first_seen: Timestamp,
    comment_count: Option<u32>,
    comments_url: Option<&'a str>,
    recent_comments: Vec<CommentView<'a>>,
    /// Rising feeds only: comments gained in the heat window, and heat.
    #[serde(skip_serializing_if = "Option::is_none")]
    comments_gained: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    heat: Option<f64>,
    /// Rising feeds only: the count (and so the gain) is a lower bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    comments_lower_bound: Option<bool>,
}

/// A comment as outputs show it: plain text, with its author.
#[derive(Serialize)]
pub struct CommentView<'a> {
    pub author: Option<&'a str>,
    pub text: &'a str,
    pub url: Option<&'a str>,
    pub published: Option<Timestamp>,
}

impl<'a> From<&'a Comment> for CommentView<'a> {
    fn from(c: &'a Comment) -> Self {
        CommentView {
            author: c.author.as_deref(),
            text: &c.text,
            url: c.url.as_deref(),
            published: c.published.map(date),
        }
    }
}

fn entry<'a>(item: &'a Item, heat: Option<&Heat>, feeds: &Directory) -> Entry<'a> {
    let content = item.content.as_deref().or(item.summary.as_deref());
    Entry {
        id: item.id.to_hex(),
        url: item.link.as_deref(),
        title: &item.title,
        // JSON Feed requires content_html or content_text.
        content_html: Some(content.unwrap_or_default().to_string()),
        summary: item
            .summary
            .as_deref()
            .map(|s| crate::text::html_excerpt(s, 400)),
        image: item.image.as_deref(),
        date_published: item.published.map(date),
        date_modified: item.updated.map(date),
        authors: item.authors.iter().map(|a| Author { name: a }).collect(),
        tags: &item.categories,
        _paddock: Extension {
            feed: &item.feed,
            feed_title: feed_info(feeds, &item.feed).title,
            also_in: &item.also_in,
            first_seen: date(item.first_seen),
            comment_count: item.comments.count,
            comments_url: item
                .comments
                .page_url
                .as_deref()
                .or(item.comments.feed_url.as_deref()),
            recent_comments: item.recent_comments.iter().map(CommentView::from).collect(),
            comments_gained: heat.map(|h| h.gained),
            heat: heat.map(|h| (h.heat * 100.0).round() / 100.0),
            comments_lower_bound: heat.map(|h| h.lower_bound),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn json_feed_is_version_1_1_with_extensions() {
        let doc: serde_json::Value =
            serde_json::from_str(&json_feed(&channel(), &[item()], &directory())).unwrap();
        assert_eq!(doc["version"], "https://jsonfeed.org/version/1.1");
        let i = &doc["items"][0];
        assert_eq!(i["id"], "07070707070707070707070707070707");
        assert_eq!(i["_paddock"]["feed"], "ttac");
        assert_eq!(i["_paddock"]["feed_title"], "The Truth About Cars");
        assert_eq!(i["_paddock"]["comment_count"], 4);
        assert_eq!(i["_paddock"]["also_in"][0], "wire");
        assert!(!i["content_html"].as_str().unwrap().contains("javascript:"));
        assert_eq!(i["summary"], "Nissan’s upscale cars");
        assert_eq!(i["_paddock"]["recent_comments"][0]["author"], "Lou_BC");
        assert_eq!(
            i["_paddock"]["recent_comments"][0]["text"],
            "I’ve never used the jack"
        );
    }
}
