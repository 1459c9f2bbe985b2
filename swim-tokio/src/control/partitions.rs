//! The control API's live fault routes (`docs/driver.md`, "Interposition and live
//! partitions"): `GET /partitions`, `POST /partitions`, `DELETE /partitions/{id}`, each one
//! call on the [`Cluster`](crate::Cluster) handle. Changes need the bearer token like every
//! POST; the listing is open like every GET.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use swim_proto::fault_rule::FaultRule;

use super::{Api, authorize, reply};
use crate::interpose::PartitionId;

/// `POST /partitions` body: members to cut off (Partisan's `inject_partition`), or a rule
/// list as a simulator scenario writes it; not both.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct InjectBody {
    #[serde(default)]
    members: Vec<String>,
    #[serde(default)]
    rules: Vec<FaultRule>,
}

/// The bearer token for changes; reads pass.
pub(super) async fn authorize_changes(api: State<Api>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    authorize(api, req, next).await
}

/// `POST /partitions {"members": [..]}` or `{"rules": [..]}`: `{"id": N}`.
pub(super) async fn inject(State(api): State<Api>, Json(b): Json<InjectBody>) -> Response {
    let c = &api.cluster;
    let r = match (b.members.is_empty(), b.rules.is_empty()) {
        (false, true) => c.inject_partition(b.members).await,
        (true, false) => c.inject_rules(b.rules).await,
        _ => {
            let e = json!({ "error": "give either `members` or `rules`" });
            return (StatusCode::BAD_REQUEST, Json(e)).into_response();
        }
    };
    reply(r.map(|id| json!({ "id": id })))
}

/// `DELETE /partitions/{id}`: `{"resolved": id}`, `404` if no such injection.
pub(super) async fn resolve(State(api): State<Api>, Path(id): Path<u64>) -> Response {
    match api.cluster.resolve_partition(PartitionId(id)).await {
        Ok(true) => Json(json!({ "resolved": id })).into_response(),
        Ok(false) => {
            let e = json!({ "error": format!("no partition {id}") });
            (StatusCode::NOT_FOUND, Json(e)).into_response()
        }
        Err(e) => super::error_response(e),
    }
}

/// `GET /partitions`: `[{"id", "rules"}]`.
pub(super) async fn list(State(api): State<Api>) -> Response {
    reply(
        api.cluster
            .partitions()
            .await
            .map(|ps| serde_json::to_value(ps).expect("rules serialize to JSON")),
    )
}
