//! The HTTP control API of an agent, on axum: members, stats, metrics, replicated state, the
//! view and leader, a live event stream, and the POST operations the `swim-agent` subcommands
//! use (join, leave, force-leave, keys, publish, reload, live partitions). No protocol logic lives here: every handler is one
//! [`Cluster`] call.
//!
//! Limits, so that no client can starve the probes' observers:
//! - `/health`, `/ready` and `/metrics` are served outside every other limit.
//! - The other routes share [`ApiConfig::max_concurrent`] requests in flight; more are answered
//!   `503` at once (load shedding) instead of queueing.
//! - Event streams are bounded by [`ApiConfig::max_event_streams`] (`503` beyond).
//! - Request bodies above [`ApiConfig::max_body`] get `413`; headers above 16 KiB are refused;
//!   a request must arrive within [`ApiConfig::header_timeout`] (idle connections are closed)
//!   and be answered within [`ApiConfig::request_timeout`] (`408`).
//! - POST requests need `Authorization: Bearer <token>` when a token is set; a server bound
//!   off loopback without a token is refused by [`ApiConfig::check_bind`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use swim_proto::{Command, SecretKey};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_stream::StreamExt;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tracing::Instrument;

use crate::error::Error;
use crate::events::{ClusterEvent, event_json, member_json, unix_ms};
use crate::handle::Cluster;

/// Largest request head (request line and headers) accepted, in bytes.
pub const MAX_HEAD: usize = 16 << 10;

/// A reload request: the reply carries what was applied and what was refused, or why the new
/// configuration was rejected as a whole.
pub type ReloadRequest = oneshot::Sender<Result<Value, String>>;

/// How the control API is served. Defaults: no token, 64 KiB bodies, 32 requests in flight,
/// 16 event streams, 5 s to send a request head, 10 s to answer.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ApiConfig {
    /// Bearer token POST requests must carry. Required when bound off loopback.
    pub token: Option<String>,
    /// Largest request body, in bytes (`413` beyond). Default 64 KiB.
    pub max_body: usize,
    /// Requests in flight on the routes other than `/health`, `/ready`, `/metrics`; more are
    /// answered `503`. Default 32.
    pub max_concurrent: usize,
    /// `GET /events` streams open at once; more are answered `503`. Default 16.
    pub max_event_streams: usize,
    /// Longest wait for a request head on a connection; an idle connection is closed after
    /// it. Default 5 s.
    pub header_timeout: Duration,
    /// Longest time to answer a request (`408` after it). Streams are bounded only by their
    /// count. Default 10 s.
    pub request_timeout: Duration,
    /// Whether seeds were configured: `/ready` then waits for another member.
    pub expect_peers: bool,
    /// Where `POST /reload` sends its request (`None`: reload is not offered, `404`).
    pub reload: Option<mpsc::Sender<ReloadRequest>>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            token: None,
            max_body: 64 << 10,
            max_concurrent: 32,
            max_event_streams: 16,
            header_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            expect_peers: false,
            reload: None,
        }
    }
}

impl ApiConfig {
    /// Refuses a server bound off loopback without a token: anyone on the network could then
    /// make the node leave or rotate its keys.
    pub fn check_bind(&self, addr: SocketAddr) -> Result<(), String> {
        if !addr.ip().is_loopback() && self.token.as_deref().is_none_or(str::is_empty) {
            return Err(format!(
                "the HTTP API at {addr} is not on loopback: set a token with --http-token, \
                 SWIM_HTTP_TOKEN or `http_token` in [agent] so that POST requests are \
                 authenticated (or bind it to 127.0.0.1)"
            ));
        }
        Ok(())
    }
}

// Application messaging routes (issue 14).
mod messaging;
// Live fault routes (issue 14).
mod partitions;
mod stats;
pub use stats::stats_json;

#[derive(Clone)]
struct Api {
    cluster: Cluster,
    token: Option<Arc<str>>,
    streams: Arc<Semaphore>,
    expect_peers: bool,
    reload: Option<mpsc::Sender<ReloadRequest>>,
}

