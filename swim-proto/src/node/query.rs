//! Serf queries (`docs/protocol.md` §13.3): gossiped like user events, with a filter and a
//! timeout. Members passing the filter deliver [`Event::Query`], acknowledge by datagram and
//! may answer once by stream ([`Command::Respond`](crate::Command::Respond)); the asker
//! reports each answer and, at its deadline (a timer in the [`TimerTable`](super::TimerTable)),
//! [`Event::QueryDone`].

use alloc::vec::Vec;
use core::time::Duration;

use super::messaging::{Answerable, Asked, GossipKey};
use super::timers::Timer;
use super::{Address, Node};
use crate::io::{CommandError, Event, Output, QueryFilter, QueryId};
use crate::member::NodeName;
use crate::wire::{self, Message, StreamKind, UserItem};

impl<A: Address> Node<A> {
    /// [`Command::Query`](crate::Command::Query). Nothing changes on error.
    pub(super) fn ask_query(
        &mut self,
        name: alloc::string::String,
        payload: Vec<u8>,
        filter: QueryFilter,
        timeout: Duration,
        out: &mut Vec<Output<A>>,
    ) -> Result<(), CommandError> {
        self.check_item_name(&name)?;
        let m = &self.config.messaging;
        if payload.len() > m.max_query_payload {
            return Err(CommandError::PayloadTooLarge {
                len: payload.len(),
                max: m.max_query_payload,
            });
        }
        if timeout.is_zero() || timeout > m.max_query_timeout {
            return Err(CommandError::BadQueryTimeout);
        }
        if self.messaging.asked.len() >= m.max_inflight_queries {
            return Err(CommandError::TooManyQueries {
                max: m.max_inflight_queries,
            });
        }
        if filter
            .names
            .iter()
            .any(|n| self.check_item_name(n).is_err())
        {
            return Err(CommandError::BadEventName);
        }
        let ltime = self.messaging.clock;
        let origin = self.local.name.clone();
        let names: Vec<&str> = filter.names.iter().map(|n| n.as_str()).collect();
        let item = UserItem::Query {
            origin: origin.as_str(),
            addr: self.local.addr.clone(),
            ltime,
            name: &name,
            payload: &payload,
            names,
            meta: &filter.meta,
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        };
        let mut bytes = Vec::new();
        wire::encode_into(&item, &mut bytes);
        self.check_item_fits(bytes.len())?;
        let at = self.now + timeout;
        self.messaging.asked.insert(ltime, Asked::default());
        self.on_query(origin.clone(), &item, out);
        self.messaging.clock += 1;
        self.remember(origin.clone(), ltime);
        self.stats.messaging.queries += 1;
        self.timers.push(at, Timer::Query(ltime));
        self.queue_item(GossipKey::Query(origin, ltime), bytes);
        Ok(())
    }

    /// A new query (ours or gossiped): if it passes this node's filter, deliver it, remember
    /// it as answerable and acknowledge it.
    pub(super) fn on_query(
        &mut self,
        origin: NodeName,
        item: &UserItem<'_, A>,
        out: &mut Vec<Output<A>>,
    ) {
        let UserItem::Query {
            addr,
            ltime,
            name,
            payload,
            names,
            meta,
            timeout_ms,
            ..
        } = item
        else {
            return;
        };
        let me = self.local.name.as_str();
        if !names.is_empty() && !names.contains(&me) {
            return;
        }
        if !meta.is_empty() && !contains(self.local.meta.as_bytes(), meta) {
            return;
        }
        self.stats.messaging.queries_delivered += 1;
        let ltime = *ltime;
        let deadline = self.now + Duration::from_millis(*timeout_ms);
        let m = &mut self.messaging;
        m.answerable.push_back(Answerable {
            origin: origin.clone(),
            ltime,
            addr: addr.clone(),
            deadline,
        });
        if m.answerable.len() > self.config.messaging.max_pending_responses {
            m.answerable.pop_front();
        }
        if origin == self.local.name {
            self.on_query_ack(ltime, self.local.name.clone());
        } else {
            let local = self.local.name.clone();
            let ack = Message::QueryAck {
                ltime,
                sender: local.as_str(),
            };
            self.send_datagram(addr.clone(), &ack, None, false, out);
        }
        out.push(Output::Event(Event::Query {
            id: QueryId {
                origin: origin.as_str().into(),
                ltime,
            },
            name: (*name).into(),
            payload: payload.to_vec(),
        }));
    }

    /// [`Command::Respond`](crate::Command::Respond). Nothing changes on error.
    pub(super) fn respond(
        &mut self,
        query: QueryId,
        payload: Vec<u8>,
        out: &mut Vec<Output<A>>,
    ) -> Result<(), CommandError> {
        let max = self.config.messaging.max_query_payload;
        if payload.len() > max {
            return Err(CommandError::PayloadTooLarge {
                len: payload.len(),
                max,
            });
        }
        let now = self.now;
        let i = self
            .messaging
            .answerable
            .iter()
            .position(|a| a.ltime == query.ltime && a.origin.as_str() == query.origin)
            .filter(|&i| self.messaging.answerable[i].deadline >= now)
            .ok_or(CommandError::UnknownQuery)?;
        let a = self
            .messaging
            .answerable
            .remove(i)
            .expect("position found above");
        self.stats.messaging.responses_sent += 1;
        if a.origin == self.local.name {
            let me = self.local.name.clone();
            self.on_query_response(a.ltime, me, &payload, out);
        } else {
            let kind = StreamKind::QueryResponse { ltime: a.ltime };
            self.send_payload_stream(a.addr, kind, &payload, out);
        }
        Ok(())
    }

    /// A member acknowledged one of this node's queries.
    pub(super) fn on_query_ack(&mut self, ltime: u64, from: NodeName) {
        match self.messaging.asked.get_mut(&ltime) {
            Some(q) if q.acks.len() < self.config.messaging.max_responses => {
                q.acks.insert(from);
            }
            _ => self.stats.messaging.responses_late += 1,
        }
    }

    /// A member answered one of this node's queries: reported once per member.
    pub(super) fn on_query_response(
        &mut self,
        ltime: u64,
        from: NodeName,
        payload: &[u8],
        out: &mut Vec<Output<A>>,
    ) {
        let max = self.config.messaging.max_responses;
        match self.messaging.asked.get_mut(&ltime) {
            Some(q) if q.responders.len() < max && !q.responders.contains(&from) => {
                q.responders.insert(from.clone());
                self.stats.messaging.responses_received += 1;
                out.push(Output::Event(Event::QueryResponse {
                    query: ltime,
                    from,
                    payload: payload.to_vec(),
                }));
            }
            _ => self.stats.messaging.responses_late += 1,
        }
    }

    /// A query's deadline: report its tally and forget it.
    pub(super) fn on_query_deadline(&mut self, ltime: u64, out: &mut Vec<Output<A>>) {
        if let Some(q) = self.messaging.asked.remove(&ltime) {
            out.push(Output::Event(Event::QueryDone {
                query: ltime,
                acks: q.acks.len(),
                responses: q.responders.len(),
            }));
        }
    }
}

/// Whether `needle` occurs in `hay` (metadata filters match substrings).
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
