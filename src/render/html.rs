//! The river: a readable HTML page of the merged stories with a recent
//! comments column, made with an askama template (every value escaped).
//! Pure: the caller gathers the data.

use askama::Template;

use super::{Directory, feed_info};
use crate::model::{Item, RecentComment};
use crate::text::html_excerpt;

/// Characters of a story's summary on the page.
pub const SUMMARY_CHARS: usize = 280;

/// The page's stylesheet, served at `/river.css`.
pub const CSS: &str = include_str!("../../templates/river.css");

/// What the page shows, gathered by the caller.
pub struct RiverInput<'a> {
    pub title: &'a str,
    pub group: Option<&'a str>,
    pub groups: &'a [String],
    /// Newest first.
    pub items: &'a [Item],
    /// The newest comments, each with its story's title when known.
    pub recent: &'a [(RecentComment, Option<String>)],
    pub feeds: Vec<FeedLine>,
    pub directory: &'a Directory,
    /// The `?before=` cursor of this page, if it is not the first.
    pub before: Option<String>,
    /// The `?before=` cursor of the next, older page, if there is one.
    pub older: Option<String>,
    /// Absolute URLs of the outputs this page describes.
    pub atom_href: String,
    pub rss_href: String,
    pub json_href: String,
    pub digest_href: String,
    pub opml_href: String,
    pub css_href: String,
}

pub struct FeedLine {
    pub title: String,
    pub ok: bool,
    pub status: String,
}

#[derive(Template)]
#[template(path = "river.html")]
struct Page<'a> {
    title: &'a str,
    group: Option<&'a str>,
    groups: &'a [String],
    days: Vec<Day>,
    recent: Vec<CommentLine>,
    feeds: &'a [FeedLine],
    before: Option<&'a str>,
    older: Option<String>,
    atom_href: &'a str,
    rss_href: &'a str,
    json_href: &'a str,
    digest_href: &'a str,
    opml_href: &'a str,
    css_href: &'a str,
}

struct Day {
    label: String,
    stories: Vec<Story>,
}

struct Story {
    title: String,
    url: Option<String>,
    feed_title: String,
    author: Option<String>,
    time_iso: String,
    time_label: String,
    summary: String,
    comment_count: Option<u32>,
    comments_href: Option<String>,
    comments: Vec<CommentLine>,
    also_in: Vec<String>,
}

struct CommentLine {
    author: String,
    text: String,
    url: Option<String>,
    story: Option<String>,
}

pub fn river(input: &RiverInput<'_>) -> String {
    let mut days: Vec<Day> = Vec::new();
    for item in input.items {
        let t = item.sort_time();
        let label = t.format("%A, %-d %B %Y").to_string();
        let story = story(item, input.directory);
        match days.last_mut() {
            Some(day) if day.label == label => day.stories.push(story),
            _ => days.push(Day {
                label,
                stories: vec![story],
            }),
        }
    }
    let older = input.older.as_ref().map(|cursor| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(g) = input.group {
            q.append_pair("group", g);
        }
        q.append_pair("before", cursor);
        format!("./?{}", q.finish())
    });
    let page = Page {
        title: input.title,
        group: input.group,
        groups: input.groups,
        days,
        recent: input
            .recent
            .iter()
            .map(|(c, story)| CommentLine {
                author: c
                    .comment
                    .author
                    .clone()
                    .unwrap_or_else(|| "Anonymous".into()),
                text: c.comment.text.clone(),
                url: c.comment.url.clone(),
                story: story.clone(),
            })
            .collect(),
        feeds: &input.feeds,
        before: input.before.as_deref(),
        older,
        atom_href: &input.atom_href,
        rss_href: &input.rss_href,
        json_href: &input.json_href,
        digest_href: &input.digest_href,
        opml_href: &input.opml_href,
        css_href: &input.css_href,
    };
    page.render().expect("the template renders plain data")
}

fn story(item: &Item, directory: &Directory) -> Story {
    let t = super::date(item.sort_time());
    let html = item.summary.as_deref().or(item.content.as_deref());
    Story {
        title: item.title.clone(),
        url: item.link.clone(),
        feed_title: feed_info(directory, &item.feed).title,
        author: item.authors.first().cloned(),
        time_iso: t.to_rfc3339(),
        time_label: t.format("%H:%M").to_string(),
        summary: html.map_or_else(String::new, |h| html_excerpt(h, SUMMARY_CHARS)),
        comment_count: item.comments.count,
        comments_href: item
            .comments
            .page_url
            .clone()
            .or_else(|| item.link.as_ref().map(|l| format!("{l}#comments"))),
        comments: item
            .recent_comments
            .iter()
            .map(|c| CommentLine {
                author: c.author.clone().unwrap_or_else(|| "Anonymous".into()),
                text: c.text.clone(),
                url: c.url.clone(),
                story: None,
            })
            .collect(),
        also_in: item
            .also_in
            .iter()
            .map(|f| feed_info(directory, f).title)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn input<'a>(items: &'a [Item], dir: &'a Directory) -> RiverInput<'a> {
        RiverInput {
            title: "Auto news",
            group: None,
            groups: &[],
            items,
            recent: &[],
            feeds: vec![FeedLine {
                title: "TTAC".into(),
                ok: false,
                status: "failing: timeout".into(),
            }],
            directory: dir,
            before: None,
            older: Some("00ff".into()),
            atom_href: "http://h/feed.atom".into(),
            rss_href: "http://h/feed.rss".into(),
            json_href: "http://h/feed.json".into(),
            digest_href: "http://h/digest.json".into(),
            opml_href: "http://h/opml".into(),
            css_href: "http://h/river.css".into(),
        }
    }

    #[test]
    fn the_page_escapes_everything_from_feeds() {
        let mut hostile = item();
        hostile.title = "<script>alert(1)</script> & <b onmouseover=x>".into();
        hostile.authors = vec!["<img src=x onerror=alert(2)>".into()];
        let dir = directory();
        let html = river(&input(&[hostile], &dir));
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(
            html.contains("&#60;script&#62;alert(1)"),
            "escaped, shown as text: {html}"
        );
        assert!(html.contains("Thursday, 5 April 2012"));
        assert!(html.contains("4 comments"));
        assert!(html.contains("Lou_BC"));
        assert!(html.contains("./?before=00ff"), "{html}");
        assert!(html.contains("failing: timeout"));
    }
}
