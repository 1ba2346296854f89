//! A poll's comments: the feed's site-wide comments feed, and the comment
//! feeds of the stories whose stated count is new or changed, on a budget.
//! They are read before the poll's one write, which stores them with the
//! stories they belong to.

use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::comment_feed::{from_item_feed, from_site_feed, same_site};
use crate::config::{Config, FeedConfig, Source};
use crate::fetch::{Document, FetchError, Fetched, Fetcher};
use crate::model::{
    Candidate, CommentBatch, CommentReport, CommentSource, ErrorKind, ItemId, PollFailure,
    Timestamp, Validators,
};
use crate::parse;
use crate::poller::{PollError, on_store};
use crate::store::{Store, StoreError};
use crate::stories;

/// The comment settings a poll needs.
#[derive(Debug, Clone, Copy)]
pub struct CommentOptions {
    pub excerpt_chars: usize,
    /// Story comment feeds fetched per poll of one feed, at most.
    pub per_poll: usize,
    /// Only stories published this recently have their comment feeds read.
    pub max_age: Duration,
}

impl From<&Config> for CommentOptions {
    fn from(c: &Config) -> Self {
        CommentOptions {
            excerpt_chars: c.output.excerpt_chars,
            per_poll: c.poll.item_comment_feeds,
            max_age: c.poll.item_comments_max_age,
        }
    }
}

/// The comments documents read for one poll.
#[derive(Debug, Default)]
pub struct Gathered {
    /// To be stored in the poll's write.
    pub batches: Vec<CommentBatch>,
    /// The last failure reading one; comments never fail the poll.
    pub error: Option<PollFailure>,
    /// Comment feeds on another host, not followed.
    pub skipped: u64,
    /// The site-wide comments feed's new validators, when it sent a new
    /// document (they go into the feed's state, written with it).
    pub site_validators: Option<Validators>,
}

/// Reads the comments of one poll: the site-wide comments feed, then the
/// comment feeds of `candidates` whose count moved (see
/// [`stories::comment_feed_due`]), at most `[poll].item_comment_feeds` of
/// them, each on the feed's own host.
pub async fn gather(
    store: &Arc<Store>,
    fetcher: &Fetcher,
    feed: &FeedConfig,
    options: &CommentOptions,
    (candidates, site_validators): (Vec<Candidate>, &Validators),
    now: Timestamp,
) -> Result<(Vec<Candidate>, Gathered), PollError> {
    let mut gathered = Gathered::default();
    if let Some(source) = &feed.comments_url {
        match site_batch(fetcher, &feed.id, source, site_validators, options, now).await {
            Ok(Some((batch, validators))) => {
                gathered.batches.push(batch);
                gathered.site_validators = Some(validators);
            }
            Ok(None) => {}
            Err(e) => gathered.error = Some(e),
        }
    }
    if !feed.item_comments || options.per_poll == 0 || candidates.is_empty() {
        return Ok((candidates, gathered));
    }
    let (max_age, id) = (options.max_age, feed.id.clone());
    // The stories come back whatever the lookup says: a failed lookup
    // costs the story comment feeds, never the stories.
    let (candidates, due) = on_store(store, move |s| {
        let due = due_comment_feeds(s, &id, &candidates, max_age, now);
        Ok((candidates, due))
    })
    .await?;
    let due = match due {
        Ok(due) => due,
        Err(e) => {
            gathered.error = Some(PollFailure {
                kind: crate::model::ErrorKind::Store,
                message: format!("story comment feeds: {e}"),
                at: now,
            });
            return Ok((candidates, gathered));
        }
    };
    let mut trusted = vec![feed.source.url()];
    if let Some(c) = &feed.comments_url {
        trusted.push(c.url());
    }
    let mut budget = options.per_poll;
    for (item, url, validators) in due {
        if budget == 0 {
            break;
        }
        if !same_site(&url, &trusted) {
            gathered.skipped += 1;
            tracing::warn!(feed = %feed.id, %url, "comment feed on another host not followed");
            continue;
        }
        budget -= 1;
        match item_batch(fetcher, item, &url, validators, options, now).await {
            Ok(Some(batch)) => gathered.batches.push(batch),
            Ok(None) => {}
            Err(e) => gathered.error = Some(e),
        }
    }
    Ok((candidates, gathered))
}

