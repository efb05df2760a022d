//! End-to-end: the real `attache-desktop` binary in a real window (under Xvfb in CI), driven
//! through tauri-driver + WebKitWebDriver. Asserts on what is on screen and saves a screenshot
//! to `artifacts/`.
//!
//! Ignored by default because it needs a display, a D-Bus session and tauri-driver; `make e2e`
//! (part of `make test`) runs it under `dbus-run-session -- xvfb-run`.

use std::time::Duration;

use attache_tests::keyring_lookup;
use attache_tests::webdriver::Session;
use attache_tests::window::*;
use attache_tests::{repo_root, start_sandbox_process};
use serde_json::Value;

#[test]
#[ignore = "needs a display and tauri-driver: run with `make e2e`"]
fn demo_site_in_the_real_window() {
    let root = tempfile::tempdir().unwrap();
    let opened_log = install_default_opener(root.path());
    let (_driver, session) = launch(root.path());
    with_screenshot(session, "e2e-demo-site.png", |s| {
        scenario(s, &root.path().join("attache"), &opened_log)
    });
}

#[test]
#[ignore = "needs a display and tauri-driver: run with `make e2e`"]
fn a_file_dropped_on_a_contact_appears_in_its_grid() {
    let root = tempfile::tempdir().unwrap();
    let (_driver, session) = launch(root.path());
    // A real file on disk, as the file manager would hand over.
    let file = root.path().join("Inspection report – 12 Harbor Lane.pdf");
    std::fs::write(
        &file,
        attache_sandbox::pdf::document(
            "Inspection report",
            "12 Harbor Lane",
            &["Roof: good."],
            &["Marcus Okafor"],
        ),
    )
    .unwrap();
    let bad = root.path().join("notes.txt");
    std::fs::write(&bad, "not a document Wix accepts").unwrap();
    with_screenshot(session, "e2e-drop-upload.png", |s| {
        let long = Duration::from_secs(90);
        open_contact(s, "Marcus Okafor");
        let before = count(s, "[data-testid=attachment-card]");

        drop_on_open_contact(s, &[&file, &bad]);
        wait_attached(s, "Inspection report");
        let notice = s
            .text_content(&s.find("[data-testid=notice]").unwrap())
            .unwrap();
        assert!(
            notice.contains("notes.txt"),
            "the refused file is named with its reason: {notice}"
        );
        s.wait_for("the new document in Marcus's grid", long, |s| {
            let names: Vec<String> = s
                .find_all("[data-testid=attachment-name]")?
                .iter()
                .map(|e| s.text_content(e))
                .collect::<Result<_, _>>()?;
            Ok(
                (names.iter().any(|n| n.contains("Inspection report"))
                    && names.len() == before + 1)
                    .then_some(()),
            )
        })
        .unwrap();
    });
}

