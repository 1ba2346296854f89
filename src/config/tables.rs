//! Reading a config's `[[feed]]` tables one at a time. A file of a million
//! feeds is about 60 MB of TOML; read whole, its parse tree takes some
//! forty times that in memory, and a reload that changes one feed would
//! parse every table again. When the file allows it, the text before the
//! first `[[feed]]` line (every other setting) is read as a document, and
//! then each stretch from one `[[feed]]` line to the next on its own,
//! which means the same thing. A reload keeps every feed whose stretch has
//! the same text as before, when the text before the first table did not
//! change either.
//!
//! The file allows it when it has no multi-line strings (inside one, a
//! `[[feed]]` line would not be a table) and, after its first `[[feed]]`
//! line, no table header other than `[[feed]]`. Any other file is read
//! whole, as before; both ways give the same config and the same errors,
//! at the same place.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use super::{Config, FeedDefaults, Invalid, feed, raw, validate};

/// Where each feed's table was in the file its config came from.
#[derive(Debug, PartialEq)]
pub(crate) struct FeedText {
    /// The hash of the text before the first `[[feed]]` line.
    head: u64,
    /// Per stretch, in order: the hash of its text and how many feeds it
    /// holds (one, unless a `[[feed]]` header carries a comment).
    tables: Vec<(u64, u32)>,
}

/// The config of `text` read table by table, or `None` when the file must
/// be read whole. Tables whose text `previous` read the same way are
/// taken from it.
pub(super) fn read(
    text: &str,
    file: &Path,
    dir: &Path,
    previous: Option<&Config>,
) -> Option<Result<Config, Invalid>> {
    if text.contains("\"\"\"") || text.contains("'''") {
        return None;
    }
    let starts = table_starts(text)?;
    let head_text = &text[..starts[0]];
    let head = hash(head_text);
    let raw: raw::File = match toml::from_str(head_text) {
        Ok(raw) => raw,
        Err(e) => return Some(Err(toml_error(&e, 0))),
    };
    if !raw.feed.is_empty() {
        return None;
    }
    // The tables `previous` read, by the hash of their text: where their
    // feeds are in its list.
    let kept = previous.filter(|p| p.file == file).and_then(|p| {
        let before = p.feed_text.as_ref().filter(|t| t.head == head)?;
        let mut at = HashMap::with_capacity(before.tables.len());
        let mut first = 0usize;
        for &(h, count) in &before.tables {
            at.entry(h).or_insert((first, count as usize));
            first += count as usize;
        }
        Some((p, at))
    });
    let feeds = Box::new(move |defaults: &FeedDefaults| {
        let mut seen = HashSet::with_capacity(starts.len());
        let mut feeds = Vec::with_capacity(starts.len());
        let mut tables = Vec::with_capacity(starts.len());
        for (i, &start) in starts.iter().enumerate() {
            let end = starts.get(i + 1).copied().unwrap_or(text.len());
            let table = &text[start..end];
            let h = hash(table);
            let same = (kept.as_ref())
                .and_then(|(p, at)| at.get(&h).and_then(|&(f, n)| p.feeds.get(f..f + n)))
                .filter(|same| same.iter().all(|f| !seen.contains(&f.id)));
            if let Some(same) = same {
                for f in same {
                    seen.insert(f.id.clone());
                    feeds.push(f.clone());
                }
                tables.push((h, same.len() as u32));
                continue;
            }
            // Spans in a table's text are moved by where it starts.
            let parsed: raw::Tables = toml::from_str(table).map_err(|e| toml_error(&e, start))?;
            tables.push((h, parsed.feed.len() as u32));
            for f in parsed.feed {
                let f =
                    feed(f, defaults, &mut seen).map_err(|(span, m)| (shift(span, start), m))?;
                feeds.push(f);
            }
        }
        Ok((feeds, Some(Arc::new(FeedText { head, tables }))))
    });
    Some(validate(raw, dir, file, text, feeds))
}

/// Where each line that is exactly `[[feed]]` starts; `None` when there is
/// none, or when another table header follows the first.
fn table_starts(text: &str) -> Option<Vec<usize>> {
    let mut starts = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_matches([' ', '\t', '\r', '\n']);
        if trimmed == "[[feed]]" {
            starts.push(offset);
        } else if !starts.is_empty() && trimmed.starts_with('[') {
            return None;
        }
        offset += line.len();
    }
    (!starts.is_empty()).then_some(starts)
}

