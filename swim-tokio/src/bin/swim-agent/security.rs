//! The agent's keys (issue 13, `docs/security.md`): `swim-agent keygen`, the keyring from
//! `--keyring-file` or `SWIM_KEYRING`, and the warning when a node without a keyring listens
//! beyond loopback.

use std::path::Path;
use std::process::ExitCode;

use swim_tokio::DriverConfig;
use swim_tokio::keys::{self, KEYRING_ENV};

/// `swim-agent keygen`: prints a new random key in base64.
pub(super) fn keygen() -> Result<ExitCode, String> {
    println!("{}", keys::to_base64(&keys::generate()?));
    Ok(ExitCode::SUCCESS)
}

/// Sets the keyring from `--keyring-file` or the `SWIM_KEYRING` environment variable (not
/// both), over a `[core] keyring` from the config file.
pub(super) fn apply_keyring(file: Option<&Path>, c: &mut DriverConfig) -> Result<(), String> {
    let env = std::env::var(KEYRING_ENV)
        .ok()
        .filter(|t| !t.trim().is_empty());
    let ring = match (file, env) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "--keyring-file and {KEYRING_ENV} are both set: give one"
            ));
        }
        (Some(p), None) => keys::read_keyring_file(p)
            .map_err(|e| format!("--keyring-file {}: {e}", p.display()))?,
        (None, Some(text)) => {
            keys::parse_keyring(&text).map_err(|e| format!("{KEYRING_ENV}: {e}"))?
        }
        (None, None) => return Ok(()),
    };
    c.core.keyring = Some(ring);
    Ok(())
}

/// Whether the node listens beyond loopback without a keyring: anyone who can reach the port
/// can then forge membership and state (`docs/security.md`).
pub(super) fn exposed(d: &DriverConfig) -> bool {
    d.core.keyring.is_none() && !d.bind.is_loopback()
}

/// Logs a loud warning if [`exposed`].
pub(super) fn warn_if_exposed(d: &DriverConfig) {
    if exposed(d) {
        tracing::warn!(
            bind = %d.bind,
            "\n\
             !!! WARNING: NO ENCRYPTION. This node listens on {} without a keyring:\n\
             !!! anyone who can reach its port can read all cluster traffic and forge members,\n\
             !!! deaths and replicated state (docs/security.md). Create a key with\n\
             !!! `swim-agent keygen`, put it in a file readable only by this user on every\n\
             !!! node, and start with --keyring-file FILE (or SWIM_KEYRING=KEY).",
            d.bind
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_node_beyond_loopback_without_a_keyring_is_exposed() {
        let mut d = DriverConfig::default();
        d.bind = "127.0.0.1".parse().unwrap();
        assert!(!exposed(&d));
        d.bind = "0.0.0.0".parse().unwrap();
        assert!(exposed(&d));
        d.bind = "::".parse().unwrap();
        assert!(exposed(&d));
        d.core.keyring = Some(swim_proto::Keyring::new(keys::generate().unwrap()));
        assert!(!exposed(&d));
    }
}
