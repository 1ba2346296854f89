//! Plain data handed between the pipeline stages. Depends on nothing but
//! serde and chrono, so every stage can use it and none owns it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A point in time, always UTC.
pub type Timestamp = DateTime<Utc>;

/// Nanoseconds since the epoch, saturating on the side the time is on: a
/// time before 1677 is `i64::MIN`, after 2262 `i64::MAX`, so order holds
/// for every time a query or a config can name.
pub fn nanos(t: Timestamp) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

/// `t + d`, or the latest time chrono can hold when that overflows: time
/// arithmetic on input (config durations, query parameters, server hints)
/// saturates instead of panicking.
pub fn later(t: Timestamp, d: std::time::Duration) -> Timestamp {
    chrono::TimeDelta::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `t - d`, or the earliest time chrono can hold when that overflows.
pub fn earlier(t: Timestamp, d: std::time::Duration) -> Timestamp {
    chrono::TimeDelta::from_std(d)
        .ok()
        .and_then(|d| t.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// One entry of a feed document as the parser saw it, before identity and
/// dedupe: links are absolute, text fields are what the feed said.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedEntry {
    /// The feed's own id (`<guid>`, Atom `<id>`, JSON `id`), if it gave one.
    pub guid: Option<String>,
    /// Plain-text title (markup removed, entities decoded).
    pub title: String,
    /// The article link, absolute; `feedburner:origLink` when present.
    pub link: Option<String>,
    pub authors: Vec<String>,
    /// HTML, as the feed gave it; sanitized only when rendered.
    pub summary: Option<String>,
    pub content: Option<String>,
    pub published: Option<Timestamp>,
    pub updated: Option<Timestamp>,
    pub categories: Vec<String>,
    pub image: Option<String>,
    pub comments: CommentInfo,
}

/// What the feeds said about the conversation around one story.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CommentInfo {
    /// `None` when no source stated a count: unknown is not zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Where `count` came from; a better source replaces a worse one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<CountSource>,
    /// The HTML page where the comments are read (RSS `<comments>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_url: Option<String>,
    /// The story's own comment feed (`wfw:commentRss`, Atom `replies`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed_url: Option<String>,
}

/// Where a comment count came from, best first (the contract's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CountSource {
    /// The story's own `slash:comments`, `thr:total` or `thr:count`.
    Feed,
    /// The number of entries in the story's own comment feed.
    ItemFeed,
    /// The number of distinct comments the site-wide comments feed joined
    /// to the story: a lower bound.
    SiteFeed,
}

/// One comment, as stored and shown: plain text, never markup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comment {
    /// The comment's own id (guid, Atom id), else its link.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// A plain-text excerpt, cut at a word boundary.
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<Timestamp>,
}

/// An entry of the site-wide stream of recent comments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecentComment {
    pub comment: Comment,
    /// The story it belongs to, once joined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<ItemId>,
    /// When Paddock stored it: a stamp from the store's writer, like a
    /// story's `first_seen`, so digest windows chained by `next_since`
    /// meet exactly. Absent in entries stored before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored: Option<Timestamp>,
}

/// A comment from a comments feed, not yet joined to its story.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingComment {
    pub comment: Comment,
    /// Ways to find the story, best first.
    pub targets: Vec<Target>,
}

/// One way to find the story a comment belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Known for certain (the story's own comment feed).
    Item(ItemId),
    /// The story's canonical link.
    Link(String),
    /// The id of the parent comment, itself joined earlier.
    Comment(String),
}

/// A parsed feed document.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedFeed {
    pub title: Option<String>,
    pub site_link: Option<String>,
    /// `<link rel="hub">` (Atom, or `atom:link` in RSS) and `rel="self"`.
    pub hub: Option<String>,
    pub self_link: Option<String>,
    pub entries: Vec<ParsedEntry>,
    /// RSS `<ttl>` or `sy:updatePeriod`: how often the feed says it changes.
    pub update_every: Option<std::time::Duration>,
}

/// An entry after normalization: it knows its identity keys but not yet
/// whether the store has seen it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The id this entry gets if the store has never seen it.
    pub fresh_id: ItemId,
    /// Canonical link: the cross-feed dedupe key.
    pub canonical_link: Option<String>,
    pub entry: ParsedEntry,
}

/// A stable item id: 16 bytes derived from the item's identity, never random.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct ItemId(pub [u8; 16]);

