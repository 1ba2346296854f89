//! The read side shared by the HTTP server and the command line: how the
//! outputs name feeds, and the digest's parameters and assembly. Reads the
//! store; never fetches.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::config::{Config, FeedConfig, MAX_LIMIT, Source};
use crate::model::{FeedState, Item, RecentComment, Timestamp, earlier};
use crate::render::digest::{DigestInput, FeedHealth, digest};
use crate::render::{Directory, FeedInfo};
use crate::store::{Store, StoreError};

/// Stories in a digest when the request gives no `limit`.
pub const DIGEST_DEFAULT_LIMIT: usize = 100;
/// Recent comments in a digest, at most.
pub const DIGEST_COMMENTS: usize = 20;
/// The digest's window when the request gives no `since`.
pub const DIGEST_DEFAULT_WINDOW: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An output's own URL under `[server].base_url`.
pub fn url(config: &Config, path: &str) -> String {
    config
        .server
        .base_url
        .join(path)
        .map(String::from)
        .unwrap_or_else(|_| format!("{}{path}", config.server.base_url))
}

/// Every configured feed's stored state, read once per request. A store
/// that cannot be read names feeds by their ids.
pub fn feed_states(store: &Store, config: &Config) -> HashMap<String, FeedState> {
    let ids: Vec<&str> = config.feeds.iter().map(|f| f.id.as_str()).collect();
    states_of(store, ids)
}

/// The stored states of `ids`, by id; defaults when the store cannot be
/// read (outputs then name feeds by their ids).
fn states_of(store: &Store, ids: Vec<&str>) -> HashMap<String, FeedState> {
    let states = store.feed_states(&ids).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "feed states could not be read; feeds are named by their ids");
        vec![FeedState::default(); ids.len()]
    });
    ids.into_iter().map(String::from).zip(states).collect()
}

/// How outputs name each configured feed.
pub fn directory(store: &Store, config: &Config) -> Directory {
    directory_of(config, &feed_states(store, config))
}

/// [`directory`] of only the feeds `items` name (their own and
/// `also_in`): an output of fifty stories reads fifty-odd feed states, not
/// every configured feed's.
pub fn directory_for<'a>(
    store: &Store,
    config: &Config,
    items: impl IntoIterator<Item = &'a Item>,
) -> Directory {
    let named: HashSet<&str> = items.into_iter().flat_map(Item::feeds).collect();
    let feeds: Vec<&FeedConfig> = (config.feeds.iter())
        .filter(|f| named.contains(f.id.as_str()))
        .collect();
    let states = states_of(store, feeds.iter().map(|f| f.id.as_str()).collect());
    directory_from(config, feeds.into_iter(), &states)
}

/// [`directory`] from states already read.
pub fn directory_of(config: &Config, states: &HashMap<String, FeedState>) -> Directory {
    directory_from(config, config.feeds.iter(), states)
}

fn directory_from<'a>(
    config: &Config,
    feeds: impl Iterator<Item = &'a FeedConfig>,
    states: &HashMap<String, FeedState>,
) -> Directory {
    feeds
        .map(|f| {
            let stored = states.get(&f.id);
            let info = FeedInfo {
                id: f.id.clone(),
                title: f
                    .title
                    .clone()
                    .or_else(|| stored.and_then(|s| s.title.clone()))
                    .unwrap_or_else(|| f.id.clone()),
                url: match &f.source {
                    Source::Http(u) => u.to_string(),
                    Source::File(_) => url(config, &format!("feeds/{}/feed.rss", f.id)),
                },
                site: stored.and_then(|s| s.site_link.clone()),
            };
            (f.id.clone(), info)
        })
        .collect()
}

/// `limit`: 1 to [`MAX_LIMIT`], else `default`.
pub fn limit(raw: Option<&str>, default: usize) -> Result<usize, ReadError> {
    match raw {
        None => Ok(default),
        Some(raw) => match raw.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(ReadError::BadRequest(format!(
                "limit must be a whole number from 1 to {MAX_LIMIT}, not {raw:?}"
            ))),
        },
    }
}

/// `since`: an RFC 3339 time, or a duration back from `now` ("24h", "7d").
/// No story was stored before 1970, so an earlier time (or a duration
/// reaching past it) is read as the epoch: every answer is a time the
/// digest can print as RFC 3339.
pub fn since(raw: Option<&str>, now: Timestamp) -> Result<Timestamp, ReadError> {
    let Some(raw) = raw.map(str::trim) else {
        return Ok(earlier(now, DIGEST_DEFAULT_WINDOW));
    };
    let epoch = chrono::DateTime::UNIX_EPOCH;
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&chrono::Utc).max(epoch));
    }
    match humantime::parse_duration(raw) {
        Ok(d) => Ok(earlier(now, d).max(epoch)),
        Err(_) => Err(ReadError::BadRequest(format!(
            "since must be an RFC 3339 time like \"2026-11-20T08:00:00Z\" or a duration like \"24h\" or \"7d\", not {raw:?}"
        ))),
    }
}

