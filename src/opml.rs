//! OPML: the feed list out (`GET /opml`, `paddock opml export`) and in
//! (`paddock opml import`, which prints `[[feed]]` TOML). Pure.

use std::collections::HashSet;

use opml::{Body, Head, OPML, Outline};
use serde::Serialize;

use crate::config::Config;

/// A feed as the OPML document names it.
pub struct Listed<'a> {
    pub id: &'a str,
    pub title: String,
    pub url: String,
    pub site: Option<String>,
    pub groups: &'a [String],
}

/// An OPML 2.0 document: one outline per group, each feed under its first
/// group (all its groups in `category`), feeds without groups at the top.
pub fn export(title: &str, feeds: &[Listed<'_>]) -> String {
    let outline = |f: &Listed<'_>| Outline {
        text: f.title.clone(),
        title: Some(f.title.clone()),
        r#type: Some("rss".into()),
        xml_url: Some(f.url.clone()),
        html_url: f.site.clone(),
        category: (!f.groups.is_empty()).then(|| {
            f.groups
                .iter()
                .map(|g| format!("/{g}"))
                .collect::<Vec<_>>()
                .join(",")
        }),
        ..Outline::default()
    };
    let mut body = Body::default();
    let mut groups: Vec<&String> = feeds.iter().filter_map(|f| f.groups.first()).collect();
    groups.sort();
    groups.dedup();
    for g in groups {
        body.outlines.push(Outline {
            text: g.clone(),
            title: Some(g.clone()),
            outlines: feeds
                .iter()
                .filter(|f| f.groups.first() == Some(g))
                .map(outline)
                .collect(),
            ..Outline::default()
        });
    }
    body.outlines
        .extend(feeds.iter().filter(|f| f.groups.is_empty()).map(outline));
    let doc = OPML {
        version: "2.0".into(),
        head: Some(Head {
            title: Some(title.to_string()),
            ..Head::default()
        }),
        body,
    };
    doc.to_string().expect("plain outlines serialize")
}

/// The config's feeds for [`export`].
pub fn listed<'a>(
    config: &'a Config,
    title: impl Fn(&str) -> String,
    url: impl Fn(&str) -> String,
    site: impl Fn(&str) -> Option<String>,
) -> Vec<Listed<'a>> {
    config
        .feeds
        .iter()
        .map(|f| Listed {
            id: &f.id,
            title: title(&f.id),
            url: url(&f.id),
            site: site(&f.id),
            groups: &f.groups,
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("not an OPML document: {0}")]
    Invalid(String),
    #[error("the OPML document lists no feeds (no outline has an xmlUrl)")]
    Empty,
}

#[derive(Serialize)]
struct Imported {
    feed: Vec<ImportedFeed>,
}

#[derive(Serialize)]
struct ImportedFeed {
    id: String,
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    groups: Vec<String>,
}

/// `[[feed]]` TOML for every outline with an `xmlUrl`: ids from titles,
/// made unique; groups from the enclosing outlines and `category`.
pub fn import(xml: &str) -> Result<String, ImportError> {
    let doc = OPML::from_str(xml).map_err(|e| ImportError::Invalid(e.to_string()))?;
    let mut feeds = Vec::new();
    let mut ids = HashSet::new();
    walk(&doc.body.outlines, &[], &mut feeds, &mut ids);
    if feeds.is_empty() {
        return Err(ImportError::Empty);
    }
    Ok(toml::to_string(&Imported { feed: feeds }).expect("plain data serializes"))
}

fn walk(
    outlines: &[Outline],
    parents: &[String],
    out: &mut Vec<ImportedFeed>,
    ids: &mut HashSet<String>,
) {
    for o in outlines {
        let name = o
            .title
            .clone()
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| o.text.clone());
        match o
            .xml_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            // Only web feeds: an OPML file from elsewhere must not make the
            // daemon read local files, nor hand the config a URL it refuses.
            Some(url) if !is_web_url(url) => {}
            Some(url) => {
                let mut groups: Vec<String> = parents.to_vec();
                for c in o.category.iter().flat_map(|c| c.split(',')) {
                    let g = slug(
                        c.trim()
                            .trim_start_matches('/')
                            .rsplit('/')
                            .next()
                            .unwrap_or(""),
                    );
                    if !g.is_empty() && !groups.contains(&g) {
                        groups.push(g);
                    }
                }
                out.push(ImportedFeed {
                    id: unique(&slug(&name), url, ids),
                    url: url.to_string(),
                    title: Some(name.trim().to_string()).filter(|t| !t.is_empty()),
                    groups,
                });
            }
            None => {
                let mut inner = parents.to_vec();
                let g = slug(&name);
                if !g.is_empty() {
                    inner.push(g);
                }
                walk(&o.outlines, &inner, out, ids);
            }
        }
    }
}

fn is_web_url(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
    })
}

/// `[a-z0-9_-]+` from any title: ASCII letters and digits kept, the rest
/// folded into single dashes.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

fn unique(base: &str, url: &str, ids: &mut HashSet<String>) -> String {
    let base = if base.is_empty() {
        url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(slug))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "feed".to_string())
    } else {
        base.to_string()
    };
    let mut id = base.clone();
    let mut n = 2;
    while !ids.insert(id.clone()) {
        id = format!("{base}-{n}");
        n += 1;
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_makes_unique_ids_and_groups() {
        let xml = r#"<?xml version="1.0"?>
<opml version="2.0"><head><title>Subs</title></head><body>
  <outline text="Car News">
    <outline text="The Truth About Cars" type="rss" xmlUrl="https://www.thetruthaboutcars.com/feed/"/>
    <outline text="Jalopnik" type="rss" xmlUrl="https://jalopnik.com/rss" category="/reviews"/>
  </outline>
  <outline text="Jalopnik" type="rss" xmlUrl="https://jalopnik.com/rss?mirror"/>
  <outline text="" type="rss" xmlUrl="https://www.autoblog.com/rss.xml"/>
</body></opml>"#;
        let toml_text = import(xml).unwrap();
        let path = std::path::Path::new("imported.toml");
        let config = Config::parse(&toml_text, path).expect("the import is a valid config");
        let ids: Vec<&str> = config.feeds.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "the-truth-about-cars",
                "jalopnik",
                "jalopnik-2",
                "www-autoblog-com"
            ]
        );
        assert_eq!(config.feeds[0].groups, ["car-news"]);
        assert_eq!(config.feeds[1].groups, ["car-news", "reviews"]);
        assert!(matches!(
            import("<opml version=\"2.0\"><head/><body/></opml>"),
            Err(ImportError::Empty | ImportError::Invalid(_))
        ));
        assert!(matches!(import("not xml"), Err(ImportError::Invalid(_))));
    }

    #[test]
    fn export_round_trips_through_import() {
        let groups = vec!["news".to_string(), "opinion".to_string()];
        let feeds = [Listed {
            id: "ttac",
            title: "The Truth About Cars".into(),
            url: "https://www.thetruthaboutcars.com/feed/".into(),
            site: Some("https://www.thetruthaboutcars.com/".into()),
            groups: &groups,
        }];
        let xml = export("Auto news", &feeds);
        let back = import(&xml).unwrap();
        assert!(
            back.contains("url = \"https://www.thetruthaboutcars.com/feed/\""),
            "{back}"
        );
        assert!(back.contains("groups = [\"news\", \"opinion\"]"), "{back}");
    }
}
