//! End-to-end: the real `attache-desktop` binary in a real window (under Xvfb in CI), driven
//! through tauri-driver + WebKitWebDriver. Asserts on what is on screen and saves a screenshot
//! to `artifacts/`.
//!
//! Ignored by default because it needs a display, a D-Bus session and tauri-driver; `make e2e`
//! (part of `make test`) runs it under `dbus-run-session -- xvfb-run`.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use attache_tests::webdriver::{self, Session};
use attache_tests::{repo_root, workspace_binary};
use serde_json::Value;

/// Kills tauri-driver (and with it WebKitWebDriver and the app) however the test ends.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn count(session: &Session, css: &str) -> usize {
    session.find_all(css).map(|v| v.len()).unwrap_or(0)
}

#[test]
#[ignore = "needs a display and tauri-driver: run with `make e2e`"]
fn demo_site_in_the_real_window() {
    let app = workspace_binary("attache-desktop");
    let home = tempfile::tempdir().unwrap();
    let (port, native_port) = (free_port(), free_port());
    let opened_log = install_default_opener(home.path());
    let child = Command::new("tauri-driver")
        .args(["--port", &port.to_string(), "--native-port", &native_port.to_string()])
        // The app inherits this through WebKitWebDriver: a fresh state folder, so first launch
        // seeds the Demo site exactly as it does for a new user.
        .env("ATTACHE_HOME", home.path().join("attache"))
        .env("XDG_DATA_HOME", home.path().join("xdg-data"))
        .env("XDG_CONFIG_HOME", home.path().join("xdg-config"))
        .stdout(Stdio::null())
        .spawn()
        .expect("tauri-driver must be installed (`cargo install tauri-driver --locked`; `make deps` does it)");
    let _driver = Driver(child);
    let base = format!("http://127.0.0.1:{port}");
    webdriver::wait_until_ready(&base, Duration::from_secs(30)).expect("tauri-driver ready");

    let session = Session::start(&base, app.to_str().unwrap()).expect("app session");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scenario(&session, &home.path().join("attache"), &opened_log)));
    // A screenshot in every run, pass or fail: a blank window and a missing UI look alike in logs.
    let shot = session.screenshot();
    let artifacts = repo_root().join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    if let Ok(png) = &shot {
        std::fs::write(artifacts.join("e2e-demo-site.png"), png).unwrap();
    }
    let _ = session.end();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    let png = shot.expect("screenshot");
    assert_not_blank(&png);
}

