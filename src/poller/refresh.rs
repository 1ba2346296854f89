//! One feed, the whole pipeline, top to bottom.

use std::sync::Arc;
use std::time::Instant;

use crate::config::FeedConfig;
use crate::fetch::{FetchError, Fetched, Fetcher};
use crate::model::{
    ErrorKind, FeedState, Outcome, PollFailure, PollReport, PolledDocument, Timestamp,
};
use crate::normalize;
use crate::parse::{self, ParseError};
use crate::poller::comment_feeds;
use crate::poller::schedule::Politeness;
use crate::poller::{PollOptions, on_store};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the poll stopped unexpectedly: {0}")]
    Internal(String),
}

impl PollError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            PollError::Fetch(e) => e.kind(),
            PollError::Parse(e) => e.kind(),
            PollError::Store(_) => ErrorKind::Store,
            PollError::Internal(_) => ErrorKind::Internal,
        }
    }
}

/// Polls one feed, top to bottom: fetch (or not modified), parse,
/// normalize, read its comments, then one write of the stories, the
/// comments and the feed's state. Every outcome, failures included, ends
/// in the feed's state with the time of its next poll, written once.
pub async fn refresh_feed(
    store: &Arc<Store>,
    fetcher: &Fetcher,
    feed: &FeedConfig,
    options: &PollOptions,
) -> PollReport {
    let started = Instant::now();
    let now = chrono::Utc::now();
    let stored = match store.cached_feed_state(&feed.id) {
        Some(state) => state,
        None => {
            let id = feed.id.clone();
            on_store(store, move |s| s.feed_state(&id))
                .await
                .unwrap_or_default()
        }
    };
    let mut fetch_elapsed = None;
    let polled = poll(
        store,
        fetcher,
        feed,
        options,
        &stored,
        &mut fetch_elapsed,
        now,
    )
    .await;
    let (state, outcome) = match polled {
        Ok(done) => done,
        Err(e) => {
            // A failure leaves nothing of the attempt but the failure.
            let (state, failure) = failed(stored, feed, &options.politeness, &e, now);
            let (id, recorded) = (feed.id.clone(), state.clone());
            if let Err(e) = on_store(store, move |s| s.put_feed_state(&id, &recorded)).await {
                tracing::error!(feed = %feed.id, error = %e, "could not record the failed poll");
            }
            (state, Outcome::Failed(failure))
        }
    };
    let report = PollReport {
        feed: feed.id.clone(),
        outcome,
        elapsed: started.elapsed(),
        fetch_elapsed,
        next_poll: state.next_poll.unwrap_or(now),
        gone: state.gone.as_deref() == Some(feed.source.to_string().as_str()),
    };
    log(&report);
    report
}

