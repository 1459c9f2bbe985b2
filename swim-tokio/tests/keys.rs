//! The agent's keys (issue 13, `docs/security.md`): `swim-agent keygen`, and a keyring file
//! that is refused when others may read it.

use std::process::Command;

const AGENT: &str = env!("CARGO_BIN_EXE_swim-agent");

#[test]
fn keygen_prints_a_new_base64_key_each_time() {
    let run = || {
        let out = Command::new(AGENT).arg("keygen").output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let (a, b) = (run(), run());
    assert_ne!(a, b);
    for k in [&a, &b] {
        assert_eq!(k.len(), 44, "{k}");
        swim_tokio::keys::parse(k).unwrap();
    }
}

#[cfg(unix)]
#[test]
fn a_keyring_file_others_can_read_stops_the_agent_before_it_binds() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("swim-agent-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("keyring");
    let key = swim_tokio::keys::to_base64(&swim_tokio::keys::generate().unwrap());
    std::fs::write(&path, &key).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(AGENT)
        .args(["--bind", "127.0.0.1:0", "--name", "k", "--keyring-file"])
        .arg(&path)
        .env_remove("SWIM_KEYRING")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("chmod 600"), "{err}");
    assert!(!err.contains(&key), "the key is never printed: {err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
