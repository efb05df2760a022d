//! Helpers shared by the integration and end-to-end suites: where the workspace's binaries are,
//! the Demo site and its files as fixtures (`fixtures`), a scripted in-memory CRM for the upload
//! engine's crash windows (`scripted`), and a minimal W3C WebDriver client.
//!
//! The WebDriver client is hand-written (a dozen endpoints over reqwest) because the Rust
//! WebDriver crates inject capabilities WebKitWebDriver rejects or that tauri-driver does not
//! proxy (see ../shared/notes/desktop-testing.md §1.6); this is the lowest-risk option there.

pub mod desktop;
pub mod fixtures;
pub mod proxy;
pub mod scripted;
pub mod webdriver;
pub mod window;

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
    // The installed package's binaries instead (`.ci/package-test.sh`).
    let installed = match name {
        "attache-desktop" => std::env::var_os("ATTACHE_DESKTOP_BIN"),
        _ => None,
    };
    if let Some(path) = installed {
        return PathBuf::from(path);
    }
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

/// The port of a `http://127.0.0.1:PORT` base URL (to put a proxy in front of it).
pub fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

/// The repository root (for artifacts/).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// A child process SIGKILLed (no cleanup, no flush) when dropped, however the test ends: how
/// the crash tests kill `attache watch` and `attache upload`.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An `attache sandbox` in its own process, killed when dropped (however the test ends).
pub struct SandboxProcess {
    child: std::process::Child,
    pub base_url: String,
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `attache sandbox` on a free loopback port over `data` with `extra` arguments (faults,
/// keys) and waits for its first line, `listening on URL`.
pub fn start_sandbox_process(data: &std::path::Path, extra: &[&str]) -> SandboxProcess {
    use std::io::BufRead;
    let mut child = std::process::Command::new(workspace_binary("attache"))
        .args(["sandbox", "--addr", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the attache binary (cargo build -p attache-cli)");
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let base_url = first
        .trim()
        .strip_prefix("listening on ")
        .expect(&first)
        .to_string();
    SandboxProcess { child, base_url }
}

/// `attache` on `home`, its Demo account pointed at the sandbox at `url`; each run's log
/// (ATTACHE_LOG=info) lands in `home/log-NNN.txt`, for diagnosing a failure.
pub fn attache_logged(home: &std::path::Path, url: &str) -> std::process::Command {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let mut cmd = std::process::Command::new(workspace_binary("attache"));
    cmd.env("ATTACHE_HOME", home)
        .env("ATTACHE_DEMO_URL", url)
        .env("ATTACHE_LOG", "info")
        .stdout(std::process::Stdio::piped());
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    cmd.stderr(std::fs::File::create(home.join(format!("log-{n:03}.txt"))).unwrap());
    cmd
}

/// What `attache attachments CONTACT --json` lists for a contact of the account in `home`, by
/// file name: what the CLI itself sees on the site.
pub fn cli_attachment_counts(
    home: &std::path::Path,
    url: &str,
    contact: &str,
) -> std::collections::HashMap<String, usize> {
    let out = attache_logged(home, url)
        .args(["attachments", contact, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let attachments: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut counts = std::collections::HashMap::new();
    for a in &attachments {
        *counts
            .entry(a["fileName"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    counts
}

/// The secret the keyring holds for an Attaché account, read independently of Attaché with
/// libsecret's `secret-tool` (installed by `make deps`).
pub fn keyring_lookup(account: &str) -> Option<String> {
    let out = std::process::Command::new("secret-tool")
        .args([
            "lookup",
            "service",
            "app.attache.desktop",
            "username",
            account,
        ])
        .output()
        .expect("secret-tool (libsecret-tools) is installed by make deps");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

/// A file as the upload engine would send it after its checks: named after the path, with its
/// size, modification time and content hash read now.
pub fn upload_source(path: &std::path::Path, mime: &str) -> attache_core::upload::UploadSource {
    let (size, modified_ns) = attache_core::upload::stat(path).unwrap();
    attache_core::upload::UploadSource {
        path: path.to_path_buf(),
        file_name: path.file_name().unwrap().to_string_lossy().into_owned(),
        mime_type: mime.into(),
        size,
        modified_ns,
        content_hash: attache_service::uploads::hash_file(path).unwrap(),
        progress: Default::default(),
    }
}

/// User + system CPU time so far of a process (`"self"` or a pid), in seconds (Linux
/// `/proc/PID/stat`, clock ticks of 1/100 s).
pub fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name may hold spaces and parentheses: fields are counted after its last ')'.
    let after_name = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the name: state is 0, utime 11, stime 12.
    (ticks(11) + ticks(12)) / 100.0
}