/// The control API as an axum [`Router`] (for embedding; [`serve`] runs it on a listener).
pub fn router(cluster: Cluster, config: &ApiConfig) -> Router {
    let api = Api {
        cluster,
        token: config
            .token
            .as_deref()
            .filter(|t| !t.is_empty())
            .map(Arc::from),
        streams: Arc::new(Semaphore::new(config.max_event_streams)),
        expect_peers: config.expect_peers,
        reload: config.reload.clone(),
    };
    let light = Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics));
    let reads = Router::new()
        .route("/members", get(members))
        .route("/alive", get(alive))
        .route("/local", get(local))
        .route("/stats", get(stats))
        .route("/state", get(state_summary))
        .route("/state/{ty}", get(state_type))
        .route("/state/{ty}/{key}", get(state_entry))
        .route("/view", get(view))
        .route("/leader", get(leader))
        .route("/keys", get(keys))
        .route("/events", get(events))
        // Lifecycle (issue 14).
        .route("/status", get(status));
    let writes = Router::new()
        .route("/join", post(join))
        .route("/leave", post(leave))
        .route("/keys/{op}", post(key_op))
        .route("/publish", post(publish))
        .route("/reload", post(reload))
        .route("/force-leave", post(force_leave))
        // Application messaging (issue 14).
        .route("/send", post(messaging::send))
        .route("/event", post(messaging::event))
        .route("/query", post(messaging::query))
        .route("/respond", post(messaging::respond))
        .route_layer(middleware::from_fn_with_state(api.clone(), authorize));
    // Live partitions (issue 14): GET is a read, POST and DELETE need the token.
    let faults = Router::new()
        .route(
            "/partitions",
            get(partitions::list).post(partitions::inject),
        )
        .route(
            "/partitions/{id}",
            axum::routing::delete(partitions::resolve),
        )
        .route_layer(middleware::from_fn_with_state(
            api.clone(),
            partitions::authorize_changes,
        ));
    let shed = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|e: tower::BoxError| async move {
            if e.is::<tower::load_shed::error::Overloaded>() {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy: too many requests in flight\n",
                )
            } else {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
            }
        }))
        .load_shed()
        .layer(GlobalConcurrencyLimitLayer::new(config.max_concurrent));
    light
        .merge(reads.merge(writes).merge(faults).layer(shed))
        .with_state(api)
        .layer(RequestBodyLimitLayer::new(config.max_body))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.request_timeout,
        ))
}

/// Serves the control API on `listener` until the task is dropped. Each connection gets its
/// own task; a connection that sends no request head within `header_timeout` is closed.
pub async fn serve(listener: TcpListener, cluster: Cluster, config: ApiConfig) {
    let app = router(cluster, &config);
    let service = hyper_util::service::TowerToHyperService::new(app);
    loop {
        let (conn, from) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let service = service.clone();
        let header_timeout = config.header_timeout;
        tokio::spawn(
            async move {
                let mut http = hyper::server::conn::http1::Builder::new();
                http.timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .max_buf_size(MAX_HEAD);
                let io = hyper_util::rt::TokioIo::new(conn);
                if let Err(e) = http.serve_connection(io, service).await {
                    tracing::debug!(%from, error = %e, "HTTP connection ended");
                }
            }
            .in_current_span(),
        );
    }
}

/// `401` unless the request carries the configured bearer token.
async fn authorize(State(api): State<Api>, req: Request, next: Next) -> Response {
    if let Some(token) = &api.token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
            let mut r = (StatusCode::UNAUTHORIZED, "a bearer token is required\n").into_response();
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
    }
    next.run(req).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An [`Error`] as a response: `400` for what the caller got wrong, `409` for a command the
/// core refused, `503` once the node has stopped.
fn error_response(e: Error) -> Response {
    let code = match &e {
        Error::Config { .. } | Error::Resolve { .. } => StatusCode::BAD_REQUEST,
        Error::Command(_) => StatusCode::CONFLICT,
        Error::LeaveTimeout => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    (code, Json(json!({ "error": e.to_string() }))).into_response()
}

fn reply(r: Result<Value, Error>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => error_response(e),
    }
}

