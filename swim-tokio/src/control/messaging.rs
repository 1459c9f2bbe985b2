//! The control API's application messaging routes (`docs/driver.md`): `POST /send`, `/event`,
//! `/query` and `/respond`, each one call on the [`Cluster`](crate::Cluster) handle.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use swim_proto::{QueryFilter, QueryId};

use super::{Api, reply};

#[derive(Deserialize)]
pub(super) struct SendBody {
    to: String,
    #[serde(default)]
    channel: u16,
    payload: String,
    #[serde(default)]
    reliable: bool,
}

/// `POST /send {"to", "channel"?, "payload", "reliable"?}`: a direct message (UTF-8 payload).
pub(super) async fn send(State(api): State<Api>, Json(b): Json<SendBody>) -> Response {
    let c = &api.cluster;
    let r = if b.reliable {
        c.send_reliable(b.to, b.channel, b.payload).await
    } else {
        c.send(b.to, b.channel, b.payload).await
    };
    reply(r.map(|()| json!({ "sent": true, "reliable": b.reliable })))
}

#[derive(Deserialize)]
pub(super) struct EventBody {
    name: String,
    #[serde(default)]
    payload: String,
}

/// `POST /event {"name", "payload"?}`: a Serf user event.
pub(super) async fn event(State(api): State<Api>, Json(b): Json<EventBody>) -> Response {
    reply(
        api.cluster
            .broadcast(b.name, b.payload)
            .await
            .map(|()| json!({ "broadcast": true })),
    )
}

#[derive(Deserialize)]
pub(super) struct QueryBody {
    name: String,
    #[serde(default)]
    payload: String,
    /// Only these members answer.
    #[serde(default)]
    names: Vec<String>,
    /// Only members whose metadata contains this text answer.
    #[serde(default)]
    meta: String,
    /// Default 2,000 ms; keep it under the API's request timeout.
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    2_000
}

/// `POST /query {"name", "payload"?, "names"?, "meta"?, "timeout_ms"?}`: a Serf query;
/// answers `{"acks", "responses": [{"from", "payload"}]}` at its deadline.
pub(super) async fn query(State(api): State<Api>, Json(b): Json<QueryBody>) -> Response {
    let filter = QueryFilter {
        names: b.names,
        meta: b.meta.into_bytes(),
    };
    let timeout = Duration::from_millis(b.timeout_ms);
    let r = api.cluster.query(b.name, b.payload, filter, timeout).await;
    reply(r.map(|o| {
        let responses: Vec<_> = o
            .responses
            .iter()
            .map(
                |(from, p)| json!({ "from": from.as_str(), "payload": String::from_utf8_lossy(p) }),
            )
            .collect();
        json!({ "acks": o.acks, "responses": responses })
    }))
}

#[derive(Deserialize)]
pub(super) struct RespondBody {
    origin: String,
    ltime: u64,
    #[serde(default)]
    payload: String,
}

/// `POST /respond {"origin", "ltime", "payload"?}`: answers a query seen as a `query` event.
pub(super) async fn respond(State(api): State<Api>, Json(b): Json<RespondBody>) -> Response {
    let id = QueryId {
        origin: b.origin,
        ltime: b.ltime,
    };
    reply(
        api.cluster
            .respond(id, b.payload)
            .await
            .map(|()| json!({ "responded": true })),
    )
}
