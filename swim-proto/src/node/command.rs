//! Application commands ([`Command`]): join, leave, metadata, keys and replicated state
//! writes. A rejected command changes nothing and is reported as [`Event::CommandRejected`].

use alloc::vec::Vec;

use super::timers::TimerKind;
use super::{Address, Node};
use crate::io::{Command, CommandError, Event, Output};
use crate::member::{MemberState, Metadata};

impl<A: Address> Node<A> {
    pub(super) fn run_command(
        &mut self,
        command: Command<A>,
        out: &mut Vec<Output<A>>,
    ) -> Result<(), CommandError> {
        let r = self.try_command(command, out);
        if let Err(e) = &r {
            out.push(Output::Event(Event::CommandRejected(e.clone())));
        }
        r
    }

    /// The keyring, for a key command; [`CommandError::NoKeyring`] without encryption.
    fn keyring_mut(&mut self) -> Result<&mut crate::keyring::Keyring, CommandError> {
        self.config.keyring.as_mut().ok_or(CommandError::NoKeyring)
    }

    pub(super) fn try_command(
        &mut self,
        command: Command<A>,
        out: &mut Vec<Output<A>>,
    ) -> Result<(), CommandError> {
        if self.local.state == MemberState::Left {
            if !(self.removals.local && matches!(command, Command::Join { .. })) {
                return Err(CommandError::Left);
            }
            self.rejoin_after_removal(); // explicit rejoin after an operator removal
        }
        match command {
            Command::Join { seeds } => self.join(seeds, out)?,
            Command::Leave => {
                self.local.state = MemberState::Left;
                self.take_probe();
                self.timers.clear(TimerKind::Probe);
                self.timers.clear(TimerKind::Join);
                self.timers.clear(TimerKind::PushPull);
                self.announce_self();
                if self.members.active() == 0 {
                    self.leave_reported = true;
                    out.push(Output::Event(Event::LeaveComplete));
                }
            }
            Command::InstallKey(key) => {
                let ring = self.keyring_mut()?;
                ring.install(key).map_err(CommandError::Keyring)?;
            }
            Command::UseKey(key) => {
                let ring = self.keyring_mut()?;
                ring.use_key(&key).map_err(CommandError::Keyring)?;
            }
            Command::RemoveKey(key) => {
                let ring = self.keyring_mut()?;
                ring.remove(&key).map_err(CommandError::Keyring)?;
            }
            Command::Publish(w) => self.publish(alloc::vec![(w, false)], out)?,
            Command::PublishMany(ws) => {
                self.publish(ws.into_iter().map(|w| (w, false)).collect(), out)?;
            }
            Command::Delete { ty, key } => {
                let w = crate::io::StateWrite {
                    ty,
                    key,
                    value: Vec::new(),
                };
                self.publish(alloc::vec![(w, true)], out)?;
            }
            Command::Remove { name } => self.remove_member(&name, out)?,
            Command::PauseFailureDetector => self.pause_failure_detector(out),
            Command::ResumeFailureDetector => self.resume_failure_detector(),
            Command::UpdateMetadata(meta) => {
                if meta.len() > self.config.max_meta_len {
                    return Err(CommandError::MetadataTooLarge {
                        len: meta.len(),
                        max: self.config.max_meta_len,
                    });
                }
                self.local.meta = Metadata::from(meta);
                self.local.incarnation = self.local.incarnation.saturating_add(1);
                self.announce_self();
            }
            Command::Send {
                to,
                channel,
                payload,
                reliable,
            } => self.send_message(&to, channel, payload, reliable, out)?,
            Command::Broadcast { name, payload } => self.broadcast_event(name, payload, out)?,
            Command::Query {
                name,
                payload,
                filter,
                timeout,
            } => self.ask_query(name, payload, filter, timeout, out)?,
            Command::Respond { query, payload } => self.respond(query, payload, out)?,
            // Lifecycle and reconfiguration (issue 14).
            Command::Reconfigure(config) => self.reconfigure(*config, out)?,
        }
        Ok(())
    }
}
