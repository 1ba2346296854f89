use std::collections::BTreeMap;

use rss::extension::atom::{AtomExtension, Link as AtomLink};
use rss::extension::dublincore::DublinCoreExtension;
use rss::extension::{Extension, ExtensionMap};
use rss::{Category, Guid, Source};

use super::{Channel, Directory, NS_SLASH, NS_WFW, date, feed_info, newest};
use crate::model::Item;

/// An RSS 2.0 document with `slash:comments` and `wfw:commentRss`.
pub fn rss(channel: &Channel, items: &[Item], feeds: &Directory) -> String {
    let mut namespaces = BTreeMap::new();
    namespaces.insert("slash".to_string(), NS_SLASH.to_string());
    namespaces.insert("wfw".to_string(), NS_WFW.to_string());
    let ch = rss::Channel {
        title: channel.title.clone(),
        link: channel.home_url.clone(),
        description: format!("{}: stories merged by Paddock", channel.title),
        last_build_date: Some(newest(items, channel.updated).to_rfc2822()),
        generator: Some(format!("Paddock {}", env!("CARGO_PKG_VERSION"))),
        atom_ext: Some(AtomExtension {
            links: std::iter::once(AtomLink {
                href: channel.self_url.clone(),
                rel: "self".into(),
                mime_type: Some("application/rss+xml".into()),
                ..Default::default()
            })
            .chain(channel.hub.as_ref().map(|h| AtomLink {
                href: h.clone(),
                rel: "hub".into(),
                ..Default::default()
            }))
            .collect(),
        }),
        items: items.iter().map(|i| rss_item(i, feeds)).collect(),
        namespaces,
        ..Default::default()
    };
    crate::text::xml_chars(&ch.to_string()).into_owned()
}

fn rss_item(item: &Item, feeds: &Directory) -> rss::Item {
    let source = feed_info(feeds, &item.feed);
    let mut extensions = ExtensionMap::new();
    if let Some(n) = item.comments.count {
        extensions.insert(
            "slash".into(),
            BTreeMap::from([(
                "comments".into(),
                vec![simple("slash:comments", &n.to_string())],
            )]),
        );
    }
    if let Some(url) = &item.comments.feed_url {
        extensions.insert(
            "wfw".into(),
            BTreeMap::from([("commentRss".into(), vec![simple("wfw:commentRss", url)])]),
        );
    }
    rss::Item {
        title: Some(item.title.clone()),
        link: item.link.clone(),
        description: item.summary.clone().or_else(|| item.content.clone()),
        content: item.content.clone(),
        // `<author>` must be an e-mail address; names go in `dc:creator`.
        dublin_core_ext: (!item.authors.is_empty()).then(|| DublinCoreExtension {
            creators: item.authors.clone(),
            ..Default::default()
        }),
        categories: item
            .categories
            .iter()
            .map(|c| Category {
                name: c.clone(),
                domain: None,
            })
            .collect(),
        comments: item
            .comments
            .page_url
            .clone()
            .or_else(|| item.link.clone().filter(|_| item.comments.count.is_some())),
        guid: Some(Guid {
            value: item.id.urn(),
            permalink: false,
        }),
        pub_date: Some(date(item.published.unwrap_or(item.first_seen)).to_rfc2822()),
        source: (!source.url.is_empty()).then(|| Source {
            url: source.url.clone(),
            title: Some(source.title.clone()),
        }),
        extensions,
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
    fn rss_carries_guid_source_and_comment_elements() {
        let xml = rss(&channel(), &[item()], &directory());
        let parsed: rss::Channel = xml.parse().expect("our RSS parses back");
        let i = &parsed.items[0];
        assert_eq!(
            i.guid.as_ref().unwrap().value,
            "urn:uuid:07070707-0707-5707-8707-070707070707"
        );
        assert_eq!(
            i.source.as_ref().unwrap().url,
            "https://www.thetruthaboutcars.com/feed/"
        );
        assert_eq!(
            i.dublin_core_ext.as_ref().unwrap().creators,
            ["Bertel Schmitt"]
        );
        for needle in [
            "<slash:comments>4</slash:comments>",
            "<wfw:commentRss>https://www.thetruthaboutcars.com/2012/04/infiniti/feed/</wfw:commentRss>",
            "<comments>https://www.thetruthaboutcars.com/2012/04/infiniti/#respond</comments>",
            "xmlns:slash=",
            "xmlns:wfw=",
            "xmlns:dc=",
            "xmlns:atom=",
        ] {
            assert!(xml.contains(needle), "missing {needle} in {xml}");
        }
        assert!(!xml.contains("javascript:"));
    }
}
