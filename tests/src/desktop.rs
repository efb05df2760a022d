//! The desktop around the app, for the installed-app tests and benchmarks: test doubles of
//! the tray host and the notification server on the session bus (`tests/dbus/`, Debian's
//! python3 with python3-dbus), the app's X window (`tests/x11/window.py`), and starting the
//! app the way a launcher or the autostart entry does.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{repo_root, workspace_binary};

pub const LONG: Duration = Duration::from_secs(90);

/// The session bus's tray host and notification server, test doubles in python
/// (`tests/dbus/`), logging what the app does; killed with the test.
pub struct Desktop {
    children: Vec<Child>,
    pub sni_log: PathBuf,
    pub notes_log: PathBuf,
}

impl Drop for Desktop {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn script(path: &str) -> PathBuf {
    repo_root().join("tests").join(path)
}

impl Desktop {
    pub fn start(root: &Path) -> Desktop {
        let mut desktop = Desktop {
            children: Vec::new(),
            sni_log: root.join("sni.log"),
            notes_log: root.join("notifications.log"),
        };
        for (program, log) in [
            ("dbus/fake_sni_watcher.py", desktop.sni_log.clone()),
            ("dbus/fake_notifications.py", desktop.notes_log.clone()),
        ] {
            let mut child = Command::new(script(program))
                .arg(&log)
                .stdout(Stdio::piped())
                .spawn()
                .expect("python3-dbus test doubles (make deps installs python3-dbus)");
            let mut ready = String::new();
            std::io::BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut ready)
                .unwrap();
            assert_eq!(ready.trim(), "ready", "{program} did not start");
            desktop.children.push(child);
        }
        desktop
    }

    /// Every notification shown so far, oldest first.
    pub fn notes(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.notes_log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub fn wait_note(&self, what: &str, test: impl Fn(&Value) -> bool) -> Value {
        wait(what, || self.notes().into_iter().find(|n| test(n)))
    }

    /// The tray item's menu labels, in order (separators as "").
    pub fn tray_menu(&self) -> Option<Vec<String>> {
        let out = Command::new(script("dbus/sni_dump.py"))
            .arg(&self.sni_log)
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let dump: Value = serde_json::from_slice(&out.stdout).ok()?;
        Some(
            dump["menu"]
                .as_array()?
                .iter()
                .map(|m| m["label"].as_str().unwrap_or_default().to_owned())
                .collect(),
        )
    }

    pub fn wait_menu(&self, what: &str, test: impl Fn(&[String]) -> bool) -> Vec<String> {
        wait(what, || self.tray_menu().filter(|m| test(m)))
    }

    /// Clicks a tray menu item as the panel would (dbusmenu `Event "clicked"`); returns when
    /// the click was sent, in ms since the epoch.
    pub fn click(&self, label: &str) -> f64 {
        let out = Command::new(script("dbus/sni_dump.py"))
            .arg(&self.sni_log)
            .args(["--click", label])
            .output()
            .unwrap();
        assert!(out.status.success(), "clicking {label:?} in the tray menu");
        let sent: Value = serde_json::from_slice(&out.stdout).unwrap();
        sent["at"].as_f64().unwrap() * 1000.0
    }

    /// Clicks a notification (the server emits `ActionInvoked(id, "default")`).
    pub fn click_note(&self, id: u64) {
        let status = Command::new("gdbus")
            .args([
                "call",
                "--session",
                "--dest",
                "org.freedesktop.Notifications",
                "--object-path",
                "/org/freedesktop/Notifications",
                "--method",
                "app.attache.TestControl.Invoke",
                &id.to_string(),
                "default",
            ])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "clicking notification {id}");
    }
}

/// Polls `probe` until it gives something, for at most [`LONG`].
pub fn wait<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(start.elapsed() < LONG, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The app's window as the X server sees it: "viewable", "hidden" or "none".
pub fn window_state() -> String {
    let out = Command::new(script("x11/window.py"))
        .args(["state", "Attaché"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn close_window() {
    let status = Command::new(script("x11/window.py"))
        .args(["close", "Attaché"])
        .status()
        .unwrap();
    assert!(status.success(), "sending WM_DELETE_WINDOW");
}

pub fn app_running() -> bool {
    Command::new("pgrep")
        .args(["-f", workspace_binary("attache-desktop").to_str().unwrap()])
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// The environment `launch` gives the app, for starting it directly (a second launch, the
/// autostart entry's command).
pub fn app_command(root: &Path) -> Command {
    let mut command = Command::new(workspace_binary("attache-desktop"));
    command
        .env("ATTACHE_HOME", root.join("attache"))
        .env("XDG_DATA_HOME", root.join("xdg-data"))
        .env("XDG_CONFIG_HOME", root.join("xdg-config"))
        .stdout(Stdio::null());
    command
}

pub fn watch_folder(root: &Path) -> PathBuf {
    let inbox = root.join("Scans");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::create_dir_all(root.join("attache")).unwrap();
    let config = serde_json::json!({
        "inboxes": { "demo": { "folders": [{ "path": inbox }], "after": "move", "rules": [] } }
    });
    std::fs::write(root.join("attache").join("config.json"), config.to_string()).unwrap();
    inbox
}
