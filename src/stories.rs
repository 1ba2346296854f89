//! The story rules, as plain functions over plain data: who owns a story
//! and when its own site takes it over, how `also_in` grows, which comment
//! count wins, how a comment finds its story, and how a comment joins it.
//! The store persists what these decide and decides nothing itself; no
//! sled, no clock, no network here.
//!
//! Waiting comments follow the same rules: a comment whose story is not
//! stored yet waits under the story's link, and joins (by [`attach`]) the
//! story that arrives with that link, unless one of its other ways to its
//! story found it meanwhile.

use crate::model::{
    Comment, CommentInfo, CommentSource, CountPoint, CountSource, Item, ItemId, Target, Timestamp,
};

/// Whether a feed whose site is `site` is the story's own site: the
/// story's link is on the same host, `www.` aside.
pub fn is_origin(site: Option<&str>, link: Option<&str>) -> bool {
    let host = |u: &str| {
        url::Url::parse(u).ok().and_then(|u| {
            u.host_str()
                .map(|h| h.trim_start_matches("www.").to_ascii_lowercase())
        })
    };
    match (site.and_then(host), link.and_then(host)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Whether `feed` (whose site is `feed_site`) takes a stored story over
/// from its owner (whose site is `owner_site`): it is the story's own
/// site and the owner is not.
pub fn takes_over(
    stored: &Item,
    feed: &str,
    feed_site: Option<&str>,
    owner_site: Option<&str>,
) -> bool {
    let link = stored.link.as_deref();
    stored.feed != feed && is_origin(feed_site, link) && !is_origin(owner_site, link)
}

/// The story as `feed` now tells it (`fresh`). One feed owns a story's
/// content: letting two feeds rewrite it would make it flip between their
/// versions on every poll. The owner is the first feed to store it, until
/// the story's own site carries it ([`takes_over`]); the old owner then
/// joins `also_in`. Another feed only adds itself to `also_in`, fills in
/// comment links the story lacks, and states a count while no feed has.
pub fn merge(mut item: Item, feed: &str, fresh: Item, takes_over: bool) -> Item {
    if takes_over {
        let previous = std::mem::replace(&mut item.feed, feed.to_string());
        item.also_in.retain(|f| f != feed);
        item.also_in.push(previous);
    } else if item.feed != feed {
        if !item.also_in.iter().any(|f| f == feed) {
            item.also_in.push(feed.to_string());
        }
        if let Some(n) = fresh.comments.count
            && item.comments.source != Some(CountSource::Feed)
        {
            offer_count(&mut item.comments, CountSource::Feed, n);
        }
        let comments = &mut item.comments;
        comments.page_url = comments.page_url.take().or(fresh.comments.page_url);
        comments.feed_url = comments.feed_url.take().or(fresh.comments.feed_url);
        return item;
    }
    item.title = fresh.title;
    item.link = fresh.link.or(item.link);
    item.authors = fresh.authors;
    item.summary = fresh.summary;
    item.content = fresh.content;
    item.published = fresh.published.or(item.published);
    item.updated = fresh.updated.or(item.updated);
    item.categories = fresh.categories;
    item.image = fresh.image.or(item.image);
    if let Some(n) = fresh.comments.count {
        offer_count(&mut item.comments, CountSource::Feed, n);
    }
    item.comments.page_url = fresh.comments.page_url.or(item.comments.page_url);
    item.comments.feed_url = fresh.comments.feed_url.or(item.comments.feed_url);
    item
}

/// Takes `count` from `source` unless a better source already said: the
/// contract's order is the story's own feed, then its own comment feed,
/// then the site-wide comments feed (a lower bound). A worse source never
/// replaces a better one; the same source replaces itself.
pub fn offer_count(info: &mut CommentInfo, source: CountSource, count: u32) {
    if info.source.is_none_or(|held| source <= held) {
        info.count = Some(count);
        info.source = Some(source);
    }
}

/// Adds a comment to a story: its recent comments stay newest first, at
/// most `keep`, each comment once; a comment from the site-wide feed counts
/// towards the story's lower-bound count. Returns whether it was new to
/// the story.
pub fn attach(item: &mut Item, comment: &Comment, keep: usize, source: CommentSource) -> bool {
    if item.recent_comments.iter().any(|c| c.id == comment.id) {
        return false;
    }
    item.comments_seen += 1;
    item.recent_comments.push(comment.clone());
    item.recent_comments
        .sort_by_key(|c| std::cmp::Reverse(c.published));
    item.recent_comments.truncate(keep);
    if source == CommentSource::Site {
        offer_count(
            &mut item.comments,
            CountSource::SiteFeed,
            item.comments_seen,
        );
    }
    true
}

/// Joins comments that waited for their story to the story that arrived
/// with their link: each one not found meanwhile through another of its
/// ways (`joined_elsewhere`) attaches as a site-wide comment. Returns the
/// positions in `waiting` of those that joined.
pub fn join_waiting(item: &mut Item, waiting: &[(Comment, bool)], keep: usize) -> Vec<usize> {
    let mut joined = Vec::new();
    for (i, (comment, joined_elsewhere)) in waiting.iter().enumerate() {
        if !*joined_elsewhere && attach(item, comment, keep, CommentSource::Site) {
            joined.push(i);
        }
    }
    joined
}

/// What becomes of a story when `feed` keeps it no longer (retention by
/// count per feed).
#[derive(Debug, PartialEq)]
pub enum Leaving {
    /// The feed owns it: the story goes.
    Remove(ItemId),
    /// The feed only carried it: it leaves `also_in`, and the story stays
    /// with its owner.
    Stay(Box<Item>),
}

pub fn leave(mut item: Item, feed: &str) -> Leaving {
    if item.feed == feed {
        return Leaving::Remove(item.id);
    }
    item.also_in.retain(|f| f != feed);
    Leaving::Stay(Box::new(item))
}

/// Whether a story's own comment feed is worth reading in this poll of
/// `feed`: the count the story will have is new or changed. A new story
/// is read unless its feed says it has no comments; a stored one when the
/// feed states a count other than the stored one, and would be heard
/// (see [`merge`]: a feed that does not own the story is heard only while
/// no feed has stated a count).
pub fn comment_feed_due(feed: &str, stated: Option<u32>, stored: Option<&Item>) -> bool {
    match stored {
        None => stated != Some(0),
        Some(item) if item.feed != feed && item.comments.source == Some(CountSource::Feed) => false,
        Some(item) => stated.is_some() && stated != item.comments.count,
    }
}

/// The story a comment belongs to: its ways to its story (see
/// `comment_feed`) are tried best first, and the first that `find` resolves
/// wins. `find` answers for one way: a story id known for certain, a story
/// link, or a parent comment (itself joined earlier: a reply to a reply
/// reaches the story through the chain).
pub fn find_story<E>(
    targets: &[Target],
    mut find: impl FnMut(&Target) -> Result<Option<ItemId>, E>,
) -> Result<Option<ItemId>, E> {
    for t in targets {
        if let Some(id) = find(t)? {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// Most points of a story's comment history kept: the oldest goes first.
pub const HISTORY_MAX: usize = 200;

/// Records the story's comment count in its history when it differs from
/// the last point (a count that went down is kept as it is). Called for
/// every story a write changes, with the write's time.
pub fn note_count(item: &mut Item, now: Timestamp) {
    let (Some(count), Some(source)) = (item.comments.count, item.comments.source) else {
        return;
    };
    let last = item.comment_history.last();
    if last.is_some_and(|p| p.count == count && p.source == source) {
        return;
    }
    item.comment_history.push(CountPoint {
        at: now,
        count,
        source,
    });
    if item.comment_history.len() > HISTORY_MAX {
        item.comment_history.remove(0);
    }
}

/// How a story's conversation grew in a window (see [`heat`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Heat {
    /// Comments gained in the window.
    pub gained: u32,
    /// The gains weighted by how recent they are.
    pub heat: f64,
    /// When the oldest gain in the window was seen.
    pub since: Option<Timestamp>,
    /// The count comes from the site-wide comments feed alone: a lower
    /// bound, and so are the gains.
    pub lower_bound: bool,
}

/// A story's heat at `now`: each rise of its count in the last `window`
/// (from one history point to the next, both from the same source) weighs
/// `1 - age / window`, so a gain this minute counts fully and one a window
/// ago not at all. The first point is where counting starts: a story
/// first seen with 300 comments has gained none. A count that goes down
/// gains nothing, and a change of source (the site feed's lower bound
/// giving way to the story's own count) starts counting again from the
/// new source's first point.
pub fn heat(history: &[CountPoint], window: std::time::Duration, now: Timestamp) -> Heat {
    let mut h = Heat {
        lower_bound: history
            .last()
            .is_some_and(|p| p.source == CountSource::SiteFeed),
        ..Heat::default()
    };
    let window_s = window.as_secs_f64();
    for pair in history.windows(2) {
        let (before, after) = (pair[0], pair[1]);
        let age = (now - after.at).to_std().map_or(0.0, |d| d.as_secs_f64());
        if age >= window_s || after.at > now || before.source != after.source {
            continue;
        }
        let gain = after.count.saturating_sub(before.count);
        if gain == 0 {
            continue;
        }
        h.gained += gain;
        h.heat += gain as f64 * (1.0 - age / window_s);
        h.since = Some(h.since.map_or(after.at, |s: Timestamp| s.min(after.at)));
    }
    h
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::model::Timestamp;

    fn at(hour: u32) -> Timestamp {
        use chrono::TimeZone;
        chrono::Utc
            .with_ymd_and_hms(2026, 11, 21, hour, 0, 0)
            .unwrap()
    }

    fn story(feed: &str, link: &str) -> Item {
        Item {
            id: ItemId([1; 16]),
            feed: feed.into(),
            also_in: Vec::new(),
            guid: None,
            title: format!("as {feed} tells it"),
            link: Some(link.into()),
            authors: Vec::new(),
            summary: None,
            content: None,
            published: None,
            updated: None,
            first_seen: at(8),
            last_changed: at(8),
            categories: Vec::new(),
            image: None,
            comments: CommentInfo::default(),
            recent_comments: Vec::new(),
            comments_seen: 0,
            comment_history: Vec::new(),
        }
    }

    fn comment(id: &str, hour: u32) -> Comment {
        Comment {
            id: id.into(),
            author: None,
            text: id.into(),
            url: None,
            published: Some(at(hour)),
        }
    }

    const LINK: &str = "https://www.thetruthaboutcars.com/2012/04/infiniti/";

    #[test]
    fn the_story_s_own_site_takes_it_over_and_keeps_it() {
        let wire = story("wire", LINK);
        let ttac_site = Some("https://thetruthaboutcars.com/");
        let wire_site = Some("https://wire.example/");
        assert!(takes_over(&wire, "ttac", ttac_site, wire_site));
        let taken = merge(wire.clone(), "ttac", story("ttac", LINK), true);
        assert_eq!(taken.feed, "ttac");
        assert_eq!(taken.also_in, ["wire"]);
        assert_eq!(taken.title, "as ttac tells it");
        // An origin owner keeps it; a feed that is not the origin never
        // takes over; the owner itself does not "take over".
        assert!(!takes_over(&taken, "mirror", ttac_site, ttac_site));
        assert!(!takes_over(&wire, "other", wire_site, wire_site));
        assert!(!takes_over(&taken, "ttac", ttac_site, wire_site));
    }

    #[test]
    fn other_feeds_join_also_in_once_and_change_no_content() {
        let owned = story("ttac", LINK);
        let mut other = story("wire", LINK);
        other.comments.page_url = Some("https://wire.example/c".into());
        other.comments.count = Some(7);
        let once = merge(owned, "wire", other.clone(), false);
        let twice = merge(once.clone(), "wire", other, false);
        assert_eq!(twice.also_in, ["wire"]);
        assert_eq!(twice.title, "as ttac tells it");
        // It fills in what the owner left out: a comments page and a count.
        assert_eq!(
            twice.comments.page_url.as_deref(),
            Some("https://wire.example/c")
        );
        assert_eq!(twice.comments.count, Some(7));
        assert_eq!(once, twice);
    }

    #[test]
    fn a_better_count_source_wins_and_a_worse_never_replaces_it() {
        let mut info = CommentInfo::default();
        offer_count(&mut info, CountSource::SiteFeed, 2);
        offer_count(&mut info, CountSource::ItemFeed, 5);
        assert_eq!(
            (info.count, info.source),
            (Some(5), Some(CountSource::ItemFeed))
        );
        offer_count(&mut info, CountSource::SiteFeed, 9);
        assert_eq!(info.count, Some(5), "the site feed is only a lower bound");
        offer_count(&mut info, CountSource::Feed, 4);
        offer_count(&mut info, CountSource::ItemFeed, 6);
        assert_eq!(
            (info.count, info.source),
            (Some(4), Some(CountSource::Feed))
        );
        offer_count(&mut info, CountSource::Feed, 3);
        assert_eq!(info.count, Some(3), "a source replaces itself");
    }

    #[test]
    fn comments_join_once_newest_first_and_count_from_the_site_feed() {
        let mut item = story("ttac", LINK);
        assert!(attach(&mut item, &comment("a", 9), 2, CommentSource::Site));
        assert!(attach(&mut item, &comment("b", 11), 2, CommentSource::Site));
        assert!(!attach(&mut item, &comment("a", 9), 2, CommentSource::Site));
        assert!(attach(&mut item, &comment("c", 10), 2, CommentSource::Site));
        let ids: Vec<_> = item.recent_comments.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["b", "c"], "newest first, at most `keep`");
        assert_eq!(item.comments_seen, 3);
        assert_eq!(item.comments.count, Some(3));
        assert_eq!(item.comments.source, Some(CountSource::SiteFeed));
        // A story's own comment feed states its count by its length instead.
        let mut own = story("ttac", LINK);
        let source = CommentSource::ItemFeed {
            item: own.id,
            entries: 40,
        };
        attach(&mut own, &comment("a", 9), 5, source);
        assert_eq!(own.comments.count, None);
    }

    #[test]
    fn a_feed_that_keeps_a_story_no_longer_removes_only_its_own() {
        let mut shared = story("ttac", LINK);
        shared.also_in = vec!["wire".into(), "mirror".into()];
        assert_eq!(leave(shared.clone(), "ttac"), Leaving::Remove(shared.id));
        match leave(shared, "wire") {
            Leaving::Stay(item) => {
                assert_eq!(item.feed, "ttac");
                assert_eq!(item.also_in, ["mirror"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn waiting_comments_join_the_story_that_brings_their_link() {
        let mut item = story("ttac", LINK);
        let waiting = [
            (comment("early", 9), false),
            (comment("found-through-its-parent", 10), true),
            (comment("late", 11), false),
        ];
        assert_eq!(join_waiting(&mut item, &waiting, 5), [0, 2]);
        let ids: Vec<_> = item.recent_comments.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["late", "early"]);
        assert_eq!(
            item.comments.count,
            Some(2),
            "a lower bound from the site feed"
        );
        assert_eq!(item.comments.source, Some(CountSource::SiteFeed));
    }

    #[test]
    fn a_story_s_comment_feed_is_read_when_its_count_moves() {
        let mut stored = story("ttac", LINK);
        assert!(comment_feed_due("ttac", None, None), "new, count unknown");
        assert!(
            comment_feed_due("ttac", Some(4), None),
            "new, with comments"
        );
        assert!(
            !comment_feed_due("ttac", Some(0), None),
            "new, none to read"
        );
        offer_count(&mut stored.comments, CountSource::Feed, 4);
        assert!(
            !comment_feed_due("ttac", Some(4), Some(&stored)),
            "unchanged"
        );
        assert!(
            !comment_feed_due("ttac", None, Some(&stored)),
            "nothing said"
        );
        assert!(comment_feed_due("ttac", Some(5), Some(&stored)), "one more");
        // Another feed's different count is not heard, so not news.
        assert!(!comment_feed_due("wire", Some(9), Some(&stored)));
    }

    #[test]
    fn a_reply_to_a_reply_finds_the_story_through_its_parents() {
        let story_id = ItemId([9; 16]);
        let links = HashMap::from([(LINK.to_string(), story_id)]);
        let mut joined: HashMap<String, ItemId> = HashMap::new();
        let find = |targets: &[Target], joined: &HashMap<String, ItemId>| {
            find_story::<()>(targets, |t| {
                Ok(match t {
                    Target::Item(id) => (*id == story_id).then_some(*id),
                    Target::Link(l) => links.get(l).copied(),
                    Target::Comment(parent) => joined.get(parent).copied(),
                })
            })
            .unwrap()
        };
        // The first comment names the story by link; a reply names only
        // its parent; a reply to that reply only its own parent.
        let first = find(&[Target::Link(LINK.into())], &joined);
        assert_eq!(first, Some(story_id));
        joined.insert("c1".into(), story_id);
        let reply = find(&[Target::Comment("c1".into())], &joined);
        joined.insert("c2".into(), reply.unwrap());
        assert_eq!(
            find(&[Target::Comment("c2".into())], &joined),
            Some(story_id)
        );
        // Best first: an unknown id does not stop a later way from working.
        let ways = [Target::Item(ItemId([0; 16])), Target::Link(LINK.into())];
        assert_eq!(find(&ways, &joined), Some(story_id));
        assert_eq!(find(&[Target::Comment("unknown".into())], &joined), None);
    }

    fn point(hours_ago: i64, count: u32, source: CountSource, now: Timestamp) -> CountPoint {
        CountPoint {
            at: now - chrono::Duration::hours(hours_ago),
            count,
            source,
        }
    }

    #[test]
    fn heat_weighs_recent_gains_and_counts_none_from_the_first_point() {
        let now = at(12);
        let day = std::time::Duration::from_secs(86400);
        let feed = CountSource::Feed;
        // First seen with 300: nothing gained.
        assert_eq!(heat(&[point(1, 300, feed, now)], day, now).gained, 0);
        // 40 -> 52 six hours ago -> 60 now; a gain 30 hours ago is out.
        let h = heat(
            &[
                point(30, 10, feed, now),
                point(29, 40, feed, now),
                point(6, 52, feed, now),
                point(0, 60, feed, now),
            ],
            day,
            now,
        );
        assert_eq!(h.gained, 20);
        assert!((h.heat - (12.0 * 0.75 + 8.0)).abs() < 1e-9, "{h:?}");
        assert_eq!(h.since, Some(now - chrono::Duration::hours(6)));
        // Deleted comments are no negative gain; a source change is a new start.
        let h = heat(
            &[
                point(5, 50, feed, now),
                point(4, 45, feed, now),
                point(3, 47, feed, now),
            ],
            day,
            now,
        );
        assert_eq!(h.gained, 2);
        let h = heat(
            &[
                point(5, 3, CountSource::SiteFeed, now),
                point(4, 40, feed, now),
                point(1, 41, feed, now),
            ],
            day,
            now,
        );
        assert_eq!((h.gained, h.lower_bound), (1, false));
        let site = heat(
            &[
                point(5, 3, CountSource::SiteFeed, now),
                point(4, 5, CountSource::SiteFeed, now),
            ],
            day,
            now,
        );
        assert_eq!((site.gained, site.lower_bound), (2, true));
    }

    #[test]
    fn the_history_notes_changes_only_and_is_bounded() {
        let now = at(12);
        let mut item = Item::new("f", candidate_with_count(Some(4)), now, now);
        assert_eq!(item.comment_history.len(), 1, "first seen with a count");
        note_count(&mut item, now);
        assert_eq!(item.comment_history.len(), 1, "no change, no point");
        for n in 0..(HISTORY_MAX as u32 + 10) {
            item.comments.count = Some(5 + n);
            note_count(&mut item, now + chrono::Duration::minutes(n as i64));
        }
        assert_eq!(item.comment_history.len(), HISTORY_MAX);
        assert_eq!(
            item.comment_history.last().unwrap().count,
            5 + HISTORY_MAX as u32 + 9
        );
        item.comments.count = Some(1);
        note_count(&mut item, now + chrono::Duration::days(1));
        assert_eq!(
            item.comment_history.last().unwrap().count,
            1,
            "a drop is kept as it is"
        );
    }

    fn candidate_with_count(count: Option<u32>) -> crate::model::Candidate {
        let mut entry = crate::model::ParsedEntry {
            title: "A story".into(),
            ..Default::default()
        };
        entry.comments.count = count;
        crate::model::Candidate {
            fresh_id: ItemId([1; 16]),
            canonical_link: None,
            entry,
        }
    }
}
