//! Records `git describe` of the checkout (when built from one) for the report's build
//! version; a build from a published crate has no git and reports the crate version alone.

use std::process::Command;

fn main() {
    let describe = Command::new("git")
        .args(["describe", "--tags", "--always", "--dirty"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    if let Some(d) = describe {
        println!("cargo:rustc-env=SWIM_SIM_GIT_DESCRIBE={d}");
    }
}