/// The stories of a document whose own comment feed is due, with the
/// feed's URL and stored validators: the story as stored is looked up,
/// then the rule decides.
fn due_comment_feeds(
    store: &Store,
    feed: &str,
    candidates: &[Candidate],
    max_age: Duration,
    now: Timestamp,
) -> Result<Vec<(ItemId, Url, Validators)>, StoreError> {
    let mut due = Vec::new();
    for c in candidates {
        // A story retention removed stays removed: nothing to read for it.
        if store.pruned(c) {
            continue;
        }
        let stored = store.story_for(c)?;
        if !stories::comment_feed_due(feed, c.entry.comments.count, stored.as_ref()) {
            continue;
        }
        let id = stored.as_ref().map_or(c.fresh_id, |s| s.id);
        let url = (c.entry.comments.feed_url.as_deref())
            .or(stored.as_ref().and_then(|s| s.comments.feed_url.as_deref()))
            .and_then(|u| Url::parse(u).ok());
        let published = c.entry.published.or(stored.and_then(|s| s.published));
        let recent =
            published.is_none_or(|p| (now - p).to_std().is_ok_and(|age| age <= max_age) || p > now);
        if let Some(url) = url.filter(|_| recent) {
            let validators = store.validators(url.as_str())?;
            due.push((id, url, validators));
        }
    }
    Ok(due)
}

/// A comment document, fetched conditionally with its validators: `None`
/// when it has not changed. URLs taken from feed content (`same_host`) may
/// not redirect to another host.
async fn fetch_doc(
    fetcher: &Fetcher,
    source: &Source,
    validators: &Validators,
    same_host: bool,
) -> Result<Option<Document>, FetchError> {
    let fetched = match source {
        Source::Http(url) if same_host => fetcher.fetch_same_host(url, validators).await?,
        _ => fetcher.fetch(source, validators).await?,
    };
    Ok(match fetched {
        Fetched::NotModified(_) => None,
        Fetched::Document(doc) => Some(doc),
    })
}

/// Failures of one comment document, named by what and where it is.
fn failure(
    what: &'static str,
    key: &str,
    now: Timestamp,
) -> impl Fn(ErrorKind, String) -> PollFailure + use<> {
    let key = key.to_string();
    move |kind, message| PollFailure {
        kind,
        message: format!("{what} {key}: {message}"),
        at: now,
    }
}

/// The feed's site-wide comments document, fetched and read, for the store
/// to join, with its new validators: `None` when it has not changed.
async fn site_batch(
    fetcher: &Fetcher,
    feed: &str,
    source: &Source,
    validators: &Validators,
    options: &CommentOptions,
    now: Timestamp,
) -> Result<Option<(CommentBatch, Validators)>, PollFailure> {
    let url = source.url().to_string();
    let fail = failure("comments feed", &url, now);
    let Some(doc) = fetch_doc(fetcher, source, validators, false)
        .await
        .map_err(|e| fail(e.kind(), e.to_string()))?
    else {
        return Ok(None);
    };
    let (parsed, replies) =
        parse::parse_with_replies(&doc.body, &doc.url, doc.content_type.as_deref())
            .map_err(|e| fail(e.kind(), e.to_string()))?;
    let batch = CommentBatch {
        comments: from_site_feed(feed, parsed, replies, options.excerpt_chars),
        source: CommentSource::Site,
        url,
        validators: None,
    };
    Ok(Some((batch, doc.validators)))
}

/// One story's own comment feed, fetched and read: `None` when it has not
/// changed.
async fn item_batch(
    fetcher: &Fetcher,
    item: ItemId,
    url: &Url,
    validators: Validators,
    options: &CommentOptions,
    now: Timestamp,
) -> Result<Option<CommentBatch>, PollFailure> {
    let key = url.to_string();
    let fail = failure("comment feed", &key, now);
    let source = Source::Http(url.clone());
    let Some(doc) = fetch_doc(fetcher, &source, &validators, true)
        .await
        .map_err(|e| fail(e.kind(), e.to_string()))?
    else {
        return Ok(None);
    };
    let parsed = parse::parse_feed(&doc.body, &doc.url, doc.content_type.as_deref())
        .map_err(|e| fail(e.kind(), e.to_string()))?;
    let entries = parsed.entries.len() as u32;
    Ok(Some(CommentBatch {
        comments: from_item_feed(item, parsed, options.excerpt_chars),
        source: CommentSource::ItemFeed { item, entries },
        url: key,
        validators: Some(doc.validators),
    }))
}

/// The log line of the comments a poll stored.
pub fn log_stored(feed: &str, report: &CommentReport) {
    tracing::info!(
        feed = %feed,
        new = report.new,
        joined = report.joined,
        waiting = report.waiting,
        dropped = report.dropped,
        "comments stored"
    );
}
