//! Driving the real app window in the end-to-end suites (`e2e.rs`, `desktop_shell.rs`):
//! tauri-driver started on free ports, the app launched on a fresh state folder, screenshots
//! kept in `artifacts/`, and the gestures the suites share (open a contact, drop files on it,
//! wait for an upload to be attached).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::webdriver::{self, Session};
use crate::{repo_root, workspace_binary};

/// Kills tauri-driver (and with it WebKitWebDriver and the app) however the test ends.
pub struct Driver(pub Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn count(session: &Session, css: &str) -> usize {
    session.find_all(css).map(|v| v.len()).unwrap_or(0)
}

/// Starts tauri-driver and the app on a fresh state folder (`root/attache`).
pub fn launch(root: &std::path::Path) -> (Driver, Session) {
    launch_with(root, &[])
}

/// The same, with extra environment for the app (e.g. `ATTACHE_DEMO_URL`).
pub fn launch_with(root: &std::path::Path, env: &[(&str, &str)]) -> (Driver, Session) {
    let app = workspace_binary("attache-desktop");
    // One Attaché per D-Bus session: an earlier test's app still exiting would take this
    // launch's files and let it exit at once (single instance), leaving no window to drive.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while crate::desktop::app_running() {
        assert!(
            std::time::Instant::now() < deadline,
            "an earlier attache-desktop is still running"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (port, native_port) = (free_port(), free_port());
    let mut driver = Command::new("tauri-driver");
    driver.envs(env.iter().copied());
    let child = driver
        .args(["--port", &port.to_string(), "--native-port", &native_port.to_string()])
        // The app inherits this through WebKitWebDriver: a fresh state folder, so first launch
        // seeds the Demo site exactly as it does for a new user.
        .env("ATTACHE_HOME", root.join("attache"))
        .env("XDG_DATA_HOME", root.join("xdg-data"))
        .env("XDG_CONFIG_HOME", root.join("xdg-config"))
        .stdout(Stdio::null())
        .spawn()
        .expect("tauri-driver must be installed (`cargo install tauri-driver --locked`; `make deps` does it)");
    let driver = Driver(child);
    let base = format!("http://127.0.0.1:{port}");
    webdriver::wait_until_ready(&base, Duration::from_secs(30)).expect("tauri-driver ready");
    let session = Session::start(&base, app.to_str().unwrap()).expect("app session");
    (driver, session)
}

/// Runs `scenario`, then always saves a screenshot (a blank window and a missing UI look alike
/// in logs), ends the session and re-raises a failure.
pub fn with_screenshot(session: Session, name: &str, scenario: impl FnOnce(&Session)) {
    with_screenshot_then(session, name, scenario, || {});
}

/// [`with_screenshot`], with `then` run after the screenshot and before the session ends
/// (e.g. quitting the app from its tray, after which there is no window to take).
pub fn with_screenshot_then(
    session: Session,
    name: &str,
    scenario: impl FnOnce(&Session),
    then: impl FnOnce(),
) {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scenario(&session)));
    let shot = session.screenshot();
    let result = result.and_then(|()| std::panic::catch_unwind(std::panic::AssertUnwindSafe(then)));
    let artifacts = repo_root().join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    if let Ok(png) = &shot {
        std::fs::write(artifacts.join(name), png).unwrap();
    }
    let _ = session.end();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    assert_not_blank(&shot.expect("screenshot"));
}

/// Clicks `name` in the contact list and waits for its documents.
pub fn open_contact(s: &Session, name: &str) {
    let long = Duration::from_secs(90);
    let row = s
        .wait_for(&format!("{name} in the list"), long, |s| {
            for row in s.find_all("[data-testid=contact-row]")? {
                if s.text_content(&row)?.contains(name) {
                    return Ok(Some(row));
                }
            }
            Ok(None)
        })
        .unwrap();
    s.click(&row).unwrap();
    s.wait_for(&format!("{name}'s documents"), long, |s| {
        Ok((count(s, "[data-testid=attachment-card]") > 0).then_some(()))
    })
    .unwrap();
}

/// Tauri reports a drop as real paths and a position in physical pixels; the UI resolves the
/// contact under that point (here the open contact's pane).
pub fn drop_on_open_contact(s: &Session, files: &[&std::path::Path]) {
    let drop = r#"
        const [paths, css] = arguments;
        const r = document.querySelector(css).getBoundingClientRect();
        const ratio = window.devicePixelRatio || 1;
        window.attacheDrop(paths, (r.left + r.width / 2) * ratio, (r.top + r.height / 2) * ratio);
    "#;
    let paths: Vec<Value> = files
        .iter()
        .map(|f| Value::from(f.to_str().unwrap()))
        .collect();
    s.execute(
        drop,
        vec![
            Value::Array(paths),
            Value::from("[data-testid=contact-detail]"),
        ],
    )
    .unwrap();
}

/// Waits until the upload tray shows `name` attached; fails at once if its upload failed.
pub fn wait_attached(s: &Session, name: &str) {
    s.wait_for(
        &format!("{name} to be attached in the tray"),
        Duration::from_secs(90),
        |s| {
            for row in s.find_all("[data-testid=upload-row]")? {
                let text = s.text_content(&row)?;
                if text.contains(name) && text.contains("Attached") {
                    return Ok(Some(()));
                }
                if text.contains(name) && text.contains("Failed") {
                    panic!("upload failed: {text}");
                }
            }
            Ok(None)
        },
    )
    .unwrap();
}

/// The window must show something: many distinct colours, not one flat fill.
pub fn assert_not_blank(png: &[u8]) {
    let img = image::load_from_memory(png)
        .expect("screenshot is a PNG")
        .to_rgb8();
    let mut colours = std::collections::HashSet::new();
    for p in img.pixels().step_by(7) {
        colours.insert(p.0);
        if colours.len() > 64 {
            return;
        }
    }
    panic!("the screenshot looks blank ({} colours)", colours.len());
}
