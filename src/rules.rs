//! Keep and block rules: which stored stories the outputs leave out.
//! Pure: a config's rules are compiled once (see `config`), then asked
//! about one story at a time with the time of the request, so a reload
//! applies to every story already stored, at the next request.

use std::collections::HashSet;
use std::time::Duration;

use regex::Regex;
use serde::Serialize;

use crate::model::{Item, Timestamp};

/// Most `[[rule]]` tables in one config.
pub const MAX_RULES: usize = 200;
/// Longest pattern, in bytes.
pub const MAX_PATTERN: usize = 1000;
/// Largest compiled pattern (the `regex` crate's size limit): a pattern
/// that would compile to more is refused.
pub const MAX_COMPILED: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Drops the stories in scope that match.
    Block,
    /// Drops the stories in scope that do not match.
    Keep,
}

/// What a pattern is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Field {
    Title,
    /// The story's content and its summary, as stored (HTML).
    Content,
    /// Any one author.
    Author,
    /// Any one category.
    Category,
    /// The story's link.
    Url,
    /// Any of the above.
    Any,
}

impl Field {
    pub const ALL: [(&'static str, Field); 6] = [
        ("title", Field::Title),
        ("content", Field::Content),
        ("author", Field::Author),
        ("category", Field::Category),
        ("url", Field::Url),
        ("any", Field::Any),
    ];

    fn matches(self, re: &Regex, item: &Item) -> bool {
        let text = |s: &Option<String>| s.as_deref().is_some_and(|s| re.is_match(s));
        match self {
            Field::Title => re.is_match(&item.title),
            Field::Content => text(&item.content) || text(&item.summary),
            Field::Author => item.authors.iter().any(|a| re.is_match(a)),
            Field::Category => item.categories.iter().any(|c| re.is_match(c)),
            Field::Url => text(&item.link),
            Field::Any => [
                Field::Title,
                Field::Content,
                Field::Author,
                Field::Category,
                Field::Url,
            ]
            .iter()
            .any(|f| f.matches(re, item)),
        }
    }
}

/// One `[[rule]]`.
#[derive(Debug, Clone)]
pub struct Rule {
    pub action: Action,
    /// The line of the config file its `action` key is on.
    pub line: usize,
    /// Every one must match.
    pub patterns: Vec<(Field, Regex)>,
    /// The feeds and groups it applies to, as written (both empty: every
    /// story).
    pub feeds: Vec<String>,
    pub groups: Vec<String>,
    /// Those feeds and every feed of those groups; `None`: every story.
    pub scope: Option<HashSet<String>>,
    /// Matches only stories published longer ago than this.
    pub older_than: Option<Duration>,
}

impl PartialEq for Rule {
    fn eq(&self, other: &Rule) -> bool {
        let sources = |r: &Rule| -> Vec<(Field, String)> {
            (r.patterns.iter())
                .map(|(f, re)| (*f, re.as_str().to_string()))
                .collect()
        };
        self.action == other.action
            && self.line == other.line
            && sources(self) == sources(other)
            && self.scope == other.scope
            && self.older_than == other.older_than
    }
}

impl Rule {
    /// Whether the story is one the rule applies to: carried by one of its
    /// feeds (as owner or in `also_in`), or any story without a scope.
    pub fn in_scope(&self, item: &Item) -> bool {
        self.scope
            .as_ref()
            .is_none_or(|feeds| item.feeds().any(|f| feeds.contains(f)))
    }

    /// Whether every condition holds: each pattern on its field, and the
    /// age. A story's age is from its date (published, else updated, else
    /// when Paddock first saw it).
    pub fn matches(&self, item: &Item, now: Timestamp) -> bool {
        let old_enough = self.older_than.is_none_or(|age| {
            let date = item.published.or(item.updated).unwrap_or(item.first_seen);
            (now - date).to_std().is_ok_and(|since| since > age)
        });
        old_enough && self.patterns.iter().all(|(f, re)| f.matches(re, item))
    }

    /// Whether this rule, alone, drops the story.
    pub fn drops(&self, item: &Item, now: Timestamp) -> bool {
        self.in_scope(item)
            && match self.action {
                Action::Block => self.matches(item, now),
                Action::Keep => !self.matches(item, now),
            }
    }
}

/// A config's rules, in the order written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules(pub Vec<Rule>);

impl Rules {
    /// The rule that drops the story, by its index: the first block rule
    /// that drops it (block wins over keep), else the first keep rule that
    /// does. Each rule drops on its own, so two keep rules over the same
    /// stories keep only what matches both.
    pub fn dropping(&self, item: &Item, now: Timestamp) -> Option<usize> {
        let first = |action| (self.0.iter()).position(|r| r.action == action && r.drops(item, now));
        first(Action::Block).or_else(|| first(Action::Keep))
    }

