//! Accounts against a real Secret Service (gnome-keyring-daemon in its own D-Bus session, see
//! `.ci/keyring.sh`), through the real `attache` binary, one process per step as a user runs it.
//! Ignored by default; `make keyring-test` (part of `make test`) runs them.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use attache_tests::keyring_lookup;
use attache_tests::{start_sandbox_process, workspace_binary, SandboxProcess};
use serde_json::Value;

const KEY: &str = "sandbox-key-7f3c9a2e51d84b06";
const SITE: &str = "0c9e4d6a-1b2f-4a3c-8d5e-6f7a8b9c0d1e";

type Server = SandboxProcess;

fn sandbox(data: &Path) -> Server {
    sandbox_with(data, &["--api-key", KEY, "--site-id", SITE])
}

/// `attache sandbox` in its own process, with `args`; waits for its address.
fn sandbox_with(data: &Path, args: &[&str]) -> Server {
    start_sandbox_process(data, args)
}

fn attache(home: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(workspace_binary("attache"))
        .args(args)
        .env("ATTACHE_HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn err(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "unexpectedly succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn files_containing(dir: &Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            hits.extend(files_containing(&path, needle));
        } else if let Ok(bytes) = std::fs::read(&path) {
            if bytes.windows(needle.len()).any(|w| w == needle) {
                hits.push(path);
            }
        }
    }
    hits
}

#[test]
#[ignore = "needs a Secret Service: run with `make keyring-test`"]
fn login_use_logout_with_the_real_keyring_and_no_secret_on_disk() {
    let data = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let server = sandbox(data.path());

    // Connect: checked with real calls, secret to the keyring only.
    let out = attache(
        home.path(),
        &[
            "login",
            "wix",
            "--name",
            "office",
            "--site-id",
            SITE,
            "--base-url",
            &server.base_url,
        ],
        Some(&format!("{KEY}\n")),
    );
    assert!(ok(&out).contains("Connected office"));
    assert_eq!(
        keyring_lookup("office").as_deref(),
        Some(KEY),
        "secret-tool sees the key"
    );

    // A second process reads it back from the keyring and works against the site.
    let contacts: Vec<Value> =
        serde_json::from_str(&ok(&attache(home.path(), &["contacts", "--json"], None))).unwrap();
    assert!(contacts.len() >= 12);
    let listed = ok(&attache(
        home.path(),
        &["attachments", "ana.silva@example.com"],
        None,
    ));
    assert!(listed.contains("Front elevation.jpg"));

    let accounts = ok(&attache(home.path(), &["accounts"], None));
    assert!(accounts.contains("* office"), "{accounts}");

    // Switch to the Demo site and back.
    ok(&attache(home.path(), &["use", "demo"], None));
    assert!(ok(&attache(home.path(), &["accounts"], None)).contains("* demo"));
    ok(&attache(home.path(), &["use", "office"], None));

    // Sign out: the secret leaves the keyring, the cached data goes, the app is on the Demo site.
    ok(&attache(home.path(), &["logout", "office"], None));
    assert_eq!(keyring_lookup("office"), None);
    assert!(ok(&attache(home.path(), &["accounts"], None)).contains("* demo"));
    assert!(!home.path().join("files/office").exists());

    // Nowhere under the app's folder (config, SQLite and its WAL, logs, cache) holds the key.
    let leaks = files_containing(home.path(), KEY.as_bytes());
    assert!(leaks.is_empty(), "the secret is on disk in {leaks:?}");
}

const ESPO_KEY: &str = "5d1c0ffee5d1c0ffee5d1c0ffee5d1c0";
const ESPO_SECRET: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a0";

fn espo_sandbox(data: &Path) -> Server {
    sandbox_with(data, &["--api-key", ESPO_KEY, "--hmac-secret", ESPO_SECRET])
}

