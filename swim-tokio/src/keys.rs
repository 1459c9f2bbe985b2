//! Encryption keys for the agent (issue 13, `docs/security.md`): new keys from the operating
//! system's random source, their text form (base64, as memberlist's and Serf's; 64 hex digits
//! are accepted too), and keyrings read from a file or an environment variable so keys stay
//! out of command lines and config files. No protocol logic lives here.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use swim_proto::keyring::KEY_LEN;
use swim_proto::{Keyring, SecretKey};

/// The environment variable the agent reads a keyring from: keys separated by commas or
/// white space, the first one primary.
pub const KEYRING_ENV: &str = "SWIM_KEYRING";

/// A new random key, from the operating system's random source.
pub fn generate() -> Result<SecretKey, String> {
    let mut bytes = [0u8; KEY_LEN];
    getrandom::fill(&mut bytes).map_err(|e| format!("the system random source failed: {e}"))?;
    Ok(SecretKey::new(bytes))
}

/// A key's text form: standard base64 with padding (44 characters for 32 bytes).
pub fn to_base64(key: &SecretKey) -> String {
    STANDARD.encode(key.as_bytes())
}

/// Parses a key written as base64 (standard alphabet, 32 bytes) or as 64 hexadecimal digits.
/// The error never repeats the text (it may be a mistyped key).
pub fn parse(text: &str) -> Result<SecretKey, String> {
    let text = text.trim();
    if let Ok(k) = SecretKey::from_hex(text) {
        return Ok(k);
    }
    let bytes = STANDARD.decode(text).map_err(|_| {
        format!("a key is {KEY_LEN} bytes in base64 (swim-agent keygen) or 64 hexadecimal digits")
    })?;
    let bytes: [u8; KEY_LEN] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("a key is {KEY_LEN} bytes, this one is {}", b.len()))?;
    Ok(SecretKey::new(bytes))
}

/// A keyring from text holding keys separated by commas, white space or new lines (`#` starts a
/// comment to the end of the line); the first key is the primary, the others are accepted for
/// decryption only (the middle of a rotation).
pub fn parse_keyring(text: &str) -> Result<Keyring, String> {
    let mut keys = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.split(|c: char| c == ',' || c.is_whitespace()))
        .filter(|k| !k.is_empty())
        .enumerate()
        .map(|(i, k)| parse(k).map_err(|e| format!("key {}: {e}", i + 1)));
    let primary = keys.next().ok_or("no key given")??;
    let mut ring = Keyring::new(primary);
    for k in keys {
        ring.install(k?).map_err(|e| e.to_string())?;
    }
    Ok(ring)
}

/// Reads a keyring file (see [`parse_keyring`]). On Unix, a file that others than its owner
/// may read is refused: it holds the cluster's secret.
pub fn read_keyring_file(path: &Path) -> Result<Keyring, String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "mode {:o} lets others read it; chmod 600 it",
                mode & 0o777
            ));
        }
    }
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    parse_keyring(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_round_trips_through_base64_and_differs_each_time() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a.as_bytes(), b.as_bytes());
        let text = to_base64(&a);
        assert_eq!(text.len(), 44);
        assert_eq!(parse(&text).unwrap().as_bytes(), a.as_bytes());
        let hex: String = a.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(parse(&hex).unwrap().as_bytes(), a.as_bytes());
    }

    #[test]
    fn a_keyring_lists_keys_primary_first_and_rejects_bad_ones() {
        let (a, b) = (generate().unwrap(), generate().unwrap());
        let text = format!(
            "# the cluster's keys\n{}  # primary\n\n{}\n",
            to_base64(&a),
            to_base64(&b)
        );
        let ring = parse_keyring(&text).unwrap();
        assert_eq!(ring.primary().as_bytes(), a.as_bytes());
        assert_eq!(ring.keys().len(), 2);
        let ring = parse_keyring(&format!("{},{}", to_base64(&b), to_base64(&a))).unwrap();
        assert_eq!(ring.primary().as_bytes(), b.as_bytes());
        assert!(parse_keyring("  # nothing\n").is_err());
        let err = parse_keyring("c2hvcnQ=").unwrap_err();
        assert!(err.contains("key 1") && !err.contains("c2hvcnQ"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_keyring_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("swim-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keyring");
        std::fs::write(&path, to_base64(&generate().unwrap())).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read_keyring_file(&path).unwrap_err().contains("chmod 600"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(read_keyring_file(&path).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