impl ItemId {
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(32);
        for b in self.0 {
            s.push(DIGITS[usize::from(b >> 4)] as char);
            s.push(DIGITS[usize::from(b & 0xf)] as char);
        }
        s
    }

    /// Reads what [`ItemId::to_hex`] writes (either case).
    pub fn from_hex(s: &str) -> Option<ItemId> {
        if s.len() != 32 {
            return None;
        }
        let mut out = [0u8; 16];
        let mut digits = s.chars().map(|c| c.to_digit(16));
        for byte in &mut out {
            let (hi, lo) = (digits.next()??, digits.next()??);
            *byte = (hi << 4 | lo) as u8;
        }
        Some(ItemId(out))
    }

    /// The id as a URN (`urn:uuid:` form), for Atom `<id>` and RSS `<guid>`:
    /// a name-based UUID (version 5 bits and RFC 4122 variant set on the
    /// hash), so it is as stable as the id.
    pub fn urn(&self) -> String {
        let mut b = self.0;
        b[6] = (b[6] & 0x0f) | 0x50;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h = ItemId(b).to_hex();
        format!(
            "urn:uuid:{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

impl std::fmt::Display for ItemId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl From<ItemId> for String {
    fn from(id: ItemId) -> String {
        id.to_hex()
    }
}

impl TryFrom<String> for ItemId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        ItemId::from_hex(&s).ok_or_else(|| format!("not an item id: {s:?}"))
    }
}

/// A story as stored and republished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub id: ItemId,
    /// The feed that first brought the story; it keeps it.
    pub feed: String,
    /// Other feeds that carried the same story (same canonical link).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_in: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guid: Option<String>,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<Timestamp>,
    /// When Paddock first stored the story; never changes afterwards.
    pub first_seen: Timestamp,
    /// When a poll last changed the story.
    pub last_changed: Timestamp,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default)]
    pub comments: CommentInfo,
    /// The newest comments, newest first, at most `[output].recent_comments`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_comments: Vec<Comment>,
    /// Distinct comments Paddock has joined to this story.
    #[serde(default)]
    pub comments_seen: u32,
    /// The comment count each time it changed, oldest first, at most
    /// `stories::HISTORY_MAX` points (see `stories::note_count`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comment_history: Vec<CountPoint>,
}

/// A story's comment count at one time, and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountPoint {
    #[serde(rename = "t")]
    pub at: Timestamp,
    #[serde(rename = "n")]
    pub count: u32,
    #[serde(rename = "s")]
    pub source: CountSource,
}

impl Item {
    /// A story first stored now, from `feed`'s entry.
    pub fn new(feed: &str, c: Candidate, first_seen: Timestamp, now: Timestamp) -> Item {
        let e = c.entry;
        let mut comments = e.comments;
        if comments.count.is_some() {
            comments.source = Some(CountSource::Feed);
        }
        Item {
            id: c.fresh_id,
            feed: feed.to_string(),
            also_in: Vec::new(),
            guid: e.guid,
            title: e.title,
            link: e.link,
            authors: e.authors,
            summary: e.summary,
            content: e.content,
            published: e.published,
            updated: e.updated,
            first_seen,
            last_changed: now,
            categories: e.categories,
            image: e.image,
            comment_history: match (comments.count, comments.source) {
                (Some(count), Some(source)) => vec![CountPoint {
                    at: now,
                    count,
                    source,
                }],
                _ => Vec::new(),
            },
            comments,
            recent_comments: Vec::new(),
            comments_seen: 0,
        }
    }

    /// The time the merged outputs sort by: the stated publication time,
    /// but never later than when Paddock first saw the story, so a feed that
    /// dates its items in the future cannot pin them to the top.
    pub fn sort_time(&self) -> Timestamp {
        match self.published.or(self.updated) {
            Some(p) if p < self.first_seen => p,
            _ => self.first_seen,
        }
    }

    /// Every feed that carried this story, the owner first.
    pub fn feeds(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.feed.as_str()).chain(self.also_in.iter().map(String::as_str))
    }
}

/// A feed's validators for conditional GET, stored exactly as received.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validators {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

impl Validators {
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// The small set of ways a poll fails, each with a sentence for operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Timeout,
    Connect,
    Dns,
    Tls,
    HttpStatus,
    Gone,
    TooLarge,
    Redirects,
    /// The answer broke off, or its body could not be decompressed.
    Body,
    /// The answer was not HTTP a client can read (oversized headers, a
    /// garbled status line).
    Protocol,
    NotAFeed,
    Parse,
    File,
    Store,
    Internal,
}

impl ErrorKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Dns => "dns",
            ErrorKind::Tls => "tls",
            ErrorKind::HttpStatus => "http_status",
            ErrorKind::Gone => "gone",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Redirects => "redirects",
            ErrorKind::Body => "body",
            ErrorKind::Protocol => "protocol",
            ErrorKind::NotAFeed => "not_a_feed",
            ErrorKind::Parse => "parse",
            ErrorKind::File => "file",
            ErrorKind::Store => "store",
            ErrorKind::Internal => "internal",
        }
    }
}

/// A recorded poll failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollFailure {
    pub kind: ErrorKind,
    pub message: String,
    pub at: Timestamp,
}

