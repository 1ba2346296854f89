//! One feed, the whole pipeline, top to bottom.

use std::sync::Arc;
use std::time::Instant;

use crate::config::FeedConfig;
use crate::fetch::{FetchError, Fetched, Fetcher};
use crate::model::{ErrorKind, FeedState, ItemId, Outcome, PollFailure, PollReport, Timestamp};
use crate::normalize;
use crate::parse::{self, ParseError};
use crate::poller::comment_feeds;
use crate::poller::schedule::Politeness;
use crate::poller::{PollOptions, write};
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

/// Polls one feed: conditional fetch, parse, normalize, store. Every
/// outcome, failures included, is recorded in the feed's state with the
/// time of its next poll.
pub async fn refresh_feed(
    store: &Arc<Store>,
    fetcher: &Fetcher,
    feed: &FeedConfig,
    options: &PollOptions,
) -> PollReport {
    let started = Instant::now();
    let now = chrono::Utc::now();
    let mut state = store.feed_state(&feed.id).unwrap_or_default();
    state.last_attempt = Some(now);

    // `poll` works on a copy so that a failure half-way leaves nothing of
    // the attempt but the failure itself.
    let mut attempt = state.clone();
    let mut fetch_elapsed = None;
    let politeness = &options.politeness;
    let outcome = match poll(
        store,
        fetcher,
        feed,
        options,
        &mut attempt,
        &mut fetch_elapsed,
        now,
    )
    .await
    {
        Ok(polled) => {
            state = attempt;
            // Comments never fail the feed: their errors are kept apart.
            comment_feeds::refresh(
                store,
                fetcher,
                feed,
                &options.comments,
                &polled.count_changed,
                polled.site_comments,
                &mut state,
                now,
            )
            .await;
            polled.outcome
        }
        Err(e) => {
            let failure = PollFailure {
                kind: e.kind(),
                message: e.to_string(),
                at: now,
            };
            state.consecutive_failures += 1;
            state.last_error = Some(failure.clone());
            // 429 and 503 may say when to come back; that is a floor.
            let retry_after = match &e {
                PollError::Fetch(FetchError::Status {
                    status: 429 | 503,
                    retry_after,
                }) => *retry_after,
                _ => None,
            };
            if matches!(e, PollError::Fetch(FetchError::Gone)) {
                state.gone = Some(feed.source.to_string());
            }
            state.next_poll = Some(politeness.next_poll(
                now,
                feed.interval,
                state.consecutive_failures,
                retry_after,
            ));
            let (id, recorded) = (feed.id.clone(), state.clone());
            if let Err(e) = write(store, move |s| s.put_feed_state(&id, &recorded)).await {
                tracing::error!(feed = %feed.id, error = %e, "could not record the failed poll");
            }
            Outcome::Failed(failure)
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

/// What a good poll did, for its comments step.
struct Polled {
    outcome: Outcome,
    /// Stories whose stated comment count is new or changed.
    count_changed: Vec<ItemId>,
    /// The site-wide comments feed, when it was stored with the stories.
    site_comments: Option<Result<(), PollFailure>>,
}

/// The feed's own poll. A new document's stories are stored in one write
/// with the feed's site-wide comments document, fetched after it, so that
/// stories arriving with their comments are written once.
async fn poll(
    store: &Arc<Store>,
    fetcher: &Fetcher,
    feed: &FeedConfig,
    options: &PollOptions,
    state: &mut FeedState,
    fetch_elapsed: &mut Option<std::time::Duration>,
    now: Timestamp,
) -> Result<Polled, PollError> {
    let politeness = &options.politeness;
    let started = Instant::now();
    let fetched = fetcher.fetch(&feed.source, &state.validators).await;
    *fetch_elapsed = Some(started.elapsed());
    let fetched = fetched?;
    let doc = match fetched {
        Fetched::NotModified(hints) => {
            succeed(state, feed, politeness, hints.fresh_for, now);
            let (id, recorded) = (feed.id.clone(), state.clone());
            write(store, move |s| s.put_feed_state(&id, &recorded)).await?;
            return Ok(Polled {
                outcome: Outcome::NotModified,
                count_changed: Vec::new(),
                site_comments: None,
            });
        }
        Fetched::Document(doc) => doc,
    };
    let parsed = parse::parse_feed(&doc.body, &doc.url, doc.content_type.as_deref())?;
    let candidates = normalize::candidates(
        &feed.id,
        parsed.entries,
        options.max_items_per_document,
        now,
    );
    // Cache headers, RSS <ttl> and sy:updatePeriod: the longest is a floor.
    let hint = doc.hints.fresh_for.max(parsed.update_every);
    succeed(state, feed, politeness, hint, now);
    state.moved_to = doc.hints.moved_to.map(String::from);
    state.validators = doc.validators;
    state.title = parsed.title.or(state.title.take());
    state.site_link = parsed.site_link.or(state.site_link.take());
    let (batch, site_comments) = match &feed.comments_url {
        Some(source) => {
            match comment_feeds::site_batch(
                store,
                fetcher,
                &feed.id,
                source,
                &options.comments,
                now,
            )
            .await
            {
                Ok(batch) => (batch, Some(Ok(()))),
                Err(e) => (None, Some(Err(e))),
            }
        }
        None => (None, None),
    };
    let (id, recorded) = (feed.id.clone(), state.clone());
    let report = write(store, move |s| {
        let report = s.ingest_with_comments(&id, candidates, &recorded, batch, now)?;
        s.sync(&id)?;
        Ok(report)
    })
    .await?;
    if let Some(c) = &report.comments {
        comment_feeds::log_stored(&feed.id, c);
    }
    Ok(Polled {
        outcome: Outcome::Stored {
            new: report.new.len(),
            updated: report.updated.len(),
            unchanged: report.unchanged,
        },
        count_changed: report.count_changed,
        site_comments,
    })
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
    state.next_poll = Some(politeness.next_poll(now, feed.interval, 0, hint));
}

fn log(r: &PollReport) {
    let ms = r.elapsed.as_millis() as u64;
    match &r.outcome {
        Outcome::NotModified => tracing::info!(feed = %r.feed, ms, "not modified"),
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
