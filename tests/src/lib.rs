//! Helpers shared by the integration and end-to-end suites: where the workspace's binaries are,
//! and a minimal W3C WebDriver client.
//!
//! The WebDriver client is hand-written (a dozen endpoints over reqwest) because the Rust
//! WebDriver crates inject capabilities WebKitWebDriver rejects or that tauri-driver does not
//! proxy (see ../shared/notes/desktop-testing.md §1.6); this is the lowest-risk option there.

pub mod webdriver;

use std::path::PathBuf;

/// `target/<profile>/` of this build: test executables live in `target/<profile>/deps/`.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>")
        .to_path_buf()
}

/// A workspace binary built beside the tests (`make test` builds them first).
pub fn workspace_binary(name: &str) -> PathBuf {
    let path = target_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: build it first (`cargo build -p {}`), as `make test` does",
        path.display(),
        if name == "attache" {
            "attache-cli"
        } else {
            "attache-desktop"
        }
    );
    path
}

/// The repository root (for artifacts/).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}
