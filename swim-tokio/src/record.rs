//! Trace recording: every `(now, input)` fed to the core, in `swim-sim`'s trace format, so an
//! incident on a real host replays with `swim-sim replay FILE`.
//!
//! The file is `"SWMT"`, a [`TraceHeader`] whose description starts with [`ADDR_TAG`] (the
//! addresses are `SocketAddr`s, not the simulator's integers), one `Boot` record (node 0: name,
//! address, metadata, seed, config) and a `Step` per `handle` call with the digest of its
//! outputs. Writes are buffered (64 KiB) and flushed about once a second and at shutdown; a
//! crash loses at most the last second. The first write error stops recording (counted in
//! [`DriverStats::trace_write_errors`](crate::DriverStats::trace_write_errors)); the node
//! runs on.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::Path;

use swim_proto::trace::{self, TraceHeader, TraceRecord};
use swim_proto::{Config, Identity, Input, Instant, Output};

use crate::error::Error;

/// Start of the header description of traces whose addresses are `std::net::SocketAddr`;
/// `swim-sim replay` reads the rest of the file accordingly.
pub const ADDR_TAG: &str = "[addr=socket]";

pub(crate) struct Recorder {
    out: Option<BufWriter<File>>,
    frame: Vec<u8>,
}

impl Recorder {
    /// Creates the file and writes the header and the node's boot record.
    pub(crate) fn create(
        path: &Path,
        identity: &Identity<SocketAddr>,
        seed: u64,
        config: &Config,
    ) -> Result<Self, Error> {
        let what = || format!("creating trace file {}", path.display());
        let file = File::create(path).map_err(|e| Error::io(what(), e))?;
        let mut rec = Recorder {
            out: Some(BufWriter::with_capacity(64 << 10, file)),
            frame: Vec::new(),
        };
        let header = TraceHeader {
            version: trace::TRACE_VERSION,
            seed,
            description: format!(
                "{ADDR_TAG} swim-tokio node {} at {}",
                identity.name, identity.addr
            ),
        };
        rec.frame.extend_from_slice(&trace::TRACE_MAGIC);
        trace::encode_frame(&header, &mut rec.frame);
        let boot: TraceRecord<SocketAddr> = TraceRecord::Boot {
            node: 0,
            name: identity.name.to_string(),
            addr: identity.addr,
            meta: identity.meta.as_bytes().to_vec(),
            seed,
            config: Box::new(config.clone()),
        };
        trace::encode_frame(&boot, &mut rec.frame);
        rec.write()
            .map_err(|e| Error::io(format!("writing trace file {}", path.display()), e))?;
        Ok(rec)
    }

    /// Records one `handle` call. Returns false if recording has stopped on an error.
    pub(crate) fn step(
        &mut self,
        now: Instant,
        input: Input<SocketAddr>,
        outputs: &[Output<SocketAddr>],
    ) -> bool {
        if self.out.is_none() {
            return false;
        }
        let rec: TraceRecord<SocketAddr> = TraceRecord::Step {
            node: 0,
            now,
            input,
            digest: trace::digest_outputs(outputs),
        };
        trace::encode_frame(&rec, &mut self.frame);
        if let Err(e) = self.write() {
            tracing::error!(error = %e, "trace recording stopped");
            self.out = None;
            return false;
        }
        true
    }

    fn write(&mut self) -> std::io::Result<()> {
        let r = match &mut self.out {
            Some(out) => out.write_all(&self.frame),
            None => Ok(()),
        };
        self.frame.clear();
        r
    }

    /// Flushes buffered records to the file.
    pub(crate) fn flush(&mut self) -> bool {
        if let Some(out) = &mut self.out
            && let Err(e) = out.flush()
        {
            tracing::error!(error = %e, "trace recording stopped");
            self.out = None;
            return false;
        }
        true
    }
}
