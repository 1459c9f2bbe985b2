//! One step: a node handles one input, the per-step invariants are checked, its outputs are
//! folded into the digest and the trace, and each output is carried out (datagrams and stream
//! messages into the network, tick requests into the queue, events into the observations).

use swim_proto::trace::{self, TraceRecord};
use swim_proto::{Event, Input, Instant, Output};

use super::{Ev, Happening, Life, Observed, World};
use crate::invariants::{self, AfterStep, Violation};
use crate::net::Fate;
use crate::scenario::NodeId;

impl World {
    /// Hands an input to node `v` now and carries out what it outputs.
    pub(super) fn deliver(&mut self, v: NodeId, input: Input<NodeId>) {
        let vi = v as usize;
        let local_now = self.nodes[vi].clock.local(self.now);
        let sn = &mut self.nodes[vi];
        let Some(node) = sn.node.as_mut() else { return };
        if sn.paused {
            sn.backlog.push(input);
            return;
        }
        self.out.clear();
        let recorded_input = self.record.is_some().then(|| input.clone());
        node.handle_into(input, local_now, &mut self.out);
        self.check_step(v);
        self.digest_step(v, local_now, recorded_input);
        let mut out = std::mem::take(&mut self.out);
        let mut left = false;
        for o in out.drain(..) {
            match o {
                Output::SendDatagram { to, bytes } => self.send_datagram(v, to, bytes),
                Output::SendStream { to, bytes } => self.send_stream(v, to, bytes),
                Output::TickAt(t) => self.tick_at(v, t, local_now),
                Output::Event(e) => {
                    left |= matches!(e, Event::LeaveComplete);
                    self.observe(v, Happening::Event(e));
                }
                _ => {}
            }
        }
        self.out = out;
        if left && self.nodes[vi].life == Life::Left {
            self.nodes[vi].node = None;
        }
    }

    /// The per-step invariants on node `v`, just after it handled an input.
    fn check_step(&mut self, v: NodeId) {
        let sn = &mut self.nodes[v as usize];
        let node = sn.node.as_ref().expect("the node just stepped");
        if self.check_every_step {
            node.check_invariants();
        }
        let max_members = sn.config.as_ref().unwrap_or(&self.config).max_members;
        let incarnation_before = sn.incarnation;
        sn.incarnation = node.local().incarnation;
        let step = AfterStep {
            name: &sn.name,
            incarnation_before,
            max_members,
        };
        let violation = &mut self.violation;
        let now = self.now;
        invariants::check_step(node, &step, &mut |x| {
            violation.get_or_insert((now, x));
        });
    }

    /// Folds node `v`'s outputs into the digest and the trace.
    fn digest_step(&mut self, v: NodeId, local_now: Instant, input: Option<Input<NodeId>>) {
        if let Some(d) = self.digest.as_mut() {
            let step = trace::digest_outputs(&self.out)
                ^ u64::from(v)
                ^ self.now.as_nanos().rotate_left(17);
            d.write_word(step);
        }
        if let Some(input) = input {
            let digest = trace::digest_outputs(&self.out);
            self.write_record(&TraceRecord::Step {
                node: v,
                now: local_now,
                input,
                digest,
            });
        }
    }

    fn send_datagram(&mut self, v: NodeId, to: NodeId, bytes: Vec<u8>) {
        let max = self.max_packet_size(v);
        if bytes.len() > max {
            let node = self.nodes[v as usize].name.clone();
            let bytes = bytes.len();
            self.flag(Violation::OversizeDatagram { node, bytes });
        }
        let t = &mut self.traffic[v as usize];
        t.datagrams += 1;
        t.datagram_bytes += bytes.len() as u64;
        self.kind_bytes.datagram(&bytes);
        if to as usize >= self.nodes.len() {
            self.outside.datagrams += 1;
            self.outside.datagram_bytes += bytes.len() as u64;
            return;
        }
        match self.net.datagram(v, to, bytes.len(), &mut self.rng) {
            Fate::Dropped => {}
            Fate::Delivered(d) => {
                let input = Input::Datagram { from: v, bytes };
                self.input_at(self.now + d, to, input);
            }
            Fate::Duplicated(d1, d2) => {
                let copy = Input::Datagram {
                    from: v,
                    bytes: bytes.clone(),
                };
                self.input_at(self.now + d1, to, copy);
                self.input_at(self.now + d2, to, Input::Datagram { from: v, bytes });
            }
        }
    }

    fn send_stream(&mut self, v: NodeId, to: NodeId, bytes: Vec<u8>) {
        let t = &mut self.traffic[v as usize];
        t.streams += 1;
        t.stream_bytes += bytes.len() as u64;
        self.kind_bytes.stream(&bytes);
        if to as usize >= self.nodes.len() {
            self.outside.streams += 1;
            self.outside.stream_bytes += bytes.len() as u64;
            return;
        }
        if let Some(d) = self.net.stream(v, to, &mut self.rng) {
            self.input_at(self.now + d, to, Input::Stream { from: v, bytes });
        }
    }

    /// Node `v` asked for a tick at its local time `t`.
    fn tick_at(&mut self, v: NodeId, t: Instant, local_now: Instant) {
        let sn = &mut self.nodes[v as usize];
        if t <= local_now {
            let node = sn.name.clone();
            self.flag(Violation::TickNotAfterNow {
                node,
                at: t,
                now: local_now,
            });
            return;
        }
        let g = sn.clock.global(t).max(self.now);
        if sn.tick_at.is_none_or(|p| g < p) && g != Instant::MAX {
            sn.tick_at = Some(g);
            self.schedule(g, Ev::Tick { node: v });
        }
    }

    fn max_packet_size(&self, v: NodeId) -> usize {
        let n = &self.nodes[v as usize];
        n.config.as_ref().unwrap_or(&self.config).max_packet_size
    }

    pub(super) fn observe(&mut self, node: NodeId, what: Happening) {
        self.observed.push(Observed {
            at: self.now,
            node,
            what,
        });
    }

    pub(super) fn write_record(&mut self, rec: &TraceRecord<NodeId>) {
        if let Some((w, buf)) = self.record.as_mut() {
            buf.clear();
            trace::encode_frame(rec, buf);
            if let Err(e) = w.write_all(buf) {
                self.flag(Violation::TraceWrite(e.to_string()));
            }
        }
    }
}
