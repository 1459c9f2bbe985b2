//! Events for subscribers: a [`Stream`](tokio_stream::Stream) that never blocks the node and
//! says when it fell behind, and their JSON-lines form.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use swim_proto::{Event, Member};
use tokio::sync::broadcast;
use tokio_stream::Stream;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

/// A core event and the wall-clock time the driver saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimedEvent {
    /// Milliseconds since the Unix epoch.
    pub ts_ms: u64,
    /// The event.
    pub event: Event<SocketAddr>,
}

/// One item of an [`Events`] stream.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClusterEvent {
    /// The next event.
    Event(TimedEvent),
    /// The subscriber fell more than `event_buffer` events behind; this many were skipped and
    /// the stream continues with the oldest event still buffered. Resynchronise with
    /// [`Cluster::members`](crate::Cluster::members).
    Lagged(u64),
}

/// Events of one subscriber, from [`Cluster::subscribe`](crate::Cluster::subscribe). Ends when
/// the node stops. Also usable without `StreamExt` through [`Events::recv`].
pub struct Events {
    inner: BroadcastStream<TimedEvent>,
}

impl Events {
    pub(crate) fn new(rx: broadcast::Receiver<TimedEvent>) -> Self {
        Events {
            inner: BroadcastStream::new(rx),
        }
    }

    /// The next item, or `None` once the node has stopped.
    pub async fn recv(&mut self) -> Option<ClusterEvent> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Stream for Events {
    type Item = ClusterEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ClusterEvent>> {
        Pin::new(&mut self.inner).poll_next(cx).map(|item| {
            item.map(|r| match r {
                Ok(e) => ClusterEvent::Event(e),
                Err(BroadcastStreamRecvError::Lagged(n)) => ClusterEvent::Lagged(n),
            })
        })
    }
}

/// Milliseconds since the Unix epoch, by the wall clock.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The event's name in JSON output (`member_joined`, `member_failed`, ...).
pub fn event_name(e: &Event<SocketAddr>) -> &'static str {
    match e {
        Event::MemberJoined(_) => "member_joined",
        Event::MemberSuspected { .. } => "member_suspected",
        Event::MemberAlive(_) => "member_alive",
        Event::MemberFailed(_) => "member_failed",
        Event::MemberLeft(_) => "member_left",
        Event::MemberUpdated(_) => "member_updated",
        Event::MemberRemoved(_) => "member_removed",
        Event::LocalSuspected { .. } => "local_suspected",
        Event::LocalRefuted { .. } => "local_refuted",
        Event::JoinCompleted { .. } => "join_completed",
        Event::LeaveComplete => "leave_complete",
        Event::PacketDropped { .. } => "packet_dropped",
        Event::CommandRejected(_) => "command_rejected",
        Event::StateChanged { .. } => "state_changed",
        Event::OriginFailed { .. } => "origin_failed",
        Event::ViewChanged { .. } => "view_changed",
        Event::ViewStable { .. } => "view_stable",
        Event::LeaderChanged { .. } => "leader_changed",
        _ => "other",
    }
}

/// A member as a JSON object: `name`, `addr`, `state`, `incarnation`, `meta` (UTF-8, lossy).
pub fn member_json(m: &Member<SocketAddr>) -> Value {
    json!({
        "name": m.name.as_str(),
        "addr": m.addr.to_string(),
        "state": m.state.as_str(),
        "incarnation": m.incarnation,
        "meta": String::from_utf8_lossy(m.meta.as_bytes()),
    })
}