async fn ready(State(api): State<Api>) -> Response {
    let r = api
        .cluster
        .inspect(|n| {
            (
                n.local().state.is_active(),
                n.count(swim_proto::MemberState::Alive),
                n.status(),
            )
        })
        .await;
    let (code, why) = match r {
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Ok((false, _, _)) => (StatusCode::SERVICE_UNAVAILABLE, "the node has left".into()),
        Ok((true, 0, _)) if api.expect_peers => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not joined yet: no other member alive".into(),
        ),
        // Lifecycle readiness (issue 14): the core's, then the application's stabilize check.
        Ok((true, _, status)) => match api.cluster.ready().await {
            Ok(true) => (StatusCode::OK, String::new()),
            Ok(false) if status == swim_proto::Status::Running => (
                StatusCode::SERVICE_UNAVAILABLE,
                "running, not stable yet".into(),
            ),
            Ok(false) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("status {}", status.as_str()),
            ),
            Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        },
    };
    let ready = code == StatusCode::OK;
    (code, Json(json!({ "ready": ready, "reason": why }))).into_response()
}

/// How long `POST /join` waits for the join to complete before answering `"joined": false`.
const JOIN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// `GET /status` (issue 14): lifecycle status, readiness, whether the failure detector is
/// paused, and the members that answered the last join.
async fn status(State(api): State<Api>) -> Response {
    let r = api
        .cluster
        .inspect(|n| {
            let answered: Vec<String> = n.join_answered().map(|m| m.to_string()).collect();
            (n.status(), n.failure_detector_paused(), answered)
        })
        .await;
    let ready = api.cluster.ready().await;
    reply(r.and_then(|(status, paused, answered)| {
        Ok(json!({
            "status": status.as_str(),
            "ready": ready?,
            "failure_detector_paused": paused,
            "join_answered": answered,
        }))
    }))
}

async fn metrics(State(api): State<Api>) -> Response {
    match api.cluster.metrics().await {
        Ok(text) => ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response(),
        Err(e) => error_response(e),
    }
}

#[derive(Deserialize)]
struct MembersQuery {
    #[serde(default)]
    alive: bool,
}

async fn members(State(api): State<Api>, Query(q): Query<MembersQuery>) -> Response {
    let r = if q.alive {
        api.cluster.alive().await
    } else {
        api.cluster.members().await
    };
    reply(r.map(|ms| ms.iter().map(member_json).collect()))
}

async fn alive(State(api): State<Api>) -> Response {
    reply(
        api.cluster
            .alive()
            .await
            .map(|ms| ms.iter().map(member_json).collect()),
    )
}

async fn local(State(api): State<Api>) -> Response {
    reply(api.cluster.local().await.map(|m| member_json(&m)))
}

async fn stats(State(api): State<Api>) -> Response {
    reply(api.cluster.stats().await.map(|s| stats_json(&s)))
}

fn entry_json(e: &swim_proto::StateEntry) -> Value {
    json!({
        "value": e.value.as_deref().map(String::from_utf8_lossy),
        "version": e.version,
        "origin": e.origin.as_str(),
    })
}

async fn state_summary(State(api): State<Api>) -> Response {
    reply(
        api.cluster
            .inspect(|n| {
                let s = &n.stats().state;
                json!({
                    "fingerprint": format!("{:016x}", n.state_fingerprint()),
                    "clock": n.state_clock(),
                    "entries": s.entries, "live": s.live, "bytes": s.bytes,
                    "origins": s.origins,
                })
            })
            .await,
    )
}

async fn state_type(State(api): State<Api>, Path(ty): Path<String>) -> Response {
    reply(api.cluster.entries(ty).await.map(|es| {
        es.iter()
            .map(|(k, e)| {
                let mut v = entry_json(e);
                v["key"] = k.as_str().into();
                v
            })
            .collect()
    }))
}

async fn state_entry(State(api): State<Api>, Path((ty, key)): Path<(String, String)>) -> Response {
    match api.cluster.get(ty, key).await {
        Ok(Some(e)) => Json(entry_json(&e)).into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": "no such entry" })),
        )
            .into_response(),
        Err(e) => error_response(e),
    }
}

async fn view(State(api): State<Api>) -> Response {
    reply(api.cluster.view().await.map(|v| {
        json!({
            "checksum": format!("{:016x}", v.checksum),
            "members": v.members.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
            "stable": v.stable,
            "leader": v.leader.as_ref().map(|l| l.as_str()),
        })
    }))
}

async fn leader(State(api): State<Api>) -> Response {
    reply(
        api.cluster
            .inspect(
                |n| json!({ "leader": n.leader().map(|l| l.as_str()), "is_leader": n.is_leader() }),
            )
            .await,
    )
}