#[test]
#[ignore = "needs a Secret Service: run with `make keyring-test`"]
fn an_espocrm_hmac_login_uploads_and_signs_out_with_no_secret_on_disk() {
    let data = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let server = espo_sandbox(data.path());

    // A wrong secret is refused by the server's check, in plain words, and saves nothing.
    let refused = err(&attache(
        home.path(),
        &[
            "login",
            "espo",
            "--hmac",
            "--name",
            "brokerage",
            "--url",
            &server.base_url,
        ],
        Some(&format!("{ESPO_KEY}\nnot-the-secret\n")),
    ));
    assert!(refused.contains("[UNAUTHENTICATED]"), "{refused}");
    assert!(refused.contains("API key"), "{refused}");
    assert_eq!(keyring_lookup("brokerage"), None);

    // Key then secret on stdin; both go to the keyring as one entry.
    let out = attache(
        home.path(),
        &[
            "login",
            "espo",
            "--hmac",
            "--name",
            "brokerage",
            "--url",
            &server.base_url,
        ],
        Some(&format!("{ESPO_KEY}\n{ESPO_SECRET}\n")),
    );
    assert!(ok(&out).contains("Connected brokerage"));
    assert_eq!(
        keyring_lookup("brokerage").as_deref(),
        Some(format!("{ESPO_KEY}:{ESPO_SECRET}").as_str())
    );
    let accounts = ok(&attache(home.path(), &["accounts"], None));
    assert!(accounts.contains("* brokerage  EspoHmac"), "{accounts}");

    // Back on the Demo site, `--account` still works on EspoCRM, from a second process.
    ok(&attache(home.path(), &["use", "demo"], None));
    let contacts: Vec<Value> = serde_json::from_str(&ok(&attache(
        home.path(),
        &["--account", "brokerage", "contacts", "--json"],
        None,
    )))
    .unwrap();
    assert!(contacts.len() >= 12);
    let deed = files.path().join("Deed of sale.pdf");
    std::fs::write(
        &deed,
        "%PDF-1.4\n% deed\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n",
    )
    .unwrap();
    ok(&attache(
        home.path(),
        &[
            "--account",
            "brokerage",
            "upload",
            "ana.silva@example.com",
            deed.to_str().unwrap(),
        ],
        None,
    ));
    let listed = ok(&attache(
        home.path(),
        &[
            "--account",
            "brokerage",
            "attachments",
            "ana.silva@example.com",
        ],
        None,
    ));
    assert!(listed.contains("Deed of sale.pdf"), "{listed}");
    let unknown = err(&attache(
        home.path(),
        &["--account", "nobody", "contacts"],
        None,
    ));
    assert!(unknown.contains("[NOT_FOUND]"), "{unknown}");

    ok(&attache(home.path(), &["logout", "brokerage"], None));
    assert_eq!(keyring_lookup("brokerage"), None);
    for secret in [ESPO_KEY, ESPO_SECRET] {
        let leaks = files_containing(home.path(), secret.as_bytes());
        assert!(leaks.is_empty(), "a secret is on disk in {leaks:?}");
    }
}

const APP_SECRET: &str = "wix-app-secret-3b9d1f70c2e84a56";

#[test]
#[ignore = "needs a Secret Service: run with `make keyring-test`"]
fn a_wix_app_login_mints_its_own_tokens_and_keeps_only_the_secret_in_the_keyring() {
    let data = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let server = sandbox_with(
        data.path(),
        &[
            "--app-id",
            "attache-app",
            "--app-secret",
            APP_SECRET,
            "--instance-id",
            "inst-42",
            "--app-token-ttl",
            "1h",
        ],
    );
    let login = |instance: &str, secret: &str| {
        attache(
            home.path(),
            &[
                "login",
                "wix-app",
                "--name",
                "office-app",
                "--app-id",
                "attache-app",
                "--instance-id",
                instance,
                "--base-url",
                &server.base_url,
            ],
            Some(&format!("{secret}\n")),
        )
    };
    let refused = err(&login("inst-42", "wrong"));
    assert!(refused.contains("app ID and secret"), "{refused}");
    let elsewhere = err(&login("inst-7", APP_SECRET));
    assert!(elsewhere.contains("instance ID"), "{elsewhere}");
    assert_eq!(keyring_lookup("office-app"), None, "nothing saved");

    assert!(ok(&login("inst-42", APP_SECRET)).contains("Connected office-app"));
    assert_eq!(keyring_lookup("office-app").as_deref(), Some(APP_SECRET));
    let contacts: Vec<Value> =
        serde_json::from_str(&ok(&attache(home.path(), &["contacts", "--json"], None))).unwrap();
    assert!(contacts.len() >= 12);
    let accounts = ok(&attache(home.path(), &["accounts"], None));
    assert!(accounts.contains("* office-app  WixApp"), "{accounts}");

    ok(&attache(home.path(), &["logout", "office-app"], None));
    assert_eq!(keyring_lookup("office-app"), None);
    let leaks = files_containing(home.path(), APP_SECRET.as_bytes());
    assert!(leaks.is_empty(), "the secret is on disk in {leaks:?}");
}