/// What Paddock remembers about one feed between polls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeedState {
    #[serde(default)]
    pub validators: Validators,
    /// The feed's own title, from its last good document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<PollFailure>,
    #[serde(default)]
    pub consecutive_failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_poll: Option<Timestamp>,
    /// The last failure fetching this feed's comment feeds; comments never
    /// fail the feed's poll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comments_error: Option<PollFailure>,
    /// Comment-feed links in the feed's content that pointed at another
    /// host and were not followed.
    #[serde(default)]
    pub skipped_comment_feeds: u64,
    /// The site-wide comments feed's validators, stored with the comments
    /// they stand for, and the URL they came from (`comments_url` may
    /// change: another URL's validators are not sent).
    #[serde(default, skip_serializing_if = "Validators::is_empty")]
    pub comments_validators: Validators,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comments_validators_url: Option<String>,
    /// Set when every redirect to the document was permanent: the URL to
    /// put in the config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_to: Option<String>,
    /// The URL that answered 410 Gone; not polled again while configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gone: Option<String>,
    /// The WebSub hub the feed advertises, and its topic (`rel="self"`),
    /// from the last document (its `Link` header first, then the document).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<WebSubLink>,
    /// While a hub's subscription holds, the feed is polled only at
    /// `[poll].max_interval`, as a safety net.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_until: Option<Timestamp>,
}

/// A hub and the topic to subscribe to there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebSubLink {
    pub hub: String,
    pub topic: String,
}

/// What one poll of one feed did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    NotModified,
    /// Another instance sharing the store polled the feed since it was
    /// due (or is polling it now): nothing was fetched here.
    Elsewhere,
    Stored {
        new: usize,
        updated: usize,
        unchanged: usize,
    },
    Failed(PollFailure),
}

#[derive(Debug, Clone)]
pub struct PollReport {
    pub feed: String,
    pub outcome: Outcome,
    pub elapsed: std::time::Duration,
    /// The fetch alone, when one was made.
    pub fetch_elapsed: Option<std::time::Duration>,
    pub next_poll: Timestamp,
    /// The feed answered 410 Gone: it is not polled again until its url
    /// changes in the config.
    pub gone: bool,
}

/// Where a batch of comments came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CommentSource {
    /// A site-wide comments feed (`comments_url`).
    Site,
    /// One story's own comment feed, which listed `entries` comments.
    ItemFeed { item: ItemId, entries: u32 },
}

/// A comments document read in the same poll as its feed, to be stored in
/// the feed's own write.
#[derive(Debug, Clone)]
pub struct CommentBatch {
    pub comments: Vec<IncomingComment>,
    pub source: CommentSource,
    /// The document's URL.
    pub url: String,
    /// Its validators, kept for its next fetch; `None` for a site-wide
    /// comments feed, whose validators travel in the feed's state.
    pub validators: Option<Validators>,
}

/// What one ingest changed, so later stages only do new work.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    pub new: Vec<ItemId>,
    pub updated: Vec<ItemId>,
    pub unchanged: usize,
    /// Entries for stories retention removed: not stored again.
    pub pruned: usize,
    /// What the comments document stored in the same write did.
    pub comments: Option<CommentReport>,
}

/// What one poll of a feed hands the store, to be written at once: the
/// document's stories (none after a `304`), the comments documents read
/// with it, and the feed's new state.
#[derive(Debug, Clone, Default)]
pub struct PolledDocument {
    pub candidates: Vec<Candidate>,
    pub comments: Vec<CommentBatch>,
    pub state: FeedState,
}

/// What storing a batch of comments did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommentReport {
    /// Comments not stored before.
    pub new: usize,
    /// Comments joined to a stored story.
    pub joined: usize,
    /// Comments kept until their story arrives.
    pub waiting: usize,
    /// Comments with no way to find their story.
    pub dropped: usize,
}

impl std::ops::AddAssign for CommentReport {
    fn add_assign(&mut self, other: CommentReport) {
        self.new += other.new;
        self.joined += other.joined;
        self.waiting += other.waiting;
        self.dropped += other.dropped;
    }
}

#[cfg(test)]
mod tests {
    use super::ItemId;

    #[test]
    fn item_ids_read_back_from_hex() {
        for id in [
            ItemId([0; 16]),
            ItemId([0xff; 16]),
            ItemId(*b"\x01\x23\x45\x67\x89\xab\xcd\xef0123456x"),
        ] {
            let hex = id.to_hex();
            assert_eq!(hex.len(), 32);
            assert_eq!(ItemId::from_hex(&hex), Some(id));
            assert_eq!(ItemId::from_hex(&hex.to_uppercase()), Some(id));
        }
        assert_eq!(ItemId([0xa5; 16]).to_hex(), "a5".repeat(16));
        for bad in [
            "a5".repeat(15),
            format!("{}g0", "a5".repeat(15)),
            format!("é{}", "a".repeat(30)),
        ] {
            assert_eq!(ItemId::from_hex(&bad), None, "{bad}");
        }
    }
}