async fn keys(State(api): State<Api>) -> Response {
    reply(
        api.cluster
            .inspect(|n| match n.keyring() {
                None => json!({ "encryption": false, "keys": [] }),
                Some(k) => json!({
                    "encryption": true,
                    "primary": format!("{:08x}", k.primary().fingerprint()),
                    "keys": k.keys().iter().map(|k| format!("{:08x}", k.fingerprint())).collect::<Vec<_>>(),
                }),
            })
            .await,
    )
}

/// `GET /events`: one JSON object per line (chunked NDJSON), as `swim-agent` prints them,
/// from the moment of the request; a `lagged` line when this client fell behind.
async fn events(State(api): State<Api>) -> Response {
    let Ok(permit) = api.streams.clone().try_acquire_owned() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "too many event streams\n").into_response();
    };
    let lines = api.cluster.subscribe().map(move |item| {
        let _held = &permit;
        let v = match item {
            ClusterEvent::Event(e) => event_json(&e),
            ClusterEvent::Lagged(n) => {
                json!({ "ts_ms": unix_ms(), "event": "lagged", "missed": n })
            }
        };
        Ok::<_, Infallible>(format!("{v}\n"))
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response()
}

#[derive(Deserialize)]
struct JoinBody {
    seeds: Vec<String>,
}

async fn join(State(api): State<Api>, Json(b): Json<JoinBody>) -> Response {
    let n = b.seeds.len();
    // The join goes on in the background past this wait; `/status` tells how it ends.
    match tokio::time::timeout(JOIN_WAIT, api.cluster.join(b.seeds)).await {
        Ok(r) => reply(r.map(|answered| {
            let answered: Vec<&str> = answered.iter().map(|n| n.as_str()).collect();
            json!({ "joined_through": n, "joined": true, "answered": answered })
        })),
        Err(_) => reply(Ok(
            json!({ "joined_through": n, "joined": false, "status": "joining" }),
        )),
    }
}

async fn leave(State(api): State<Api>) -> Response {
    reply(api.cluster.leave().await.map(|()| json!({ "left": true })))
}

#[derive(Deserialize)]
struct ForceLeaveBody {
    name: String,
}

/// `POST /force-leave {"name": ..}`: operator removal of another member (`Cluster::remove`).
async fn force_leave(State(api): State<Api>, Json(b): Json<ForceLeaveBody>) -> Response {
    let name = b.name.clone();
    reply(
        api.cluster
            .remove(b.name)
            .await
            .map(|()| json!({ "removed": name })),
    )
}

#[derive(Deserialize)]
struct KeyBody {
    key: String,
}

async fn key_op(
    State(api): State<Api>,
    Path(op): Path<String>,
    Json(b): Json<KeyBody>,
) -> Response {
    let key = match SecretKey::from_hex(b.key.trim()) {
        Ok(k) => k,
        Err(_) => {
            let e = json!({ "error": "key: want 64 hexadecimal digits" });
            return (StatusCode::BAD_REQUEST, Json(e)).into_response();
        }
    };
    let fp = format!("{:08x}", key.fingerprint());
    let command = match op.as_str() {
        "install" => Command::InstallKey(key),
        "use" => Command::UseKey(key),
        "remove" => Command::RemoveKey(key),
        _ => {
            return (
                StatusCode::NOT_FOUND,
                "want /keys/install, /keys/use or /keys/remove\n",
            )
                .into_response();
        }
    };
    reply(
        api.cluster
            .command(command)
            .await
            .map(|()| json!({ op: fp })),
    )
}

#[derive(Deserialize)]
struct PublishBody {
    #[serde(rename = "type")]
    ty: String,
    key: String,
    value: String,
}

async fn publish(State(api): State<Api>, Json(b): Json<PublishBody>) -> Response {
    reply(
        api.cluster
            .publish(b.ty, b.key, b.value.into_bytes())
            .await
            .map(|()| json!({ "published": true })),
    )
}

async fn reload(State(api): State<Api>) -> Response {
    let Some(tx) = &api.reload else {
        return (
            StatusCode::NOT_FOUND,
            "reload is not offered by this server\n",
        )
            .into_response();
    };
    let (reply_tx, rx) = oneshot::channel();
    if tx.send(reply_tx).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "the agent is stopping\n").into_response();
    }
    match rx.await {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(why)) => (StatusCode::BAD_REQUEST, Json(json!({ "error": why }))).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "the agent is stopping\n").into_response(),
    }
}
