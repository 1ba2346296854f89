//! The comments step of a poll: the feed's site-wide comments feed, then
//! the comment feeds of its new or changed stories, on a budget.

use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::comment_feed::{from_item_feed, from_site_feed, same_site};
use crate::config::{Config, FeedConfig, Source};
use crate::fetch::{Document, FetchError, Fetched, Fetcher};
use crate::model::{CommentReport, ErrorKind, FeedState, ItemId, PollFailure, Timestamp};
use crate::parse;
use crate::poller::write;
use crate::store::{CommentBatch, CommentSource, Store};

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

/// Fetches and stores the feed's comments. Failures are recorded in
/// `state.comments_error`; the feed's own poll has already succeeded.
/// `site` is the outcome of the site-wide comments feed when the poll has
/// already stored it with the feed's stories (see [`site_batch`]).
#[allow(clippy::too_many_arguments)]
pub async fn refresh(
    store: &Arc<Store>,
    fetcher: &Fetcher,
    feed: &FeedConfig,
    options: &CommentOptions,
    count_changed: &[ItemId],
    site: Option<Result<(), PollFailure>>,
    state: &mut FeedState,
    now: Timestamp,
) {
    let before = (state.comments_error.clone(), state.skipped_comment_feeds);
    let mut error = None;
    if let Some(source) = &feed.comments_url {
        let site = match site {
            Some(done) => done,
            None => site_feed(store, fetcher, feed, source, options, now).await,
        };
        error = site.err();
    }
    if feed.item_comments {
        let mut trusted = vec![feed.source.url()];
        if let Some(c) = &feed.comments_url {
            trusted.push(c.url());
        }
        let mut budget = options.per_poll;
        for id in count_changed {
            if budget == 0 {
                break;
            }
            let Ok(Some(item)) = store.item(id) else {
                continue;
            };
            let Some(url) = item
                .comments
                .feed_url
                .as_deref()
                .and_then(|u| Url::parse(u).ok())
            else {
                continue;
            };
            let recent = item.published.is_none_or(|p| {
                (now - p).to_std().is_ok_and(|age| age <= options.max_age) || p > now
            });
            if !recent {
                continue;
            }
            if !same_site(&url, &trusted) {
                state.skipped_comment_feeds += 1;
                tracing::warn!(feed = %feed.id, %url, "comment feed on another host not followed");
                continue;
            }
            budget -= 1;
            if let Err(e) = item_feed(store, fetcher, &feed.id, *id, &url, options, now).await {
                error = Some(e);
            }
        }
    }
    if let Some(e) = &error {
        tracing::warn!(feed = %feed.id, kind = e.kind.as_str(), error = %e.message, "comments poll failed");
    }
    state.comments_error = error;
    let (id, recorded) = (feed.id.clone(), state.clone());
    if (state.comments_error.clone(), state.skipped_comment_feeds) != before
        && let Err(e) = write(store, move |s| s.put_feed_state(&id, &recorded)).await
    {
        tracing::error!(feed = %feed.id, error = %e, "could not record the comments poll");
    }
}

/// A comment document, fetched conditionally with the validators stored
/// for its URL: `None` when it has not changed. URLs taken from feed
/// content (`same_host`) may not redirect to another host.
async fn fetch_doc(
    store: &Arc<Store>,
    fetcher: &Fetcher,
    source: &Source,
    same_host: bool,
) -> Result<Option<Document>, FetchError> {
    let validators = store.validators(source.url().as_str()).unwrap_or_default();
    let fetched = match source {
        Source::Http(url) if same_host => fetcher.fetch_same_host(url, &validators).await?,
        _ => fetcher.fetch(source, &validators).await?,
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
/// to join: `None` when it has not changed.
pub async fn site_batch(
    store: &Arc<Store>,
    fetcher: &Fetcher,
    feed: &str,
    source: &Source,
    options: &CommentOptions,
    now: Timestamp,
) -> Result<Option<CommentBatch>, PollFailure> {
    let url = source.url().to_string();
    let fail = failure("comments feed", &url, now);
    let Some(doc) = fetch_doc(store, fetcher, source, false)
        .await
        .map_err(|e| fail(e.kind(), e.to_string()))?
    else {
        return Ok(None);
    };
    let (parsed, replies) =
        parse::parse_with_replies(&doc.body, &doc.url, doc.content_type.as_deref())
            .map_err(|e| fail(e.kind(), e.to_string()))?;
    Ok(Some(CommentBatch {
        comments: from_site_feed(feed, parsed, replies, options.excerpt_chars),
        source: CommentSource::Site,
        url,
        validators: doc.validators,
    }))
}

/// The site-wide comments feed on its own, when the feed's document has
/// not changed.
async fn site_feed(
    store: &Arc<Store>,
    fetcher: &Fetcher,
    feed: &FeedConfig,
    source: &Source,
    options: &CommentOptions,
    now: Timestamp,
) -> Result<(), PollFailure> {
    let Some(batch) = site_batch(store, fetcher, &feed.id, source, options, now).await? else {
        return Ok(());
    };
    let fail = failure("comments feed", &batch.url, now);
    let id = feed.id.clone();
    let report = write(store, move |s| s.add_comments(&id, batch, now))
        .await
        .map_err(|e| fail(e.kind(), e.to_string()))?;
    log_stored(&feed.id, &report);
    Ok(())
}

/// The log line of a stored comments document.
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

async fn item_feed(
    store: &Arc<Store>,
    fetcher: &Fetcher,
    feed: &str,
    item: ItemId,
    url: &Url,
    options: &CommentOptions,
    now: Timestamp,
) -> Result<(), PollFailure> {
    let key = url.to_string();
    let fail = failure("comment feed", &key, now);
    let source = Source::Http(url.clone());
    let Some(doc) = fetch_doc(store, fetcher, &source, true)
        .await
        .map_err(|e| fail(e.kind(), e.to_string()))?
    else {
        return Ok(());
    };
    let parsed = parse::parse_feed(&doc.body, &doc.url, doc.content_type.as_deref())
        .map_err(|e| fail(e.kind(), e.to_string()))?;
    let entries = parsed.entries.len() as u32;
    let batch = CommentBatch {
        comments: from_item_feed(item, parsed, options.excerpt_chars),
        source: CommentSource::ItemFeed { item, entries },
        url: key,
        validators: doc.validators,
    };
    let feed = feed.to_string();
    write(store, move |s| s.add_comments(&feed, batch, now))
        .await
        .map_err(|e| fail(e.kind(), e.to_string()))?;
    Ok(())
}