/// A good poll: the feed's state as written, with the outcome.
async fn poll(
    store: &Arc<Store>,
    fetcher: &Fetcher,
    feed: &FeedConfig,
    options: &PollOptions,
    stored: &FeedState,
    fetch_elapsed: &mut Option<std::time::Duration>,
    now: Timestamp,
) -> Result<(FeedState, Outcome), PollError> {
    let mut state = stored.clone();
    state.last_attempt = Some(now);

    // 1. Fetch, conditionally on the validators stored with the stories.
    let started = Instant::now();
    let fetched = fetcher.fetch(&feed.source, &stored.validators).await;
    *fetch_elapsed = Some(started.elapsed());

    // 2. Parse and normalize a new document; a 304 brings no stories.
    let (candidates, hint, modified) = match fetched? {
        Fetched::NotModified(hints) => (Vec::new(), hints.fresh_for, false),
        Fetched::Document(doc) => {
            let parsed = parse::parse_feed(&doc.body, &doc.url, doc.content_type.as_deref())?;
            // Cache headers, RSS <ttl> and sy:updatePeriod: the longest is a floor.
            let hint = doc.hints.fresh_for.max(parsed.update_every);
            state.moved_to = doc.hints.moved_to.map(String::from);
            state.validators = doc.validators;
            state.title = parsed.title.or(state.title.take());
            state.site_link = parsed.site_link.or(state.site_link.take());
            // WebSub discovery: the `Link` header first, then the document;
            // the topic is `rel="self"`, else the URL fetched.
            state.hub =
                (doc.hints.hub.clone().or(parsed.hub)).map(|hub| crate::model::WebSubLink {
                    hub,
                    topic: (doc.hints.self_link.clone().or(parsed.self_link))
                        .unwrap_or_else(|| doc.url.to_string()),
                });
            let max = options.max_items_per_document;
            let candidates = normalize::candidates(&feed.id, parsed.entries, max, now);
            (candidates, hint, true)
        }
    };
    succeed(&mut state, feed, &options.politeness, hint, now);

    // 3. Its comments: the site-wide feed and the stories' own feeds.
    // They never fail the poll; their failure is kept apart.
    let site_url = feed.comments_url.as_ref().map(|s| s.url().to_string());
    let site_validators = match stored.comments_validators_url == site_url {
        true => stored.comments_validators.clone(),
        false => Default::default(),
    };
    let (candidates, comments) = comment_feeds::gather(
        store,
        fetcher,
        feed,
        &options.comments,
        (candidates, &site_validators),
        now,
    )
    .await?;
    if let Some(e) = &comments.error {
        tracing::warn!(feed = %feed.id, kind = e.kind.as_str(), error = %e.message, "comments poll failed");
    }
    state.comments_error = comments.error;
    state.skipped_comment_feeds += comments.skipped;
    if let Some(v) = comments.site_validators {
        state.comments_validators = v;
        state.comments_validators_url = site_url;
    }

    // 4. One write: the stories, their comments and the feed's state. If
    // the write fails with comments in it, the stories are written again
    // without them: comments never cost a poll its stories.
    let retry = (!comments.batches.is_empty()).then(|| candidates.clone());
    let document = PolledDocument {
        candidates,
        comments: comments.batches,
        state: state.clone(),
    };
    let id = feed.id.clone();
    let report = match on_store(store, move |s| s.record_poll(&id, document, now)).await {
        Ok(report) => report,
        Err(e) => {
            let Some(candidates) = retry else {
                return Err(e);
            };
            tracing::warn!(feed = %feed.id, error = %e, "storing the comments failed; storing the stories without them");
            state.comments_error = Some(PollFailure {
                kind: e.kind(),
                message: format!("storing comments: {e}"),
                at: now,
            });
            state.comments_validators = stored.comments_validators.clone();
            state.comments_validators_url = stored.comments_validators_url.clone();
            let document = PolledDocument {
                candidates,
                comments: Vec::new(),
                state: state.clone(),
            };
            let id = feed.id.clone();
            on_store(store, move |s| s.record_poll(&id, document, now)).await?
        }
    };
    if let Some(c) = &report.comments {
        comment_feeds::log_stored(&feed.id, c);
    }
    let outcome = match modified {
        true => Outcome::Stored {
            new: report.new.len(),
            updated: report.updated.len(),
            unchanged: report.unchanged,
        },
        false => Outcome::NotModified,
    };
    Ok((state, outcome))
}

/// The state a failed poll leaves: the stored one, with the failure and
/// the backoff.
fn failed(
    mut state: FeedState,
    feed: &FeedConfig,
    politeness: &Politeness,
    e: &PollError,
    now: Timestamp,
) -> (FeedState, PollFailure) {
    let failure = PollFailure {
        kind: e.kind(),
        message: e.to_string(),
        at: now,
    };
    state.last_attempt = Some(now);
    state.consecutive_failures += 1;
    state.last_error = Some(failure.clone());
    // 429 and 503 may say when to come back; that is a floor.
    let retry_after = match e {
        PollError::Fetch(FetchError::Status {
            status: 429 | 503,
            retry_after,
        }) => *retry_after,
        _ => None,
    };
    if matches!(e, PollError::Fetch(FetchError::Gone)) {
        state.gone = Some(feed.source.to_string());
    }
    state.next_poll =
        Some(politeness.next_poll(now, feed.interval, state.consecutive_failures, retry_after));
    (state, failure)
}

fn succeed(
    state: &mut FeedState,
    feed: &FeedConfig,
    politeness: &Politeness,
    hint: Option<std::time::Duration>,
    now: Timestamp,
) {
    state.last_success = Some(now);
    state.last_error = None;
    state.consecutive_failures = 0;
    state.gone = None;
    // A feed a hub pushes is polled only as a safety net.
    let pushed = state.pushed_until.is_some_and(|t| t > now);
    let hint = match pushed {
        true => Some(politeness.max_interval),
        false => hint,
    };
    state.next_poll = Some(politeness.next_poll(now, feed.interval, 0, hint));
}

fn log(r: &PollReport) {
    let ms = r.elapsed.as_millis() as u64;
    match &r.outcome {
        Outcome::NotModified => tracing::info!(feed = %r.feed, ms, "not modified"),
        Outcome::Elsewhere => tracing::debug!(feed = %r.feed, "polled by another instance"),
        Outcome::Stored {
            new,
            updated,
            unchanged,
        } => tracing::info!(feed = %r.feed, new, updated, unchanged, ms, "stored"),
        Outcome::Failed(f) => {
            tracing::warn!(feed = %r.feed, kind = f.kind.as_str(), error = %f.message, ms, "poll failed")
        }
    }
}
