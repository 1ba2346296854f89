//! The river: a readable HTML page of the merged stories with a recent
//! comments column, made with an askama template (every value escaped).
//! Pure: the caller gathers the data.

use askama::Template;

use super::{Directory, feed_info};
use crate::model::{CountPoint, Item, RecentComment, Timestamp};
use crate::text::html_excerpt;

/// Characters of a story's summary on the page.
pub const SUMMARY_CHARS: usize = 280;

/// The page's stylesheet, served at `/river.css`.
pub const CSS: &str = include_str!("../../templates/river.css");

/// What the page shows, gathered by the caller.
pub struct RiverInput<'a> {
    pub title: &'a str,
    pub group: Option<&'a str>,
    /// The Rising view: `items` are the stories gaining comments, hottest
    /// first, not a page of the newest.
    pub rising: bool,
    /// `[output].heat_window`, and the time of the request: each story's
    /// gain and sparkline cover that window.
    pub heat_window: std::time::Duration,
    pub now: Timestamp,
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
    rising: bool,
    window_label: String,
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
    /// "+12 today", when the story gained comments in the heat window.
    gain: Option<String>,
    /// The sparkline's points (an SVG polyline), when it has two or more.
    spark: Option<String>,
}

struct CommentLine {
    author: String,
    text: String,
    url: Option<String>,
    story: Option<String>,
}

pub fn river(input: &RiverInput<'_>) -> String {
    let mut days: Vec<Day> = Vec::new();
    let window_label = window_label(input.heat_window);
    for item in input.items {
        let t = item.sort_time();
        let label = match input.rising {
            true => format!("Comments {window_label}, most heat first"),
            false => t.format("%A, %-d %B %Y").to_string(),
        };
        let story = story(item, input);
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
        rising: input.rising,
        window_label,
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

/// How the heat window reads after a gain: "today" for a day, else "in
/// the last 6h".
fn window_label(window: std::time::Duration) -> String {
    match window.as_secs() {
        86_400 => "today".to_string(),
        _ => format!("in the last {}", humantime::format_duration(window)),
    }
}

/// A sparkline of the story's count over the window ending `now`, as the
/// points of an SVG polyline in a 60 x 14 box: the count as the window
/// began, then each point in it, then now. `None` when it did not change.
pub fn sparkline(
    history: &[CountPoint],
    window: std::time::Duration,
    now: Timestamp,
) -> Option<String> {
    const W: f64 = 60.0;
    const H: f64 = 14.0;
    let start = crate::model::earlier(now, window);
    let before = history.iter().rev().find(|p| p.at <= start);
    let inside: Vec<&CountPoint> = history
        .iter()
        .filter(|p| p.at > start && p.at <= now)
        .collect();
    if inside.is_empty() {
        return None;
    }
    let mut points: Vec<(f64, u32)> = Vec::new();
    let span = window.as_secs_f64().max(1.0);
    let x =
        |t: Timestamp| ((t - start).num_milliseconds() as f64 / 1000.0 / span * W).clamp(0.0, W);
    if let Some(b) = before {
        points.push((0.0, b.count));
    }
    points.extend(inside.iter().map(|p| (x(p.at), p.count)));
    let last = points.last().map(|p| p.1).unwrap_or(0);
    points.push((W, last));
    let (lo, hi) = points
        .iter()
        .fold((u32::MAX, 0), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    if hi == lo {
        return None;
    }
    let y = |n: u32| H - 1.0 - (n - lo) as f64 / (hi - lo) as f64 * (H - 2.0);
    Some(
        points
            .iter()
            .map(|(px, n)| format!("{px:.1},{:.1}", y(*n)))
            .collect::<Vec<_>>()
            .join(" "),
    )
}

fn story(item: &Item, input: &RiverInput<'_>) -> Story {
    let directory = input.directory;
    let heat = crate::stories::heat(&item.comment_history, input.heat_window, input.now);
    let gain = (heat.gained > 0).then(|| {
        let bound = if heat.lower_bound { "at least " } else { "" };
        format!(
            "+{bound}{} {}",
            heat.gained,
            window_label(input.heat_window)
        )
    });
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
        gain,
        spark: sparkline(&item.comment_history, input.heat_window, input.now),
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
            rising: false,
            heat_window: std::time::Duration::from_secs(86400),
            now: chrono::Utc::now(),
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