/// The stories whose conversation grew in `[output].heat_window` (within
/// `members` when given, and kept by the rules), hottest first, at most
/// `limit`. A story not changed in the window gained nothing, so only
/// those are weighed; every stored story is read to find them.
pub fn rising(
    store: &Store,
    config: &Config,
    members: Option<&[&str]>,
    limit: usize,
    now: Timestamp,
) -> Result<Vec<(Item, crate::stories::Heat)>, StoreError> {
    let window = config.output.heat_window;
    let since = earlier(now, window);
    let hot = std::cell::RefCell::new(Vec::new());
    let visit = |item: &Item| {
        if item.last_changed < since
            || members.is_some_and(|m| !item.feeds().any(|f| m.contains(&f)))
            || !config.rules.keeps(item, now)
        {
            return false;
        }
        let heat = crate::stories::heat(&item.comment_history, window, now);
        if heat.heat > 0.0 {
            hot.borrow_mut().push((item.clone(), heat));
        }
        false
    };
    store.latest(usize::MAX, &visit)?;
    let mut hot = hot.into_inner();
    hot.sort_by(|(a, ha), (b, hb)| {
        hb.heat
            .total_cmp(&ha.heat)
            .then(hb.gained.cmp(&ha.gained))
            .then(b.sort_time().cmp(&a.sort_time()))
            .then(a.id.cmp(&b.id))
    });
    hot.truncate(limit);
    Ok(hot)
}

/// Walks the stored stories (all, or one feed's) and counts what the
/// rules do to them at `now`; `each` sees every story with the index of
/// the rule that drops it, if any.
pub fn rule_tally(
    store: &Store,
    config: &Config,
    feed: Option<&str>,
    now: Timestamp,
    each: &mut dyn FnMut(&Item, Option<usize>),
) -> Result<crate::rules::Tally, StoreError> {
    let tally = std::cell::RefCell::new(crate::rules::Tally::new(&config.rules));
    let each = std::cell::RefCell::new(each);
    // Nothing is kept: the walk only visits.
    let visit = |item: &Item| {
        let dropping = tally.borrow_mut().count(&config.rules, item, now);
        (each.borrow_mut())(item, dropping);
        false
    };
    match feed {
        Some(feed) => store.latest_in_feed(feed, usize::MAX, &visit)?,
        None => store.latest(usize::MAX, &visit)?,
    };
    Ok(tally.into_inner())
}

/// Whether a recent comment stays in the outputs: the rules leave out the
/// comments of the stories they leave out (a comment still waiting for its
/// story stays).
pub fn comment_kept<'a>(
    store: &'a Store,
    config: &'a Config,
    now: Timestamp,
) -> impl Fn(&RecentComment) -> bool + 'a {
    move |c: &RecentComment| match c.item {
        Some(id) if !config.rules.is_empty() => match store.item(&id) {
            Ok(Some(item)) => config.rules.keeps(&item, now),
            _ => true,
        },
        _ => true,
    }
}

/// The feeds of a group, or an error naming the unknown group.
pub fn group_members<'c>(config: &'c Config, group: &str) -> Result<Vec<&'c str>, ReadError> {
    let members: Vec<&str> = config
        .feeds
        .iter()
        .filter(|f| f.groups.iter().any(|g| g == group))
        .map(|f| f.id.as_str())
        .collect();
    if members.is_empty() {
        return Err(ReadError::NotFound(format!("no group named {group:?}")));
    }
    Ok(members)
}

/// What a digest request asks for, as given.
#[derive(Debug, Default, Clone)]
pub struct DigestQuery {
    pub since: Option<String>,
    pub group: Option<String>,
    pub limit: Option<String>,
}

