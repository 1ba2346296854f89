//! `POST /websub`, the built-in WebSub hub's endpoint (W3C WebSub 5.1):
//! subscribe and unsubscribe requests for this server's outputs;
//! `/websub/callback/{token}`, where the hubs of subscribed feeds verify
//! intent (`GET`) and push content (`POST`); and `GET /api/websub`, the
//! subscriptions both ways.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::HeaderMap;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Serialize;

use super::{ApiError, AppState};
use crate::model::Timestamp;
use crate::websub::hub::{Asked, Mode, Refused};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/websub", post(request))
        .route(
            "/websub/callback/{token}",
            get(verify).post(deliver).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/websub", get(list))
}

async fn verify(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let field = |k: &str| q.get(k).cloned().unwrap_or_default();
    let (mode, topic, challenge) = (
        field("hub.mode"),
        field("hub.topic"),
        field("hub.challenge"),
    );
    let lease = q.get("hub.lease_seconds").and_then(|l| l.parse().ok());
    let subscriber = state.subscriber.clone();
    let known =
        super::blocking(move || Ok(subscriber.verify(&token, &mode, &topic, lease))).await?;
    match known {
        Some(()) => Ok(challenge.into_response()),
        None => Err(ApiError::NotFound(
            "no subscription of this server asked for that".into(),
        )),
    }
}

async fn deliver(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // A stranger's body is read only for a callback this server handed
    // out, and only up to `[poll].max_body_bytes`.
    let subscriber = state.subscriber.clone();
    let known = {
        let token = token.clone();
        super::blocking(move || Ok(subscriber.knows(&token))).await?
    };
    if !known {
        return Ok(StatusCode::GONE.into_response());
    }
    let cap = state.config.load().poll.max_body_bytes;
    let limited = http_body_util::Limited::new(body, usize::try_from(cap).unwrap_or(usize::MAX));
    let Ok(body) = http_body_util::BodyExt::collect(limited)
        .await
        .map(|b| b.to_bytes())
    else {
        return Ok((
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than [poll].max_body_bytes, or cut short\n",
        )
            .into_response());
    };
    let header = |h: &str| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let (signature, content_type) = (header("x-hub-signature"), header("content-type"));
    let subscriber = state.subscriber.clone();
    let done = super::blocking(move || {
        Ok(subscriber.deliver(&token, signature.as_deref(), content_type.as_deref(), &body))
    })
    .await?;
    use crate::websub::subscriber::Delivery;
    Ok(match done {
        // A bad signature is answered 2xx too, as the spec asks: the
        // content is dropped, and counted.
        Delivery::Taken | Delivery::BadSignature | Delivery::TooMany => {
            StatusCode::ACCEPTED.into_response()
        }
        Delivery::Unknown => StatusCode::GONE.into_response(),
    })
}

async fn request(
    State(state): State<AppState>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let Some(hub) = &state.hub else {
        return Err(ApiError::NotFound(
            "this server is not a WebSub hub ([websub] hub = \"builtin\" makes it one)".into(),
        ));
    };
    let field = |name: &str| form.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let mode = match field("hub.mode") {
        Some("subscribe") => Mode::Subscribe,
        Some("unsubscribe") => Mode::Unsubscribe,
        _ => {
            return Err(ApiError::BadRequest(
                "hub.mode must be subscribe or unsubscribe".into(),
            ));
        }
    };
    let (Some(topic), Some(callback)) = (field("hub.topic"), field("hub.callback")) else {
        return Err(ApiError::BadRequest(
            "hub.topic and hub.callback are required".into(),
        ));
    };
    let lease_seconds = match field("hub.lease_seconds") {
        Some(s) => Some(s.parse::<u64>().map_err(|_| {
            ApiError::BadRequest("hub.lease_seconds must be a number of seconds".into())
        })?),
        None => None,
    };
    let asked = Asked {
        mode,
        topic: topic.to_string(),
        callback: callback.to_string(),
        lease_seconds,
        secret: field("hub.secret").map(String::from),
    };
    match hub.ask(asked) {
        Ok(()) => Ok(StatusCode::ACCEPTED.into_response()),
        Err(Refused::Bad(m)) => Err(ApiError::BadRequest(m)),
        Err(Refused::Busy) => Ok((
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "10")],
            "too many verifications in flight; try again shortly\n",
        )
            .into_response()),
    }
}

#[derive(Serialize)]
struct Listed {
    hub: Option<String>,
    subscriptions: Vec<Listing>,
    /// This server's own subscriptions at the hubs of its feeds.
    subscribed: Vec<Upstream>,
}

#[derive(Serialize)]
struct Upstream {
    feed: String,
    hub: String,
    topic: String,
    state: crate::websub::subscriber::State,
    asked: Timestamp,
    lease_until: Option<Timestamp>,
}

#[derive(Serialize)]
struct Listing {
    topic: String,
    /// Scheme, host and path: a callback's query may hold its own token.
    callback: String,
    signed: bool,
    since: Timestamp,
    lease_until: Timestamp,
}

async fn list(State(state): State<AppState>) -> Result<Json<Listed>, ApiError> {
    super::blocking(move || {
        let config = state.config.load_full();
        let subscriptions = match &state.hub {
            Some(hub) => hub
                .subscriptions()
                .into_iter()
                .map(|s| Listing {
                    callback: url::Url::parse(&s.callback)
                        .map(|u| crate::websub::hub::shown(&u))
                        .unwrap_or_default(),
                    topic: s.topic,
                    signed: s.secret.is_some(),
                    since: s.since,
                    lease_until: s.lease_until,
                })
                .collect(),
            None => Vec::new(),
        };
        let subscribed = (state.subscriber.subscriptions().into_iter())
            .map(|s| Upstream {
                feed: s.feed,
                hub: s.hub,
                topic: s.topic,
                state: s.state,
                asked: s.asked,
                lease_until: s.lease_until,
            })
            .collect();
        Ok(Json(Listed {
            hub: config.hub_url(),
            subscriptions,
            subscribed,
        }))
    })
    .await
}