/// One event as a JSON object (one line when serialized):
/// `{"ts_ms", "event", "node", "addr", "incarnation", ...}` for member events, with `accuser`
/// on `member_suspected`, `state` and `meta` on all; local events carry what they have.
pub fn event_json(e: &TimedEvent) -> Value {
    let mut o = Map::new();
    o.insert("ts_ms".into(), e.ts_ms.into());
    o.insert("event".into(), event_name(&e.event).into());
    let member = |o: &mut Map<String, Value>, m: &Member<SocketAddr>| {
        o.insert("node".into(), m.name.as_str().into());
        o.insert("addr".into(), m.addr.to_string().into());
        o.insert("incarnation".into(), m.incarnation.into());
        o.insert("state".into(), m.state.as_str().into());
        o.insert(
            "meta".into(),
            String::from_utf8_lossy(m.meta.as_bytes()).into(),
        );
    };
    match &e.event {
        Event::MemberJoined(m)
        | Event::MemberAlive(m)
        | Event::MemberFailed(m)
        | Event::MemberLeft(m)
        | Event::MemberUpdated(m)
        | Event::MemberRemoved(m) => member(&mut o, m),
        Event::MemberSuspected { member: m, accuser } => {
            member(&mut o, m);
            o.insert("accuser".into(), accuser.as_str().into());
        }
        Event::LocalSuspected {
            accuser,
            incarnation,
        } => {
            o.insert("accuser".into(), accuser.as_str().into());
            o.insert("incarnation".into(), (*incarnation).into());
        }
        Event::LocalRefuted { claim, incarnation } => {
            o.insert("claim".into(), claim.as_str().into());
            o.insert("incarnation".into(), (*incarnation).into());
        }
        Event::JoinCompleted { via } => {
            o.insert("via".into(), via.to_string().into());
        }
        Event::PacketDropped { from, reason } => {
            o.insert("from".into(), from.to_string().into());
            o.insert("reason".into(), format!("{reason:?}").into());
        }
        Event::CommandRejected(err) => {
            o.insert("error".into(), err.to_string().into());
        }
        Event::StateChanged {
            key,
            old,
            new,
            cause,
        } => {
            o.insert("type".into(), key.ty().into());
            o.insert("key".into(), key.key().into());
            o.insert("cause".into(), format!("{cause:?}").to_lowercase().into());
            let entry = |e: &Option<swim_proto::StateEntry>| match e {
                None => Value::Null,
                Some(e) => json!({
                    "value": e.value.as_deref().map(String::from_utf8_lossy),
                    "version": e.version,
                    "origin": e.origin.as_str(),
                }),
            };
            o.insert("old".into(), entry(old));
            o.insert("new".into(), entry(new));
        }
        Event::ViewChanged { checksum, members } => {
            o.insert("checksum".into(), format!("{checksum:016x}").into());
            o.insert("members".into(), (*members).into());
        }
        Event::ViewStable { checksum, members } => {
            o.insert("checksum".into(), format!("{checksum:016x}").into());
            let names: Vec<Value> = members.iter().map(|m| m.as_str().into()).collect();
            o.insert("members".into(), names.into());
        }
        Event::LeaderChanged { leader } => {
            o.insert(
                "leader".into(),
                leader.as_ref().map_or(Value::Null, |l| l.as_str().into()),
            );
        }
        Event::OriginFailed { origin, left, keys } => {
            o.insert("node".into(), origin.as_str().into());
            o.insert("left".into(), (*left).into());
            let keys: Vec<Value> = keys.iter().map(|k| k.to_string().into()).collect();
            o.insert("keys".into(), keys.into());
        }
        _ => {}
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use swim_proto::{Identity, NodeName};

    #[test]
    fn member_events_have_the_documented_fields() {
        let addr: SocketAddr = "127.0.0.1:7946".parse().unwrap();
        let mut node = swim_proto::Node::new(
            swim_proto::Config::local(),
            Identity::new(NodeName::new("a").unwrap(), addr),
            1,
        )
        .unwrap();
        let local = node.local().clone();
        let _ = node.handle(swim_proto::Input::Tick, swim_proto::Instant::ZERO);
        let e = TimedEvent {
            ts_ms: 1234,
            event: Event::MemberFailed(local),
        };
        let line = event_json(&e).to_string();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["ts_ms"], 1234);
        assert_eq!(v["event"], "member_failed");
        assert_eq!(v["node"], "a");
        assert_eq!(v["addr"], "127.0.0.1:7946");
        assert_eq!(v["incarnation"], 0);
        assert!(!line.contains('\n'));
    }
}