/// Assembles the digest as JSON. The window ends at a store cursor, so
/// back-to-back windows chained by `next_since` neither overlap nor leave
/// a gap.
pub fn digest_json(
    store: &Store,
    config: &Config,
    query: &DigestQuery,
) -> Result<String, ReadError> {
    let until = store.cursor();
    let since = since(query.since.as_deref(), until)?;
    let limit = limit(query.limit.as_deref(), DIGEST_DEFAULT_LIMIT)?;
    let members = match &query.group {
        Some(g) => Some(group_members(config, g)?),
        None => None,
    };
    let now = chrono::Utc::now();
    let in_scope = |item: &Item| {
        members
            .as_ref()
            .is_none_or(|m| item.feeds().any(|f| m.contains(&f)))
            && config.rules.keeps(item, now)
    };
    let (items, more) = store.first_seen_between(since, until.max(since), limit, &in_scope)?;
    // Comments by when they were stored, like stories: a backdated comment
    // is in the window it arrived in.
    let in_window = |c: &RecentComment| {
        c.stored
            .or(c.comment.published)
            .is_none_or(|t| t >= since && t < until)
    };
    let in_group = |c: &RecentComment| match c.item {
        None => members.is_none(),
        Some(_) if members.is_none() && config.rules.is_empty() => true,
        Some(id) => match store.item(&id).ok().flatten() {
            Some(i) => {
                members
                    .as_ref()
                    .is_none_or(|m| i.feeds().any(|f| m.contains(&f)))
                    && config.rules.keeps(&i, now)
            }
            None => members.is_none(),
        },
    };
    let comments = store.recent_comments(DIGEST_COMMENTS, &|c| in_window(c) && in_group(c))?;
    let states = feed_states(store, config);
    let feeds = config
        .feeds
        .iter()
        .filter(|f| members.as_ref().is_none_or(|m| m.contains(&f.id.as_str())))
        .map(|f| {
            let state = states.get(&f.id).cloned().unwrap_or_default();
            FeedHealth {
                id: f.id.clone(),
                title: f
                    .title
                    .clone()
                    .or(state.title)
                    .unwrap_or_else(|| f.id.clone()),
                ok: state.last_error.is_none() && state.last_success.is_some(),
                last_error: state.last_error.map(|e| e.message),
                last_success: state.last_success,
            }
        })
        .collect();
    let directory = directory_of(config, &states);
    let groups = |feed: &str| {
        config
            .feed(feed)
            .map(|f| f.groups.clone())
            .unwrap_or_default()
    };
    let input = DigestInput {
        title: &config.server.title,
        generated_at: chrono::Utc::now(),
        since,
        until,
        next_since: more.unwrap_or(until),
        group: query.group.as_deref(),
        items: &items,
        comments: &comments,
        feeds,
        directory: &directory,
        groups: &groups,
        heat_window: config.output.heat_window,
    };
    Ok(serde_json::to_string_pretty(&digest(&input)).expect("plain data serializes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_times_and_durations() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-21T08:00:00Z")
            .unwrap()
            .to_utc();
        let at = |s| since(Some(s), now).unwrap().to_rfc3339();
        assert_eq!(at("24h"), "2026-11-20T08:00:00+00:00");
        assert_eq!(at("7d"), "2026-11-14T08:00:00+00:00");
        assert_eq!(at("2026-11-20T09:30:00+01:00"), "2026-11-20T08:30:00+00:00");
        assert_eq!(
            since(None, now).unwrap().to_rfc3339(),
            "2026-11-20T08:00:00+00:00"
        );
        assert!(matches!(
            since(Some("yesterday"), now),
            Err(ReadError::BadRequest(_))
        ));
        assert!(matches!(limit(Some("0"), 5), Err(ReadError::BadRequest(_))));
        // Far back, by time or by duration, is the epoch; never a panic.
        for far in ["1600-01-01T00:00:00Z", "500y", "350y", "300000y"] {
            assert_eq!(
                since(Some(far), now).unwrap(),
                chrono::DateTime::UNIX_EPOCH,
                "{far}"
            );
        }
        assert_eq!(limit(None, 5).unwrap(), 5);
    }
}

#[cfg(test)]
mod directory_tests {
    use super::*;

    #[test]
    fn an_output_reads_only_the_feeds_its_stories_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("feeds.toml");
        let feeds: String = ["ttac", "wire", "idle"]
            .iter()
            .map(|id| format!("[[feed]]\nid = \"{id}\"\nurl = \"https://{id}.example/feed/\"\n"))
            .collect();
        std::fs::write(&path, feeds).unwrap();
        let config = Config::load(&path).unwrap();
        let store = crate::store::open_configured(&config.storage).unwrap();
        let titled = |title: &str| FeedState {
            title: Some(title.into()),
            ..Default::default()
        };
        store
            .put_feed_state("ttac", &titled("The Truth About Cars"))
            .unwrap();
        store.put_feed_state("idle", &titled("Idle")).unwrap();
        let item = crate::render::testing::item();
        let named = directory_for(store.as_ref(), &config, [&item]);
        let mut ids: Vec<&String> = named.keys().collect();
        ids.sort();
        assert_eq!(ids, ["ttac", "wire"], "the story's feed and its also_in");
        assert_eq!(named["ttac"].title, "The Truth About Cars");
        assert_eq!(named["wire"].title, "wire");
        assert_eq!(named["wire"].url, "https://wire.example/feed/");
    }
}
