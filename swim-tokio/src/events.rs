//! Events for subscribers: a [`Stream`](tokio_stream::Stream) that never blocks the node and
//! says when it fell behind, and their JSON-lines form.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
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

/// The event's name in JSON output (`member_joined`, `member_failed`, ...): [`Event::name`],
/// the `event` tag of the event's serialized form.
pub fn event_name(e: &Event<SocketAddr>) -> &'static str {
    e.name()
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

/// One event as a JSON object (one line when serialized): the event's own serialized form
/// ([`Event`]'s `Serialize`: `event` names it, member events inline the member as `node`,
/// `addr`, `incarnation`, `state`, `meta`, with `accuser` on `member_suspected`; other events
/// carry their fields) plus `ts_ms`.
pub fn event_json(e: &TimedEvent) -> Value {
    let mut v = serde_json::to_value(&e.event)
        .expect("an event serializes to JSON (string keys, no non-finite floats)");
    if let Value::Object(o) = &mut v {
        o.insert("ts_ms".into(), e.ts_ms.into());
    }
    v
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
