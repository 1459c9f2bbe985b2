//! Application messaging on the [`Cluster`] handle (`docs/protocol.md` §13, `docs/driver.md`):
//! direct messages, Serf user events and queries. Each method is a core command; no protocol
//! logic lives here.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use swim_proto::{Command, Event, NodeName, QueryFilter, QueryId};
use tokio::sync::oneshot;
use tokio_stream::Stream;

use crate::driver::Request;
use crate::error::Error;
use crate::events::{ClusterEvent, Events};
use crate::handle::Cluster;

/// A direct message from [`Cluster::messages`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The sender.
    pub from: NodeName,
    /// The application's bytes.
    pub payload: Vec<u8>,
}

/// What a [`Cluster::query`] collected by its deadline.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueryOutcome {
    /// Members that received the query and passed its filter.
    pub acks: usize,
    /// The answers, in arrival order (one per member at most).
    pub responses: Vec<(NodeName, Vec<u8>)>,
}

/// Direct messages on one channel, from [`Cluster::messages`]. Ends when the node stops;
/// messages skipped because the subscriber lagged are lost to it (counted nowhere else).
pub struct Messages {
    events: Events,
    channel: u16,
}

impl Stream for Messages {
    type Item = ReceivedMessage;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match Pin::new(&mut self.events).poll_next(cx) {
                Poll::Ready(Some(ClusterEvent::Event(e))) => {
                    if let Event::Message {
                        from,
                        channel,
                        payload,
                    } = e.event
                        && channel == self.channel
                    {
                        return Poll::Ready(Some(ReceivedMessage { from, payload }));
                    }
                }
                Poll::Ready(Some(_)) => {}
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl Messages {
    /// The next message, or `None` once the node has stopped.
    pub async fn recv(&mut self) -> Option<ReceivedMessage> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Cluster {
    /// Sends `payload` to the member `to` in one datagram, best effort (Partisan's `forward`
    /// and memberlist's best-effort send are the same call). Refused, changing nothing, if `to`
    /// is not alive or suspect here or the payload does not fit one datagram.
    pub async fn send(
        &self,
        to: impl Into<String>,
        channel: u16,
        payload: impl Into<Vec<u8>>,
    ) -> Result<(), Error> {
        self.send_with(to.into(), channel, payload.into(), false)
            .await
    }

    /// Sends `payload` to the member `to` over a TCP stream: delivered unless the connection
    /// fails. At most `core.messaging.max_reliable_payload` bytes (default 64 KiB).
    pub async fn send_reliable(
        &self,
        to: impl Into<String>,
        channel: u16,
        payload: impl Into<Vec<u8>>,
    ) -> Result<(), Error> {
        self.send_with(to.into(), channel, payload.into(), true)
            .await
    }

    async fn send_with(
        &self,
        to: String,
        channel: u16,
        payload: Vec<u8>,
        reliable: bool,
    ) -> Result<(), Error> {
        self.command(Command::Send {
            to,
            channel,
            payload,
            reliable,
        })
        .await
    }

    /// Direct messages arriving on `channel` from now on.
    pub fn messages(&self, channel: u16) -> Messages {
        Messages {
            events: self.subscribe(),
            channel,
        }
    }

    /// Broadcasts a Serf user event: every live member (this one included) gets
    /// `Event::UserEvent` once. Payload at most `core.messaging.max_event_payload` (512 B).
    pub async fn broadcast(
        &self,
        name: impl Into<String>,
        payload: impl Into<Vec<u8>>,
    ) -> Result<(), Error> {
        self.command(Command::Broadcast {
            name: name.into(),
            payload: payload.into(),
        })
        .await
    }

    /// Asks a Serf query and returns what was collected at its deadline (`timeout` from now).
    /// Members answer with [`Cluster::respond`] on `Event::Query`.
    pub async fn query(
        &self,
        name: impl Into<String>,
        payload: impl Into<Vec<u8>>,
        filter: QueryFilter,
        timeout: Duration,
    ) -> Result<QueryOutcome, Error> {
        let mut events = self.subscribe();
        let command = Command::Query {
            name: name.into(),
            payload: payload.into(),
            filter,
            timeout,
        };
        let (reply, rx) = oneshot::channel();
        self.request(Request::Query { command, reply }).await?;
        let ltime = rx
            .await
            .map_err(|_| Error::Shutdown)?
            .map_err(Error::Command)?;
        let mut outcome = QueryOutcome::default();
        // The core reports the deadline itself; the margin only guards a stopped node.
        let wait = tokio::time::sleep(timeout + Duration::from_secs(5));
        tokio::pin!(wait);
        loop {
            tokio::select! {
                item = events.recv() => match item {
                    Some(ClusterEvent::Event(e)) => match e.event {
                        Event::QueryResponse { query, from, payload } if query == ltime => {
                            outcome.responses.push((from, payload));
                        }
                        Event::QueryDone { query, acks, .. } if query == ltime => {
                            outcome.acks = acks;
                            return Ok(outcome);
                        }
                        _ => {}
                    },
                    Some(_) => {}
                    None => return Err(Error::Shutdown),
                },
                () = &mut wait => return Err(Error::Shutdown),
            }
        }
    }

    /// Answers a query delivered as `Event::Query`, once, before its deadline.
    pub async fn respond(&self, query: QueryId, payload: impl Into<Vec<u8>>) -> Result<(), Error> {
        self.command(Command::Respond {
            query,
            payload: payload.into(),
        })
        .await
    }
}