    /// Whether the outputs carry the story.
    pub fn keeps(&self, item: &Item, now: Timestamp) -> bool {
        self.0.is_empty() || self.dropping(item, now).is_none()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What the rules do to a set of stored stories: how many each drops (as
/// the one that drops it), and how many each has in scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub stories: usize,
    pub dropped: Vec<usize>,
    pub in_scope: Vec<usize>,
}

impl Tally {
    pub fn new(rules: &Rules) -> Tally {
        Tally {
            stories: 0,
            dropped: vec![0; rules.0.len()],
            in_scope: vec![0; rules.0.len()],
        }
    }

    /// Counts one story; the rule that drops it, if any.
    pub fn count(&mut self, rules: &Rules, item: &Item, now: Timestamp) -> Option<usize> {
        self.stories += 1;
        for (i, r) in rules.0.iter().enumerate() {
            if r.in_scope(item) {
                self.in_scope[i] += 1;
            }
        }
        let dropping = rules.dropping(item, now);
        if let Some(i) = dropping {
            self.dropped[i] += 1;
        }
        dropping
    }

    /// A word of warning about rule `i`, when it drops nothing or every
    /// story in its scope.
    pub fn warning(&self, i: usize) -> Option<&'static str> {
        let (dropped, scope) = (self.dropped[i], self.in_scope[i]);
        if scope > 0 && dropped == 0 {
            Some("drops no stored story")
        } else if scope > 0 && dropped == scope {
            Some("drops every stored story in its scope")
        } else if scope == 0 {
            Some("has no stored story in its scope")
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Candidate, ItemId, ParsedEntry};

    fn story(title: &str, feed: &str, categories: &[&str], days_old: i64, now: Timestamp) -> Item {
        let link = format!("https://example.com/{title}");
        let candidate = Candidate {
            fresh_id: ItemId([title.len() as u8; 16]),
            canonical_link: Some(link.clone()),
            entry: ParsedEntry {
                title: title.into(),
                link: Some(link),
                categories: categories.iter().map(|c| c.to_string()).collect(),
                authors: vec!["Matt Posky".into()],
                content: Some("<p>The Ford F-150 Lightning returns.</p>".into()),
                published: Some(now - chrono::Duration::days(days_old)),
                ..Default::default()
            },
        };
        Item::new(feed, candidate, now, now)
    }

    fn rule(action: Action, patterns: &[(Field, &str)], scope: Option<&[&str]>) -> Rule {
        Rule {
            action,
            line: 1,
            patterns: patterns
                .iter()
                .map(|(f, p)| (*f, Regex::new(p).unwrap()))
                .collect(),
            feeds: vec![],
            groups: vec![],
            scope: scope.map(|s| s.iter().map(|f| f.to_string()).collect()),
            older_than: None,
        }
    }

    #[test]
    fn block_wins_keep_drops_the_rest_in_scope_and_every_pattern_must_match() {
        let now = chrono::Utc::now();
        let sponsored = story("Sponsored: deal of the day", "cs", &["Deals"], 1, now);
        let ev = story("The Lightning returns", "cs", &["EV"], 1, now);
        let other = story("A Buick", "ttac", &["Sedans"], 1, now);
        let rules = Rules(vec![
            rule(
                Action::Keep,
                &[(Field::Category, "^(EV|Deals)$")],
                Some(&["cs"]),
            ),
            rule(Action::Block, &[(Field::Title, "(?i)sponsored")], None),
        ]);
        assert_eq!(rules.dropping(&sponsored, now), Some(1), "block wins");
        assert!(rules.keeps(&ev, now));
        assert!(rules.keeps(&other, now), "out of the keep rule's scope");
        let keep_sedans = Rules(vec![rule(
            Action::Keep,
            &[(Field::Category, "Sedans")],
            Some(&["cs"]),
        )]);
        assert_eq!(keep_sedans.dropping(&ev, now), Some(0));

        // Several fields: all must match.
        let both = Rules(vec![rule(
            Action::Block,
            &[(Field::Author, "Posky"), (Field::Content, "F-150")],
            None,
        )]);
        assert!(!both.keeps(&ev, now));
        let one = Rules(vec![rule(
            Action::Block,
            &[(Field::Author, "Posky"), (Field::Url, "nowhere")],
            None,
        )]);
        assert!(one.keeps(&ev, now));
        let any = Rules(vec![rule(Action::Block, &[(Field::Any, "^Sedans$")], None)]);
        assert!(!any.keeps(&other, now) && any.keeps(&ev, now));
    }

    #[test]
    fn older_than_counts_from_the_story_date() {
        let now = chrono::Utc::now();
        let mut r = rule(Action::Block, &[], None);
        r.older_than = Some(Duration::from_secs(30 * 86400));
        let rules = Rules(vec![r]);
        assert!(rules.keeps(&story("new", "a", &[], 29, now), now));
        assert!(!rules.keeps(&story("old", "a", &[], 31, now), now));
        let mut undated = story("undated", "a", &[], 0, now);
        undated.published = None;
        undated.first_seen = now - chrono::Duration::days(40);
        assert!(!rules.keeps(&undated, now), "no date: first seen");
    }

    #[test]
    fn a_tally_warns_of_rules_that_drop_nothing_or_everything() {
        let now = chrono::Utc::now();
        let rules = Rules(vec![
            rule(
                Action::Block,
                &[(Field::Title, "nothing matches this")],
                None,
            ),
            rule(Action::Block, &[], Some(&["cs"])),
            rule(Action::Block, &[(Field::Title, "Buick")], None),
        ]);
        let mut tally = Tally::new(&rules);
        for item in [
            story("A Buick", "ttac", &[], 1, now),
            story("EV", "cs", &[], 1, now),
            story("Van", "ttac", &[], 1, now),
        ] {
            tally.count(&rules, &item, now);
        }
        assert_eq!(tally.dropped, [0, 1, 1]);
        assert_eq!(tally.warning(0), Some("drops no stored story"));
        assert_eq!(
            tally.warning(1),
            Some("drops every stored story in its scope")
        );
        assert_eq!(tally.warning(2), None);
    }
}