fn scenario(s: &Session, home: &std::path::Path, opened_log: &std::path::Path) {
    let long = Duration::from_secs(90); // first launch generates the Demo site's documents
    let short = Duration::from_secs(20);

    // The Demo site says so, plainly.
    let banner = s
        .wait_for("the demo banner", long, |s| {
            Ok(s.find_all("[data-testid=demo-banner]")?.into_iter().next())
        })
        .unwrap();
    assert!(s.text_content(&banner).unwrap().contains("Demo site — local, nothing leaves this computer"));

    // Contacts are listed (name, e-mail, phone).
    let rows = s
        .wait_for("at least 12 contacts", long, |s| {
            let n = count(s, "[data-testid=contact-row]");
            Ok((n >= 12).then_some(n))
        })
        .unwrap();
    assert!(rows >= 12, "{rows} contact rows");
    let all_text = s.text_content(&s.find("[data-testid=contact-list]").unwrap()).unwrap();
    for expected in ["Ana Silva", "ana.silva@example.com", "+1 415 555 0132", "Marcus Okafor"] {
        assert!(all_text.contains(expected), "contact list lacks {expected:?}:\n{all_text}");
    }

    // Search narrows the list.
    let search = s.find("[data-testid=contact-search]").unwrap();
    s.click(&search).unwrap();
    s.send_keys(&search, "silv").unwrap();
    s.wait_for("the search to narrow to Ana Silva", short, |s| {
        let rows = s.find_all("[data-testid=contact-row]")?;
        if rows.len() != 1 {
            return Ok(None);
        }
        Ok(s.text_content(&rows[0])?.contains("Ana Silva").then_some(()))
    })
    .unwrap();
    s.clear(&search).unwrap();
    // `clear` does not fire `input` in every driver; make the page see it.
    s.execute(
        "const el = document.querySelector('[data-testid=contact-search]'); el.value = ''; \
         el.dispatchEvent(new Event('input', {bubbles: true}));",
        vec![],
    )
    .unwrap();
    s.wait_for("the full list again", short, |s| Ok((count(s, "[data-testid=contact-row]") >= 12).then_some(())))
        .unwrap();

    // A contact's attachments render: an image thumbnail that really loaded, a document icon.
    let ana = s
        .find_all("[data-testid=contact-row]")
        .unwrap()
        .into_iter()
        .find(|r| s.text_content(r).map(|t| t.contains("Ana Silva")).unwrap_or(false))
        .expect("Ana Silva's row");
    s.click(&ana).unwrap();
    s.wait_for("Ana Silva's 5 documents", long, |s| {
        Ok((count(s, "[data-testid=attachment-card]") >= 5).then_some(()))
    })
    .unwrap();
    let names: Vec<String> = s
        .find_all("[data-testid=attachment-name]")
        .unwrap()
        .iter()
        .map(|e| s.text_content(e).unwrap())
        .collect();
    assert!(names.iter().any(|n| n == "Front elevation.jpg"), "{names:?}");
    assert!(names.iter().any(|n| n.ends_with(".pdf")), "{names:?}");
    let loaded: Value = s
        .wait_for("an image thumbnail to load", long, |s| {
            let v = s.execute(
                "return [...document.querySelectorAll('[data-testid=attachment-thumbnail]')] \
                   .map(img => ({complete: img.complete, w: img.naturalWidth, h: img.naturalHeight}));",
                vec![],
            )?;
            let any = v.as_array().is_some_and(|a| a.iter().any(|i| i["w"].as_u64().unwrap_or(0) > 0));
            Ok(any.then_some(v))
        })
        .unwrap();
    assert!(
        loaded.as_array().unwrap().iter().filter(|i| i["w"].as_u64().unwrap_or(0) > 0).count() >= 2,
        "both photos' thumbnails should load: {loaded}"
    );
    let doc_icons = count(s, "[data-kind=document] [data-testid=file-icon]");
    assert!(doc_icons >= 3, "documents show a type icon ({doc_icons})");
    let sizes = s.text_content(&s.find("[data-testid=attachment-grid]").unwrap()).unwrap();
    assert!(sizes.contains("KB"), "sizes are shown: {sizes}");
    assert!(sizes.contains("PDF document"), "types are shown: {sizes}");

    // "Open" downloads the file into the cache, then hands it to the system's default
    // application for its type (here a recording stand-in registered the XDG way).
    let open = s
        .find(r#"[data-testid=attachment-card][data-file-name="Offer comparison.csv"] [data-testid=open]"#)
        .unwrap();
    s.click(&open).unwrap();
    let downloaded = s
        .wait_for("the opened file in the cache", short, |_| {
            Ok(find_file(&home.join("files"), "Offer comparison.csv"))
        })
        .unwrap();
    assert!(std::fs::read_to_string(&downloaded).unwrap().starts_with("offer,amount"));
    let opened = s
        .wait_for("the default application to be launched", short, |_| {
            Ok(std::fs::read_to_string(opened_log).ok().filter(|t| !t.is_empty()))
        })
        .unwrap();
    assert_eq!(opened.trim(), downloaded.to_str().unwrap(), "opened the cached copy");
    assert_eq!(count(s, "[data-testid=notice]"), 0, "opening reported an error");
}

/// Registers, the freedesktop way (XDG_DATA_HOME/applications + XDG_CONFIG_HOME/mimeapps.list),
/// a default application for the demo's file types that only records what it was asked to open.
fn install_default_opener(root: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let apps = root.join("xdg-data/applications");
    let config = root.join("xdg-config");
    std::fs::create_dir_all(&apps).unwrap();
    std::fs::create_dir_all(&config).unwrap();
    let log = root.join("opened.log");
    let script = root.join("record-open.sh");
    std::fs::write(&script, format!("#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\n", log.display())).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let types = ["text/csv", "application/pdf", "image/jpeg"];
    std::fs::write(
        apps.join("attache-e2e-opener.desktop"),
        format!(
            "[Desktop Entry]\nType=Application\nName=E2E opener\nExec={} %f\nMimeType={};\nNoDisplay=true\n",
            script.display(),
            types.join(";")
        ),
    )
    .unwrap();
    let defaults: String = types.iter().map(|t| format!("{t}=attache-e2e-opener.desktop\n")).collect();
    std::fs::write(config.join("mimeapps.list"), format!("[Default Applications]\n{defaults}")).unwrap();
    log
}

fn find_file(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}

/// The window must show something: many distinct colours, not one flat fill.
fn assert_not_blank(png: &[u8]) {
    let img = image::load_from_memory(png).expect("screenshot is a PNG").to_rgb8();
    let mut colours = std::collections::HashSet::new();
    for p in img.pixels().step_by(7) {
        colours.insert(p.0);
        if colours.len() > 64 {
            return;
        }
    }
    panic!("the screenshot looks blank ({} colours)", colours.len());
}
