//! `POST /websub`, the built-in WebSub hub's endpoint (W3C WebSub 5.1):
//! subscribe and unsubscribe requests for this server's outputs; and
//! `GET /api/websub`, the subscriptions it keeps.

use std::collections::HashMap;

use axum::extract::State;
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
        .route("/api/websub", get(list))
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
        Ok(Json(Listed {
            hub: config.hub_url(),
            subscriptions,
        }))
    })
    .await
}