/// Locks the login collection over D-Bus, as the desktop does on screen lock.
fn lock_keyring() {
    let out = Command::new("gdbus")
        .args([
            "call",
            "--session",
            "--dest",
            "org.freedesktop.secrets",
            "--object-path",
            "/org/freedesktop/secrets",
            "--method",
            "org.freedesktop.Secret.Service.Lock",
            "[objectpath '/org/freedesktop/secrets/collection/login']",
        ])
        .output()
        .expect("gdbus (libglib2.0-bin) is installed by make deps");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Unlocks it again the way a login does: the daemon restarted with the password on stdin
/// (no prompt can show here, there is no display).
fn unlock_keyring() {
    let mut daemon = Command::new("gnome-keyring-daemon")
        .args([
            "--replace",
            "--components=secrets",
            "--daemonize",
            "--unlock",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    daemon
        .stdin
        .take()
        .unwrap()
        .write_all(b"attache-ci")
        .unwrap();
    daemon.wait().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
}

#[test]
#[ignore = "needs a Secret Service: run with `make keyring-test`"]
fn a_locked_keyring_is_a_clear_error_and_never_a_fallback_to_a_file() {
    let data = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let server = sandbox(data.path());
    let login = |name: &str| {
        attache(
            home.path(),
            &[
                "login",
                "wix",
                "--name",
                name,
                "--site-id",
                SITE,
                "--base-url",
                &server.base_url,
            ],
            Some(&format!("{KEY}\n")),
        )
    };
    ok(&login("office"));
    lock_keyring();
    let result = std::panic::catch_unwind(|| {
        // Reading the secret: refused with the remedy, fast (no prompt can be answered).
        let started = std::time::Instant::now();
        let locked = err(&attache(home.path(), &["contacts"], None));
        assert!(locked.contains("[KEYRING_LOCKED]"), "{locked}");
        assert!(locked.contains("Unlock it"), "{locked}");
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        // Connecting another account while locked saves nothing, anywhere.
        let refused = err(&login("branch"));
        assert!(refused.contains("[KEYRING_LOCKED]"), "{refused}");
        let accounts = ok(&attache(home.path(), &["accounts"], None));
        assert!(!accounts.contains("branch"), "{accounts}");
        let leaks = files_containing(home.path(), KEY.as_bytes());
        assert!(leaks.is_empty(), "the key is on disk in {leaks:?}");
    });
    unlock_keyring();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    // Once unlocked, the same account works again.
    let contacts: Vec<Value> =
        serde_json::from_str(&ok(&attache(home.path(), &["contacts", "--json"], None))).unwrap();
    assert!(contacts.len() >= 12);
    ok(&attache(home.path(), &["logout", "office"], None));
}

#[test]
#[ignore = "needs a Secret Service: run with `make keyring-test`"]
fn a_failed_check_saves_nothing_and_says_why() {
    let data = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let server = sandbox(data.path());

    let wrong_key = err(&attache(
        home.path(),
        &[
            "login",
            "wix",
            "--name",
            "bad",
            "--site-id",
            SITE,
            "--base-url",
            &server.base_url,
        ],
        Some("not-the-key\n"),
    ));
    assert!(
        wrong_key.contains("[UNAUTHENTICATED]") && wrong_key.contains("refused the API key"),
        "{wrong_key}"
    );

    let wrong_site = err(&attache(
        home.path(),
        &[
            "login",
            "wix",
            "--name",
            "bad",
            "--site-id",
            "11111111-2222-4333-8444-555555555555",
            "--base-url",
            &server.base_url,
        ],
        Some(&format!("{KEY}\n")),
    ));
    assert!(
        wrong_site.contains("no site with that site ID"),
        "{wrong_site}"
    );

    let unreachable = err(&attache(
        home.path(),
        &[
            "login",
            "wix",
            "--name",
            "bad",
            "--site-id",
            SITE,
            "--base-url",
            "http://127.0.0.1:9",
        ],
        Some(&format!("{KEY}\n")),
    ));
    assert!(
        unreachable.contains("[UNAVAILABLE]")
            && unreachable.contains(
                "127.0.0.1 could not be reached: nothing answers at that address and port"
            ),
        "{unreachable}"
    );

    let plain_http = err(&attache(
        home.path(),
        &[
            "login",
            "wix",
            "--name",
            "bad",
            "--site-id",
            SITE,
            "--base-url",
            "http://crm.example.com",
        ],
        Some(&format!("{KEY}\n")),
    ));
    assert!(
        plain_http.contains("[INVALID_INPUT]") && plain_http.contains("unencrypted"),
        "{plain_http}"
    );

    assert_eq!(keyring_lookup("bad"), None);
    assert!(ok(&attache(home.path(), &["accounts"], None)).contains("* demo"));
    assert!(!ok(&attache(home.path(), &["accounts"], None)).contains("bad"));
}

#[test]
#[ignore = "needs a Secret Service: run with `make keyring-test`"]
fn no_keyring_is_a_clear_error_never_a_file() {
    let data = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let server = sandbox(data.path());
    // A session bus address with nothing behind it: no Secret Service.
    let out = Command::new(workspace_binary("attache"))
        .args([
            "login",
            "wix",
            "--name",
            "x",
            "--site-id",
            SITE,
            "--base-url",
            &server.base_url,
        ])
        .env("ATTACHE_HOME", home.path())
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .stdin(Stdio::piped())
        .output()
        .unwrap();
    let message = err(&out);
    assert!(
        message.contains("[KEYRING_UNAVAILABLE]") && message.contains("start one"),
        "{message}"
    );
    assert!(files_containing(home.path(), KEY.as_bytes()).is_empty());
    assert!(!home.path().join("config.json").exists(), "nothing saved");
}