fn hash(text: &str) -> u64 {
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

fn shift(span: Range<usize>, by: usize) -> Range<usize> {
    span.start + by..span.end + by
}

fn toml_error(e: &toml::de::Error, at: usize) -> Invalid {
    (
        shift(e.span().unwrap_or(0..0), at),
        e.message().trim().replace('\n', " "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const HEAD: &str = "[server]\ntitle = \"News\"\n[poll]\ninterval = \"10m\"\n\
        [[rule]]\naction = \"block\"\ntitle = \"(?i)sponsored\"\nfeeds = [\"b\"]\n";

    fn feeds(n: usize) -> String {
        (0..n)
            .map(|i| {
                let extra = match i % 3 {
                    0 => "groups = [\"x\", \"y\"]\n",
                    1 => "interval = \"1h\" # hourly\n",
                    _ => "\n# a comment\n",
                };
                let id = if i == 1 {
                    "b".to_string()
                } else {
                    format!("f{i}")
                };
                format!("[[feed]]\nid = \"{id}\"\nurl = \"https://s{i}.example/feed/\"\n{extra}")
            })
            .collect()
    }

    /// The same text read whole: a `"""` in a comment makes it so.
    fn whole(text: &str) -> String {
        format!("{text}# \"\"\"\n")
    }

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("/etc/paddock/feeds.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn table_by_table_reads_what_the_whole_file_says() {
        let text = format!("{HEAD}{}", feeds(30));
        let (by_table, at_once) = (parse(&text).unwrap(), parse(&whole(&text)).unwrap());
        assert!(by_table.feed_text.is_some(), "read table by table");
        assert!(at_once.feed_text.is_none(), "read whole");
        assert_eq!(by_table.feeds, at_once.feeds);
        assert_eq!(by_table.rules, at_once.rules);
        assert_eq!(by_table.poll, at_once.poll);
        assert_eq!(by_table.server, at_once.server);
        assert_eq!(by_table.feeds[1].interval.as_secs(), 3600);
        assert_eq!(by_table.feeds[2].interval.as_secs(), 600);
        // A header with a comment is not a place to cut: that stretch
        // holds two tables.
        let commented = text.replacen("[[feed]]\nid = \"f3\"", "[[feed]] # three\nid = \"f3\"", 1);
        assert_eq!(parse(&commented).unwrap().feeds, at_once.feeds);
        // Another table after the feeds: read whole.
        let after = format!("{text}[output]\nitems = 20\n");
        let config = parse(&after).unwrap();
        assert!(config.feed_text.is_none());
        assert_eq!(config.feeds, at_once.feeds);
    }

    #[test]
    fn errors_are_reported_at_the_same_place_either_way() {
        let text = format!("{HEAD}{}", feeds(9));
        let broken = [
            text.replacen("id = \"f6\"", "id = \"F6\"", 1),
            text.replacen("id = \"f6\"", "id = \"f3\"", 1),
            text.replacen(
                "url = \"https://s7.example/feed/\"",
                "url = \"gopher://s7\"",
                1,
            ),
            text.replacen("url = \"https://s7.example/feed/\"", "url = https://s7", 1),
            text.replacen("id = \"f4\"", "id = \"f4\"\ncolour = \"red\"", 1),
            text.replacen("interval = \"1h\"", "interval = \"soon\"", 1),
            text.replacen("interval = \"10m\"", "interval = \"10 parsecs\"", 1),
            text.replacen("feeds = [\"b\"]", "feeds = [\"nobody\"]", 1),
        ];
        for text in broken {
            let (by_table, at_once) =
                (parse(&text).unwrap_err(), parse(&whole(&text)).unwrap_err());
            assert_eq!(by_table, at_once);
            assert!(
                by_table.starts_with("/etc/paddock/feeds.toml:"),
                "{by_table}"
            );
        }
    }

    #[test]
    fn a_reload_keeps_the_feeds_whose_text_did_not_change() {
        let dir = tempfile::tempdir().unwrap();
        let file: PathBuf = dir.path().join("feeds.toml");
        let text = format!("{HEAD}{}", feeds(12));
        std::fs::write(&file, &text).unwrap();
        let mut first = Config::load(&file).unwrap();
        // Marks on the loaded feeds: a feed taken over keeps its mark, a
        // feed read again loses it.
        for f in &mut first.feeds {
            f.title = Some("kept".into());
        }
        let changed = text.replacen("https://s5.example/feed/", "https://moved.example/feed/", 1);
        std::fs::write(&file, &changed).unwrap();
        let second = Config::reload(&first).unwrap();
        assert_eq!(second.feeds.len(), 12);
        assert_eq!(
            second.feeds[5].source.to_string(),
            "https://moved.example/feed/"
        );
        assert_eq!(
            second.feeds[5].title, None,
            "the changed feed was read again"
        );
        let kept = second
            .feeds
            .iter()
            .filter(|f| f.title.as_deref() == Some("kept"));
        assert_eq!(kept.count(), 11);
        // A copied table is read again, so the duplicate id is found.
        let copied = format!(
            "{changed}[[feed]]\nid = \"f7\"\nurl = \"https://s7.example/feed/\"\n\n# a comment\n"
        );
        std::fs::write(&file, &copied).unwrap();
        let err = Config::reload(&second).unwrap_err().to_string();
        assert!(err.contains("duplicate feed id \"f7\""), "{err}");
        // A change before the first table (the default interval) reads
        // every table again.
        std::fs::write(&file, changed.replacen("\"10m\"", "\"20m\"", 1)).unwrap();
        let third = Config::reload(&second).unwrap();
        assert!(third.feeds.iter().all(|f| f.title.is_none()));
        assert_eq!(third.feeds[2].interval.as_secs(), 1200);
    }
}
