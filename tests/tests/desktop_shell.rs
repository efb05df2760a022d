//! The installed app around its window, end to end in a real window: the tray (read from a
//! test StatusNotifierWatcher over D-Bus, its menu clicked the way a panel clicks it), closing
//! to the tray while work goes on, notifications (a test notification server records them and
//! clicks them), a second launch handing its files to the running window, start at login.
//!
//! Ignored by default: needs a display, a D-Bus session, tauri-driver and Debian's python3
//! with python3-dbus / python3-xlib (`make e2e` runs it, see `.ci/e2e.sh`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use attache_tests::desktop::*;
use attache_tests::window::*;
use attache_tests::workspace_binary;
use serde_json::Value;

fn pdf(title: &str) -> Vec<u8> {
    attache_sandbox::pdf::document(title, "12 Harbor Lane", &["Signed."], &["Ana Silva"])
}

fn summary(note: &Value) -> &str {
    note["summary"].as_str().unwrap_or_default()
}

/// "12 files attached" → 12 (a batch summary, however many files it counts).
fn attached_in(note: &Value) -> Option<u64> {
    let summary = summary(note);
    let n = summary
        .strip_suffix(" files attached")
        .or_else(|| summary.strip_suffix(" file attached"))?;
    n.parse().ok()
}

#[test]
#[ignore = "needs a display, D-Bus and tauri-driver: run with `make e2e`"]
fn closing_the_window_keeps_filing_and_uploading() {
    let root = tempfile::tempdir().unwrap();
    let inbox = watch_folder(root.path());
    let desktop = Desktop::start(root.path());
    let (_driver, session) = launch(root.path());
    let scenario = |s: &attache_tests::webdriver::Session| {
        let menu = desktop.wait_menu("the tray item and its menu", |m| m.len() == 7);
        assert_eq!(
            menu[1..],
            [
                "",
                "Open Attaché",
                "Pause uploads",
                "Pause watching",
                "",
                "Quit Attaché"
            ]
        );
        open_contact(s, "Ana Silva");

        // Forty files dropped, then the window closed while they upload.
        let files: Vec<PathBuf> = (0..40)
            .map(|i| {
                let path = root.path().join(format!("closing-{i:02}.pdf"));
                std::fs::write(&path, pdf(&format!("Disclosure {i}"))).unwrap();
                path
            })
            .collect();
        let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
        drop_on_open_contact(s, &refs);
        wait("uploads to start", || {
            (count(s, "[data-testid=upload-row]") > 0).then_some(())
        });
        close_window();
        wait("the window hidden, not closed", || {
            (window_state() == "hidden").then_some(())
        });
        assert!(
            app_running(),
            "closing the window must not quit while uploads run"
        );
        desktop.wait_note("the one-time hint", |n| {
            summary(n) == "Attaché keeps working in the background"
        });

        // Hidden, it files what the scanner writes, and sends every dropped file.
        let scan = "Ana Silva - inspection report.pdf";
        std::fs::write(inbox.join(scan), pdf("Inspection")).unwrap();
        wait("the scan filed while the window is hidden", || {
            inbox
                .join("Filed")
                .join("Ana Silva")
                .join(scan)
                .is_file()
                .then_some(())
        });
        let deadline = Instant::now() + LONG;
        while desktop.notes().iter().filter_map(attached_in).sum::<u64>() != 41 {
            assert!(
                Instant::now() < deadline,
                "41 files reported attached, in summaries: {:#?}",
                desktop.notes()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let summaries = desktop.notes().iter().filter_map(attached_in).count();
        assert!(
            summaries <= 3,
            "one summary per batch, not one per file: {summaries}"
        );
        assert_eq!(window_state(), "hidden");

        // A file no rule can place: told, and the click opens its row.
        std::fs::write(inbox.join("scan_0042.pdf"), pdf("Unknown")).unwrap();
        let note = desktop.wait_note("a needs-filing notification", |n| {
            summary(n) == "scan_0042.pdf needs filing"
        });
        desktop.wait_menu("the tray counting it", |m| m[0] == "1 needs filing");
        desktop.click_note(note["id"].as_u64().unwrap());
        wait("the window shown again", || {
            (window_state() == "viewable").then_some(())
        });
        s.wait_for("the Inbox panel at that file", LONG, |s| {
            for row in s.find_all("[data-testid=needs-filing]")? {
                let focused = s.execute(
                    "return arguments[0].classList.contains('focused')",
                    vec![row.as_arg()],
                )?;
                if s.text_content(&row)?.contains("scan_0042.pdf") && focused == Value::Bool(true) {
                    return Ok(Some(()));
                }
            }
            Ok(None)
        })
        .unwrap();
        let hints = desktop
            .notes()
            .iter()
            .filter(|n| summary(n) == "Attaché keeps working in the background")
            .count();
        assert_eq!(hints, 1, "the hint is shown once");
        s.click(&s.find("[data-testid=inbox-close]").unwrap())
            .unwrap();

        // Pause from the tray: saved, shown in the window; resume.
        desktop.click("Pause uploads");
        desktop.wait_menu("Resume uploads offered", |m| m[3] == "Resume uploads");
        let config: Value = serde_json::from_slice(
            &std::fs::read(root.path().join("attache").join("config.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(config["desktop"]["uploadsPaused"], Value::Bool(true));
        s.wait_for("the window showing the pause", LONG, |s| {
            let buttons = s.find_all("[data-testid=upload-pause]")?;
            Ok(match buttons.first() {
                Some(b) if s.text_content(b)?.trim() == "Resume" => Some(()),
                _ => None,
            })
        })
        .unwrap();
        // While paused, a file is queued and then deleted: on Resume its upload fails for
        // good, and that is told (with the file and the reason).
        let vanishing = root.path().join("vanishing.pdf");
        std::fs::write(&vanishing, pdf("Gone")).unwrap();
        drop_on_open_contact(s, &[vanishing.as_path()]);
        s.wait_for("the file queued", LONG, |s| {
            for row in s.find_all("[data-testid=upload-row]")? {
                if s.text_content(&row)?.contains("vanishing.pdf") {
                    return Ok(Some(()));
                }
            }
            Ok(None)
        })
        .unwrap();
        std::fs::remove_file(&vanishing).unwrap();
        desktop.click("Resume uploads");
        desktop.wait_menu("Pause uploads offered again", |m| m[3] == "Pause uploads");
        let failed = desktop.wait_note("the failure told", |n| summary(n) == "1 upload failed");
        let body = failed["body"].as_str().unwrap();
        assert!(body.starts_with("vanishing.pdf: "), "{body}");

        // Batch notifications turned off in Settings: the next batch is not announced.
        s.click(&s.find("[data-testid=settings-button]").unwrap())
            .unwrap();
        let batches = s
            .wait_for("the settings", LONG, |s| {
                Ok(s.find_all("[data-testid=setting-notify-batches]")?.pop())
            })
            .unwrap();
        s.click(&batches).unwrap();
        wait("the setting saved", || {
            let config: Value = serde_json::from_slice(
                &std::fs::read(root.path().join("attache").join("config.json")).ok()?,
            )
            .ok()?;
            (config["desktop"]["notify"]["batches"] == Value::Bool(false)).then_some(())
        });
        s.click(&s.find("[data-testid=settings-close]").unwrap())
            .unwrap();
        let told = desktop.notes().len();
        let quiet = root.path().join("quiet.pdf");
        std::fs::write(&quiet, pdf("Quiet")).unwrap();
        drop_on_open_contact(s, &[quiet.as_path()]);
        wait_attached(s, "quiet.pdf");
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(
            desktop.notes().len(),
            told,
            "{:#?}",
            &desktop.notes()[told..]
        );
    };
    // Quit from the tray really ends it (after the screenshot: then there is no window).
    with_screenshot_then(session, "desktop-tray.png", scenario, || {
        assert!(app_running());
        desktop.click("Quit Attaché");
        wait("the app to exit", || (!app_running()).then_some(()));
    });
}

#[test]
#[ignore = "needs a display, D-Bus and tauri-driver: run with `make e2e`"]
fn a_second_launch_hands_its_files_to_the_running_window() {
    let root = tempfile::tempdir().unwrap();
    let _desktop = Desktop::start(root.path());
    let (_driver, session) = launch(root.path());
    with_screenshot(session, "desktop-open-with.png", |s| {
        open_contact(s, "Marcus Okafor");
        let offer = root.path().join("Ana Silva - offer.pdf");
        let photo = root.path().join("front door.jpg");
        std::fs::write(&offer, pdf("Offer")).unwrap();
        image::RgbImage::from_fn(320, 240, |x, y| image::Rgb([x as u8, y as u8, 90]))
            .save(&photo)
            .unwrap();
        // As a file manager's "Open With" does: a second process with the files, relative
        // to its own working directory.
        let started = Instant::now();
        let status = app_command(root.path())
            .current_dir(root.path())
            .args(["Ana Silva - offer.pdf", "front door.jpg"])
            .status()
            .unwrap();
        assert!(status.success(), "the second launch exits cleanly");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the second launch hands over and exits at once"
        );
        let names = s
            .wait_for("the which-client prompt", LONG, |s| {
                let rows = s.find_all("[data-testid=opened-file]")?;
                let names: Vec<String> = rows
                    .iter()
                    .map(|r| s.text_content(r))
                    .collect::<Result<_, _>>()?;
                Ok((names.len() == 2).then_some(names))
            })
            .unwrap();
        assert_eq!(names, ["Ana Silva - offer.pdf", "front door.jpg"]);
        let count_windows = Command::new(script("x11/window.py"))
            .args(["count", "Attaché"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&count_windows.stdout).trim(), "1");
        let first = s.find("[data-testid=opened-suggestion]").unwrap();
        assert!(
            s.text_content(&first).unwrap().starts_with("Ana Silva"),
            "the matcher's suggestion comes first"
        );
        s.click(&first).unwrap();
        wait_attached(s, "Ana Silva - offer.pdf");
        wait_attached(s, "front door.jpg");
        for row in s.find_all("[data-testid=upload-row]").unwrap() {
            let text = s.text_content(&row).unwrap();
            assert!(
                text.contains("Ana Silva"),
                "attached to the chosen client: {text}"
            );
        }
    });
}

#[test]
#[ignore = "needs a display, D-Bus and tauri-driver: run with `make e2e`"]
fn start_at_login_starts_hidden_a_launch_shows_it_and_quit_quits() {
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let entry = home.join(".config/autostart/attache.desktop");
    let desktop = Desktop::start(root.path());
    let home_env = home.to_str().unwrap().to_owned();
    let (driver, session) = launch_with(root.path(), &[("HOME", &home_env)]);
    let mut exec = String::new();
    with_screenshot(session, "desktop-settings.png", |s| {
        s.wait_for("the window", LONG, |s| {
            Ok(s.find_all("[data-testid=settings-button]")?.pop())
        })
        .unwrap();
        s.click(&s.find("[data-testid=settings-button]").unwrap())
            .unwrap();
        let toggle = s
            .wait_for("the settings", LONG, |s| {
                Ok(s.find_all("[data-testid=setting-start-at-login]")?.pop())
            })
            .unwrap();
        s.click(&toggle).unwrap();
        wait("the autostart entry", || entry.is_file().then_some(()));
        let text = std::fs::read_to_string(&entry).unwrap();
        exec = text
            .lines()
            .find_map(|l| l.strip_prefix("Exec="))
            .expect("an Exec line")
            .to_owned();
        assert!(exec.ends_with(" --hidden"), "starts hidden: {exec}");
        let valid = Command::new("desktop-file-validate")
            .arg(&entry)
            .output()
            .unwrap();
        assert!(
            valid.status.success(),
            "desktop-file-validate: {}",
            String::from_utf8_lossy(&valid.stdout)
        );
        // Off removes it; on again for the login below.
        s.click(&toggle).unwrap();
        wait("the entry removed", || (!entry.exists()).then_some(()));
        s.click(&toggle).unwrap();
        wait("the entry written again", || entry.is_file().then_some(()));
    });
    drop(driver);
    wait("the app to exit", || (!app_running()).then_some(()));

    // "Log in": run the entry's command. The tray appears, the window does not.
    // The dead instance's item is unreachable now: the dump answers once the new one registers.
    let program = exec.split(" --hidden").next().unwrap().trim_matches('"');
    let mut login = app_command(root.path())
        .env("HOME", &home)
        .arg("--hidden")
        .spawn()
        .unwrap();
    assert_eq!(
        program,
        workspace_binary("attache-desktop").to_str().unwrap()
    );
    desktop.wait_menu("the tray after login", |m| m.len() == 7);
    std::thread::sleep(Duration::from_secs(2));
    // Never shown: GTK has not even made its X window yet ("none"), or keeps it unmapped.
    assert_ne!(window_state(), "viewable", "started hidden");
    // Starting Attaché again shows the window (the tray may be invisible on stock GNOME).
    let again = app_command(root.path())
        .env("HOME", &home)
        .status()
        .unwrap();
    assert!(again.success());
    wait("the window shown", || {
        (window_state() == "viewable").then_some(())
    });
    // The tray's Quit ends it, window and all.
    desktop.click("Quit Attaché");
    let start = Instant::now();
    loop {
        if let Some(status) = login.try_wait().unwrap() {
            assert!(status.success(), "Quit exits cleanly: {status}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "Quit did not end the app"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