#[test]
#[ignore = "needs a display and tauri-driver: run with `make e2e`"]
fn a_wix_webhook_refreshes_the_open_contact_live() {
    let root = tempfile::tempdir().unwrap();
    let sb = attache_tests::start_sandbox_process(&root.path().join("site"), &[]);
    let http = reqwest::blocking::Client::new();
    let key = http
        .get(format!("{}/_admin/webhooks/public-key", sb.base_url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let key_file = root.path().join("app-key.pem");
    std::fs::write(&key_file, key).unwrap();
    // The receiver the app serves, configured as a user would in config.json.
    let hook = format!("127.0.0.1:{}", free_port());
    let home = root.path().join("attache");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        home.join("config.json"),
        serde_json::json!({"webhooks": {"addr": hook, "publicKeyFile": key_file}}).to_string(),
    )
    .unwrap();
    http.put(format!("{}/_admin/webhooks", sb.base_url))
        .json(&serde_json::json!({"callbackUrl": format!("http://{hook}/")}))
        .send()
        .unwrap();
    let (_driver, session) = launch_with(root.path(), &[("ATTACHE_DEMO_URL", &sb.base_url)]);
    with_screenshot(session, "e2e-webhook-refresh.png", |s| {
        open_contact(s, "Ana Silva");
        // Someone else attaches a file to Ana on the site (not through this app).
        let wix = |path: &str| {
            http.request(reqwest::Method::GET, format!("{}{path}", sb.base_url))
                .header("Authorization", attache_sandbox::DEMO_API_KEY)
                .header("wix-site-id", attache_sandbox::DEMO_SITE_ID)
        };
        let contacts: Value = wix("/contacts/v4/contacts?paging.limit=100")
            .send()
            .unwrap()
            .json()
            .unwrap();
        let ana = contacts["contacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["primaryInfo"]["email"] == "ana.silva@example.com")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let url: Value = http
            .post(format!("{}/contacts/v4/attachments/{ana}/upload-url", sb.base_url))
            .header("Authorization", attache_sandbox::DEMO_API_KEY)
            .header("wix-site-id", attache_sandbox::DEMO_SITE_ID)
            .json(&serde_json::json!({"contactId": ana, "fileName": "Appraisal by webhook.pdf", "mimeType": "application/pdf"}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let put = http
            .put(url["uploadUrl"].as_str().unwrap())
            .header("Content-Type", "application/pdf")
            .body(attache_sandbox::pdf::document(
                "Appraisal",
                "Ana Silva",
                &["Value: fair."],
                &[],
            ))
            .send()
            .unwrap();
        assert!(put.status().is_success());
        // Well before the 60-second poll: only the webhook can have told the window.
        s.wait_for("the new file in Ana's grid", Duration::from_secs(20), |s| {
            for name in s.find_all("[data-testid=attachment-name]")? {
                if s.text_content(&name)?.contains("Appraisal by webhook") {
                    return Ok(Some(()));
                }
            }
            Ok(None)
        })
        .unwrap();
    });
}

#[test]
#[ignore = "needs a display and tauri-driver: run with `make e2e`"]
fn files_dropped_on_an_espocrm_contact_appear_in_its_grid_with_thumbnails() {
    let root = tempfile::tempdir().unwrap();
    // The Demo site opened as EspoCRM, as "Use" on "Demo site as EspoCRM" leaves it.
    let home = root.path().join("attache");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        home.join("config.json"),
        r#"{"current": "demo-espo", "accounts": []}"#,
    )
    .unwrap();
    let opened_log = install_default_opener(root.path());
    let (_driver, session) = launch(root.path());
    let report = root.path().join("Survey – 4 Elm Street.pdf");
    std::fs::write(
        &report,
        attache_sandbox::pdf::document(
            "Survey",
            "4 Elm Street",
            &["Boundary: fenced."],
            &["Ana Silva"],
        ),
    )
    .unwrap();
    let photo = root.path().join("Garden view.jpg");
    image::RgbImage::from_fn(1200, 900, |x, y| {
        image::Rgb([(x / 5) as u8, (y / 4) as u8, 120])
    })
    .save(&photo)
    .unwrap();
    // A program whose name reads "Invoiceexe.pdf" on screen (a right-to-left override): EspoCRM
    // takes any type, so it is attached like the rest, but a click must never run it.
    let program = root.path().join("Invoice\u{202E}fdp.exe");
    std::fs::write(&program, b"MZ\x90\x00 a Windows program").unwrap();
    with_screenshot(session, "e2e-espo-drop.png", |s| {
        s.wait_for(
            "the EspoCRM account to be shown as current",
            Duration::from_secs(60),
            |s| {
                let Ok(account) = s.find("[data-testid=account]") else {
                    return Ok(None);
                };
                Ok(s.text_content(&account)?.contains("EspoCRM").then_some(()))
            },
        )
        .unwrap();
        open_contact(s, "Ana Silva");
        let before = count(s, "[data-testid=attachment-card]");
        drop_on_open_contact(s, &[&report, &photo, &program]);
        wait_attached(s, "Survey");
        wait_attached(s, "Garden view");
        s.wait_for(
            "both new files in Ana's grid, with thumbnails",
            Duration::from_secs(90),
            |s| {
                let names: Vec<String> = s
                    .find_all("[data-testid=attachment-name]")?
                    .iter()
                    .map(|e| s.text_content(e))
                    .collect::<Result<_, _>>()?;
                let loaded = s.execute(
                    r#"return [...document.querySelectorAll('[data-testid=attachment-card] img')]
                    .filter(i => i.complete && i.naturalWidth > 0).length"#,
                    vec![],
                )?;
                Ok((names.iter().any(|n| n.contains("Survey"))
                    && names.iter().any(|n| n.contains("Garden view"))
                    && names.iter().any(|n| n == "Invoicefdp.exe")
                    && names.len() == before + 3
                    && loaded.as_u64().unwrap_or(0) >= 2)
                    .then_some(()))
            },
        )
        .unwrap();

        // "Clear finished" empties the tray (through the real command), uncovering the grid.
        s.click(&s.find("[data-testid=upload-clear]").unwrap())
            .unwrap();
        s.wait_for("the tray cleared", Duration::from_secs(30), |s| {
            Ok((count(s, "[data-testid=upload-row]") == 0).then_some(()))
        })
        .unwrap();

        // Open on the program: refused with the reason, never handed to the desktop.
        let open = s
            .find(r#"[data-testid=attachment-card][data-file-name="Invoicefdp.exe"] [data-testid=open]"#)
            .unwrap();
        s.execute(
            "arguments[0].scrollIntoView({block: 'center'})",
            vec![open.as_arg()],
        )
        .unwrap();
        s.click(&open).unwrap();
        let notice = s
            .wait_for(
                "the refusal to open a program",
                Duration::from_secs(30),
                |s| {
                    let Ok(notice) = s.find("[data-testid=notice]") else {
                        return Ok(None);
                    };
                    Ok(Some(s.text_content(&notice)?))
                },
            )
            .unwrap();
        assert!(
            notice.starts_with("Not opened, to keep this computer safe. (Invoicefdp.exe is a program or script (.exe)"),
            "{notice}"
        );
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(
            std::fs::read_to_string(&opened_log).unwrap_or_default(),
            "",
            "nothing was handed to the desktop's opener"
        );
    });
}

#[test]
#[ignore = "needs a display and tauri-driver: run with `make e2e`"]
fn a_file_written_into_a_watched_folder_is_filed_and_shown() {
    let root = tempfile::tempdir().unwrap();
    // The inbox folder is set before launch, as a user who added it last week would have it.
    let inbox = root.path().join("Scans");
    std::fs::create_dir_all(&inbox).unwrap();
    let home = root.path().join("attache");
    std::fs::create_dir_all(&home).unwrap();
    let config = serde_json::json!({
        "current": null,
        "accounts": [],
        "inbox": { "folders": [{ "path": inbox }], "after": "move", "rules": [] }
    });
    std::fs::write(home.join("config.json"), config.to_string()).unwrap();
    let (_driver, session) = launch(root.path());
    with_screenshot(session, "e2e-inbox.png", |s| {
        let long = Duration::from_secs(90);
        let marcus = s
            .wait_for("Marcus Okafor in the list", long, |s| {
                for row in s.find_all("[data-testid=contact-row]")? {
                    if s.text_content(&row)?.contains("Marcus Okafor") {
                        return Ok(Some(row));
                    }
                }
                Ok(None)
            })
            .unwrap();
        s.click(&marcus).unwrap();
        s.wait_for("Marcus's documents", long, |s| {
            Ok((count(s, "[data-testid=attachment-card]") > 0).then_some(()))
        })
        .unwrap();

        // The scanner writes a file named after the client into the watched folder.
        let name = "Marcus Okafor - final walkthrough.pdf";
        std::fs::write(
            inbox.join(name),
            attache_sandbox::pdf::document(
                "Final walkthrough",
                "12 Harbor Lane",
                &["All clear."],
                &["Marcus Okafor"],
            ),
        )
        .unwrap();
        s.wait_for("the scan in Marcus's grid", long, |s| {
            let names: Vec<String> = s
                .find_all("[data-testid=attachment-name]")?
                .iter()
                .map(|e| s.text_content(e))
                .collect::<Result<_, _>>()?;
            Ok(names
                .iter()
                .any(|n| n.contains("final walkthrough"))
                .then_some(()))
        })
        .unwrap();

        s.click(&s.find("[data-testid=inbox-button]").unwrap())
            .unwrap();
        s.wait_for("the scan listed as filed in the Inbox panel", long, |s| {
            for row in s.find_all("[data-testid=inbox-filed]")? {
                let text = s.text_content(&row)?;
                if text.contains("final walkthrough") && text.contains("Marcus Okafor") {
                    return Ok(Some(()));
                }
            }
            Ok(None)
        })
        .unwrap();
        assert!(
            inbox
                .join("Filed")
                .join("Marcus Okafor")
                .join(name)
                .is_file(),
            "moved to Filed/Marcus Okafor/"
        );
    });
}

#[test]
#[ignore = "needs a display, tauri-driver and a Secret Service: run with `make e2e`"]
fn connect_a_wix_site_see_its_contacts_and_sign_out() {
    const KEY: &str = "e2e-key-5b1d0c7e";
    const SITE: &str = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    let root = tempfile::tempdir().unwrap();
    let site_data = tempfile::tempdir().unwrap();
    let server = start_sandbox_process(site_data.path(), &["--api-key", KEY, "--site-id", SITE]);
    let base_url = server.base_url.clone();

    let (_driver, session) = launch(root.path());
    with_screenshot(session, "e2e-wix-account.png", |s| {
        let long = Duration::from_secs(90);
        s.wait_for("the demo banner", long, |s| {
            Ok(s.find_all("[data-testid=demo-banner]")?.into_iter().next())
        })
        .unwrap();
        s.click(&s.find("[data-testid=account]").unwrap()).unwrap();
        let fill = |css: &str, text: &str| {
            let input = s
                .wait_for(css, long, |s| Ok(s.find_all(css)?.into_iter().next()))
                .unwrap();
            s.clear(&input).unwrap();
            s.send_keys(&input, text).unwrap();
        };
        fill("[data-testid=wix-name]", "Bayview Realty");
        fill("[data-testid=wix-site-id]", SITE);
        fill("[data-testid=wix-api-key]", KEY);
        fill("[data-testid=wix-base-url]", &base_url);
        s.click(&s.find("[data-testid=wix-connect]").unwrap())
            .unwrap();
        s.wait_for("the new account in the list", long, |s| {
            if let Some(e) = s
                .find_all("[data-testid=accounts-error]")?
                .into_iter()
                .next()
            {
                panic!("connecting failed: {}", s.text_content(&e)?);
            }
            Ok((count(s, "[data-testid=account-item]") == 1).then_some(()))
        })
        .unwrap();
        assert_eq!(
            keyring_lookup("Bayview Realty").as_deref(),
            Some(KEY),
            "the key is in the keyring"
        );

        // Close the dialog; the window is now on the Wix site: no demo banner, its contacts.
        s.execute(
            "window.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape'}));",
            vec![],
        )
        .unwrap();
        wait_for_contacts_of(s, "Bayview Realty");

        std::fs::write(
            repo_root().join("artifacts/e2e-wix-connected.png"),
            s.screenshot().unwrap(),
        )
        .unwrap();

        // A client's documents seen on this account leave copies: a rendered PDF page.
        open_contact(s, "Ana Silva");
        s.wait_for("a PDF page thumbnail", long, |s| {
            let v = s.execute(
                "return [...document.querySelectorAll('[data-testid=attachment-thumbnail]')] \
                   .filter(img => img.dataset.thumbKind === 'page' && img.naturalWidth > 0).length;",
                vec![],
            )?;
            Ok((v.as_u64().unwrap_or(0) >= 1).then_some(()))
        })
        .unwrap();
        let home = root.path().join("attache");
        let thumbs = home.join("thumbs/Bayview Realty");
        assert!(thumbs.is_dir(), "the account's thumbnails are kept apart");

        // Sign out: back on the Demo site, the key gone from the keyring.
        s.click(&s.find("[data-testid=account]").unwrap()).unwrap();
        let sign_out = s
            .wait_for("sign out", long, |s| {
                Ok(s.find_all("[data-testid=sign-out]")?.into_iter().next())
            })
            .unwrap();
        s.click(&sign_out).unwrap();
        s.wait_for("the account to be gone", long, |s| {
            Ok((count(s, "[data-testid=account-item]") == 0).then_some(()))
        })
        .unwrap();
        assert_eq!(
            keyring_lookup("Bayview Realty"),
            None,
            "sign-out removed the key"
        );
        for kept in ["thumbs", "files", "previews", "converted"] {
            let dir = home.join(kept).join("Bayview Realty");
            assert!(!dir.exists(), "sign-out left {}", dir.display());
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&home).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "the app's folder is private to the user");
        s.execute(
            "window.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape'}));",
            vec![],
        )
        .unwrap();
        s.wait_for("the demo banner again", long, |s| {
            Ok(s.find_all("[data-testid=demo-banner]")?.into_iter().next())
        })
        .unwrap();
    });
}

/// Opens the Accounts dialog, fills one login form (`tab`, then each `(field, text)`), submits
/// it with `submit` and waits until the dialog lists `accounts` saved accounts. A refusal by the
/// window's permissions or the core shows in `accounts-error` and fails the test with its text.
fn connect_through_form(
    s: &Session,
    tab: &str,
    fields: &[(&str, &str)],
    submit: &str,
    accounts: usize,
) {
    let long = Duration::from_secs(90);
    s.click(&s.find("[data-testid=account]").unwrap()).unwrap();
    let tab = s
        .wait_for(tab, long, |s| Ok(s.find_all(tab)?.into_iter().next()))
        .unwrap();
    s.click(&tab).unwrap();
    for (css, text) in fields {
        let input = s
            .wait_for(css, long, |s| Ok(s.find_all(css)?.into_iter().next()))
            .unwrap();
        if text.is_empty() {
            s.click(&input).unwrap(); // a checkbox
        } else {
            s.clear(&input).unwrap();
            s.send_keys(&input, text).unwrap();
        }
    }
    s.click(&s.find(submit).unwrap()).unwrap();
    s.wait_for("the new account in the list", long, |s| {
        if let Some(e) = s
            .find_all("[data-testid=accounts-error]")?
            .into_iter()
            .next()
        {
            panic!(
                "connecting through {submit} failed: {}",
                s.text_content(&e)?
            );
        }
        Ok((count(s, "[data-testid=account-item]") == accounts).then_some(()))
    })
    .unwrap();
    s.execute(
        "window.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape'}));",
        vec![],
    )
    .unwrap();
}

/// Waits until the window is on `account` and lists the Demo site's 14 contacts.
fn wait_for_contacts_of(s: &Session, account: &str) {
    s.wait_for(account, Duration::from_secs(90), |s| {
        let shown = s.text_content(&s.find("[data-testid=account]")?)?;
        let total = s.text_content(&s.find("[data-testid=contact-count]")?)?;
        Ok((shown.contains(account)
            && total.trim() == "14 contacts"
            && count(s, "[data-testid=demo-banner]") == 0)
            .then_some(()))
    })
    .unwrap();
}

/// The Wix app and EspoCRM login forms go through the window's real commands (which Tauri's
/// permissions once refused) to the real core and keyring: each login is checked against the
/// site, its secret lands in the Secret Service, and the window then shows that site's contacts.
#[test]
#[ignore = "needs a display, tauri-driver and a Secret Service: run with `make e2e`"]
fn the_wix_app_and_espocrm_login_forms_connect_from_the_window() {
    const KEY: &str = "0f3c2a9be1d84c5f";
    const HMAC: &str = "e2e-hmac-9d41";
    const APP_ID: &str = "3e5b1a70-2f4d-4c1e-9a8b-6d7c5e4f3a21";
    const APP_SECRET: &str = "e2e-app-secret-77c2";
    const INSTANCE: &str = "9c8b7a65-4321-4fed-8cba-0123456789ab";
    let root = tempfile::tempdir().unwrap();
    let site_data = tempfile::tempdir().unwrap();
    let server = start_sandbox_process(
        site_data.path(),
        &[
            "--api-key",
            KEY,
            "--hmac-secret",
            HMAC,
            "--app-id",
            APP_ID,
            "--app-secret",
            APP_SECRET,
            "--instance-id",
            INSTANCE,
        ],
    );
    let base_url = server.base_url.clone();

    let (_driver, session) = launch(root.path());
    with_screenshot(session, "e2e-app-and-espo-logins.png", |s| {
        s.wait_for("the demo banner", Duration::from_secs(90), |s| {
            Ok(s.find_all("[data-testid=demo-banner]")?.into_iter().next())
        })
        .unwrap();

        connect_through_form(
            s,
            "[data-testid=tab-wix-app]",
            &[
                ("[data-testid=app-name]", "Bayview app"),
                ("[data-testid=app-id]", APP_ID),
                ("[data-testid=app-instance-id]", INSTANCE),
                ("[data-testid=app-secret]", APP_SECRET),
                ("[data-testid=app-base-url]", &base_url),
            ],
            "[data-testid=app-connect]",
            1,
        );
        assert_eq!(keyring_lookup("Bayview app").as_deref(), Some(APP_SECRET));
        wait_for_contacts_of(s, "Bayview app");

        connect_through_form(
            s,
            "[data-testid=tab-espo]",
            &[
                ("[data-testid=espo-name]", "Bayview Espo"),
                ("[data-testid=espo-url]", &base_url),
                ("[data-testid=espo-api-key]", KEY),
            ],
            "[data-testid=espo-connect]",
            2,
        );
        assert_eq!(keyring_lookup("Bayview Espo").as_deref(), Some(KEY));
        wait_for_contacts_of(s, "Bayview Espo");

        connect_through_form(
            s,
            "[data-testid=tab-espo]",
            &[
                ("[data-testid=espo-name]", "Bayview HMAC"),
                ("[data-testid=espo-url]", &base_url),
                ("[data-testid=espo-api-key]", KEY),
                ("[data-testid=espo-hmac]", ""),
                ("[data-testid=espo-secret]", HMAC),
            ],
            "[data-testid=espo-connect]",
            3,
        );
        // An HMAC login keeps key and secret in one entry.
        assert_eq!(
            keyring_lookup("Bayview HMAC").as_deref(),
            Some(format!("{KEY}:{HMAC}").as_str())
        );
        wait_for_contacts_of(s, "Bayview HMAC");

        // A wrong secret is refused with the CRM's reason, and nothing is saved.
        s.click(&s.find("[data-testid=account]").unwrap()).unwrap();
        let tab = s
            .wait_for("the Wix app tab", Duration::from_secs(20), |s| {
                Ok(s.find_all("[data-testid=tab-wix-app]")?.into_iter().next())
            })
            .unwrap();
        s.click(&tab).unwrap();
        for (css, text) in [
            ("[data-testid=app-name]", "Wrong secret"),
            ("[data-testid=app-id]", APP_ID),
            ("[data-testid=app-instance-id]", INSTANCE),
            ("[data-testid=app-secret]", "not-the-secret"),
            ("[data-testid=app-base-url]", base_url.as_str()),
        ] {
            let input = s.find(css).unwrap();
            s.clear(&input).unwrap();
            s.send_keys(&input, text).unwrap();
        }
        s.click(&s.find("[data-testid=app-connect]").unwrap())
            .unwrap();
        let error = s
            .wait_for("the refusal", Duration::from_secs(30), |s| {
                Ok(s.find_all("[data-testid=accounts-error]")?
                    .into_iter()
                    .next())
            })
            .unwrap();
        let text = s.text_content(&error).unwrap();
        assert!(
            text.contains("Wix refused the app's credentials"),
            "refused by the site with its reason, not by the window's permissions: {text}"
        );
        assert_eq!(count(s, "[data-testid=account-item]"), 3);
        assert_eq!(keyring_lookup("Wrong secret"), None);
    });
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
    assert!(s
        .text_content(&banner)
        .unwrap()
        .contains("Demo site — local, nothing leaves this computer"));

    // Contacts are listed (name, e-mail, phone).
    let rows = s
        .wait_for("at least 12 contacts", long, |s| {
            let n = count(s, "[data-testid=contact-row]");
            Ok((n >= 12).then_some(n))
        })
        .unwrap();
    assert!(rows >= 12, "{rows} contact rows");
    let all_text = s
        .text_content(&s.find("[data-testid=contact-list]").unwrap())
        .unwrap();
    for expected in [
        "Ana Silva",
        "ana.silva@example.com",
        "+1 415 555 0132",
        "Marcus Okafor",
    ] {
        assert!(
            all_text.contains(expected),
            "contact list lacks {expected:?}:\n{all_text}"
        );
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
        Ok(s.text_content(&rows[0])?
            .contains("Ana Silva")
            .then_some(()))
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
    s.wait_for("the full list again", short, |s| {
        Ok((count(s, "[data-testid=contact-row]") >= 12).then_some(()))
    })
    .unwrap();

    // A contact's attachments render: an image thumbnail that really loaded, a document icon.
    let ana = s
        .find_all("[data-testid=contact-row]")
        .unwrap()
        .into_iter()
        .find(|r| {
            s.text_content(r)
                .map(|t| t.contains("Ana Silva"))
                .unwrap_or(false)
        })
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
    assert!(
        names.iter().any(|n| n == "Front elevation.jpg"),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n.ends_with(".pdf")), "{names:?}");
    // Photos show the CRM's preview; PDFs their first page, rendered by the app.
    let loaded: Value = s
        .wait_for("photo and PDF page thumbnails to load", long, |s| {
            let v = s.execute(
                "return [...document.querySelectorAll('[data-testid=attachment-thumbnail]')] \
                   .map(img => ({kind: img.dataset.thumbKind, w: img.naturalWidth, h: img.naturalHeight}));",
                vec![],
            )?;
            let shown = |kind: &str| {
                v.as_array().map_or(0, |a| {
                    a.iter().filter(|i| i["kind"] == kind && i["w"].as_u64().unwrap_or(0) > 0).count()
                })
            };
            Ok((shown("image") >= 2 && shown("page") >= 1).then_some(v))
        })
        .unwrap();
    let page = loaded
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "page")
        .unwrap();
    assert!(
        page["h"].as_u64().unwrap() > page["w"].as_u64().unwrap(),
        "a portrait first page: {page}"
    );
    let doc_icons = count(s, "[data-kind=document] [data-testid=file-icon]");
    assert!(
        doc_icons >= 1,
        "other documents show a type icon ({doc_icons})"
    );
    let sizes = s
        .text_content(&s.find("[data-testid=attachment-grid]").unwrap())
        .unwrap();
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
    assert!(std::fs::read_to_string(&downloaded)
        .unwrap()
        .starts_with("offer,amount"));
    let opened = s
        .wait_for("the default application to be launched", short, |_| {
            Ok(std::fs::read_to_string(opened_log)
                .ok()
                .filter(|t| !t.is_empty()))
        })
        .unwrap();
    assert_eq!(
        opened.trim(),
        downloaded.to_str().unwrap(),
        "opened the cached copy"
    );
    assert_eq!(
        count(s, "[data-testid=notice]"),
        0,
        "opening reported an error"
    );
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
    std::fs::write(
        &script,
        format!("#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    // The last two: a Windows program, should Attaché ever hand one over (it must not).
    let types = [
        "text/csv",
        "application/pdf",
        "image/jpeg",
        "application/x-msdownload",
        "application/x-ms-dos-executable",
    ];
    std::fs::write(
        apps.join("attache-e2e-opener.desktop"),
        format!(
            "[Desktop Entry]\nType=Application\nName=E2E opener\nExec={} %f\nMimeType={};\nNoDisplay=true\n",
            script.display(),
            types.join(";")
        ),
    )
    .unwrap();
    let defaults: String = types
        .iter()
        .map(|t| format!("{t}=attache-e2e-opener.desktop\n"))
        .collect();
    std::fs::write(
        config.join("mimeapps.list"),
        format!("[Default Applications]\n{defaults}"),
    )
    .unwrap();
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
