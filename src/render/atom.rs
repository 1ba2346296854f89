use std::collections::BTreeMap;

use atom_syndication::extension::{Extension, ExtensionMap};
use atom_syndication::{Category, Content, Entry, Feed, Generator, Link, Person, Source, Text};

use super::{Channel, Directory, NS_THREAD, date, feed_info, newest};
use crate::model::Item;

/// An Atom 1.0 document (RFC 4287) with RFC 4685 comment counts.
pub fn atom(channel: &Channel, items: &[Item], feeds: &Directory) -> String {
    let updated = newest(items, channel.updated).fixed_offset();
    let mut namespaces = BTreeMap::new();
    namespaces.insert("thr".to_string(), NS_THREAD.to_string());
    let feed = Feed {
        title: Text::plain(channel.title.clone()),
        id: channel.self_url.clone(),
        updated,
        // RFC 4287 wants an author on every entry; a feed-level author
        // covers entries whose source named none.
        authors: vec![person(&channel.title)],
        generator: Some(Generator {
            value: "Paddock".into(),
            uri: None,
            version: Some(env!("CARGO_PKG_VERSION").into()),
        }),
        links: [
            Some(link(
                &channel.self_url,
                "self",
                Some("application/atom+xml"),
            )),
            Some(link(&channel.home_url, "alternate", Some("text/html"))),
            channel.hub.as_deref().map(|h| link(h, "hub", None)),
        ]
        .into_iter()
        .flatten()
        .collect(),
        entries: items.iter().map(|i| entry(i, feeds)).collect(),
        namespaces,
        ..Default::default()
    };
    crate::text::xml_chars(&feed.to_string()).into_owned()
}

fn entry(item: &Item, feeds: &Directory) -> Entry {
    let published = item.published.map(|t| date(t).fixed_offset());
    let updated = date(item.updated.or(item.published).unwrap_or(item.first_seen)).fixed_offset();
    let mut links = Vec::new();
    if let Some(href) = &item.link {
        links.push(link(href, "alternate", Some("text/html")));
    }
    let mut extensions = ExtensionMap::new();
    if let Some(n) = item.comments.count {
        let mut thr = BTreeMap::new();
        thr.insert(
            "total".to_string(),
            vec![simple("thr:total", &n.to_string())],
        );
        extensions.insert("thr".to_string(), thr);
    }
    if let Some(href) = item
        .comments
        .feed_url
        .as_ref()
        .or(item.comments.page_url.as_ref())
    {
        let ty = if Some(href) == item.comments.feed_url.as_ref() {
            "application/rss+xml"
        } else {
            "text/html"
        };
        let mut replies = link(href, "replies", Some(ty));
        // atom_syndication has no attribute extensions on links; the count
        // travels in `thr:total` above, which RFC 4685 prefers anyway.
        replies.title = item.comments.count.map(|n| format!("{n} comments"));
        links.push(replies);
    }
    let source = feed_info(feeds, &item.feed);
    Entry {
        title: Text::plain(item.title.clone()),
        id: item.id.urn(),
        updated,
        published,
        authors: item.authors.iter().map(|a| person(a)).collect(),
        categories: item
            .categories
            .iter()
            .map(|c| Category {
                term: c.clone(),
                ..Default::default()
            })
            .collect(),
        links,
        summary: item.summary.clone().map(Text::html),
        content: item.content.as_deref().map(|c| Content {
            value: Some(c.to_string()),
            content_type: Some("html".into()),
            ..Default::default()
        }),
        source: Some(Source {
            title: Text::plain(source.title.clone()),
            id: if source.url.is_empty() {
                format!("urn:paddock:feed:{}", source.id)
            } else {
                source.url.clone()
            },
            updated,
            links: source
                .site
                .iter()
                .map(|s| link(s, "alternate", Some("text/html")))
                .chain((!source.url.is_empty()).then(|| link(&source.url, "self", None)))
                .collect(),
            ..Default::default()
        }),
        extensions,
        ..Default::default()
    }
}

fn person(name: &str) -> Person {
    Person {
        name: name.to_string(),
        ..Default::default()
    }
}

fn link(href: &str, rel: &str, mime: Option<&str>) -> Link {
    Link {
        href: href.to_string(),
        rel: rel.to_string(),
        mime_type: mime.map(str::to_string),
        ..Default::default()
    }
}

fn simple(name: &str, value: &str) -> Extension {
    Extension {
        name: name.to_string(),
        value: Some(value.to_string()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn atom_carries_ids_sources_comments_and_safe_html() {
        let xml = atom(&channel(), &[item()], &directory());
        let parsed: Feed = xml.parse().expect("our Atom parses back");
        let e = &parsed.entries[0];
        assert_eq!(e.id, "urn:uuid:07070707-0707-5707-8707-070707070707");
        assert_eq!(
            e.title.value,
            "Infiniti Production To Leave Japan & <Go> West"
        );
        assert_eq!(
            e.source.as_ref().unwrap().title.value,
            "The Truth About Cars"
        );
        assert!(xml.contains("<thr:total>4</thr:total>"), "{xml}");
        assert!(xml.contains("xmlns:thr=\"http://purl.org/syndication/thread/1.0\""));
        assert!(xml.contains("rel=\"replies\""));
        let content = e.content.as_ref().unwrap().value.as_deref().unwrap();
        assert!(
            !content.contains("onclick") && !content.contains("javascript:"),
            "{content}"
        );
        assert!(!e.summary.as_ref().unwrap().value.contains("<script"));
    }
}
