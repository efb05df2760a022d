//! `make soak`: the promise "never lost, never twice, nothing leaked", held under everything at
//! once for a while (3 minutes by default; `SOAK_SECS` sets it, `SOAK_SEED` replays a run).
//!
//! On both CRMs (the Demo site through the Wix wire and through the EspoCRM wire, one sandbox
//! in its own process): files keep arriving in two watched folders per CRM (one watched by
//! events, one polled), some are overwritten while they wait, links to private files are thrown
//! in; batches are dropped on clients (`attache upload`); the sandbox injects 5xx, 429 with
//! Retry-After, cut uploads, lost answers, expired upload URLs, stalled uploads, list lag and
//! renamed files
//! (switched at random); the `attache watch` and `attache upload` processes are SIGKILLed at
//! random and restarted. Then the faults stop, the work is finished (`attache watch --once`, the
//! batches dropped again, as a user would), and the invariants are checked over the CRM and the
//! disk; the figures are printed.
//!
//! The window is not in the soak: it runs the same lifecycle as `attache watch` (one `Work`
//! for both front ends), and its flows have their own real-window tests.

#![cfg(unix)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use attache_core::normalize::file_name_key;
use attache_core::CrmBackend;
use attache_tests::fixtures::demo_wix;
use attache_tests::{attache_logged, start_sandbox_process, workspace_binary, Killed};

const CONTACTS: [(&str, &str); 3] = [
    ("Hiroshi Tanaka", "h.tanaka@example.jp"),
    ("Ana Silva", "ana.silva@example.com"),
    ("Chloé Dubois", "chloe.dubois@example.fr"),
];

/// Every fault the sandbox can inject, at rates that leave most requests alone.
fn faults(rename: &str) -> serde_json::Value {
    serde_json::json!({
        "latencyMs": 5,
        "errorRate": 0.04,
        "throttleRate": 0.03,
        "resetRate": 0.05,
        "lostResponseRate": 0.05,
        "expiredUrlRate": 0.03,
        "uploadUrlTtlMs": 20_000,
        "listLagMs": 300,
        "stallRate": 0.02,
        "rename": rename,
    })
}

/// One CRM's side of the soak.
struct Side {
    crm: &'static str,
    /// Watched by the app itself (`attache-desktop`, in the virtual display `make soak` opens)
    /// rather than `attache watch`.
    app: bool,
    account: &'static str,
    home: PathBuf,
    /// Watched by events, and polled.
    inboxes: [PathBuf; 2],
    drops: PathBuf,
    watch: Option<Killed>,
    next_kill: Instant,
    uploads: Vec<(Killed, Instant)>,
    /// Every path written in the inboxes, with each version's bytes (last is current).
    written: BTreeMap<PathBuf, Vec<Vec<u8>>>,
    links: Vec<(PathBuf, PathBuf, Vec<u8>)>,
    batches: Vec<(usize, Vec<PathBuf>)>,
    kills: usize,
}

impl Side {
    fn command(&self, url: &str) -> Command {
        let mut cmd = attache_logged(&self.home, url);
        cmd.env("ATTACHE_ACCOUNT", self.account)
            .env("ATTACHE_INBOX_CLAIM_LEASE_MS", "3000")
            // Stalled uploads are given up after 2 s, not a minute.
            .env("ATTACHE_STALL_TIMEOUT_MS", "2000");
        cmd
    }

    fn start_watch(&mut self, url: &str) {
        let cmd = if self.app {
            let mut cmd = Command::new(workspace_binary("attache-desktop"));
            let log = self.home.join(format!("app-log-{}.txt", self.kills));
            cmd.env("ATTACHE_HOME", &self.home)
                .env("ATTACHE_DEMO_URL", url)
                .env("ATTACHE_LOG", "info")
                .env("ATTACHE_INBOX_CLAIM_LEASE_MS", "3000")
                .env("ATTACHE_STALL_TIMEOUT_MS", "2000")
                .env("XDG_DATA_HOME", self.home.join("xdg-data"))
                .env("XDG_CONFIG_HOME", self.home.join("xdg-config"))
                // Software rendering in the virtual display (see .ci/e2e.sh).
                .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
                .env("NO_AT_BRIDGE", "1")
                .env("GDK_BACKEND", "x11")
                .stdout(std::process::Stdio::null())
                .stderr(std::fs::File::create(log).unwrap());
            cmd
        } else {
            let mut cmd = self.command(url);
            cmd.arg("watch");
            cmd
        };
        let mut cmd = cmd;
        self.watch = Some(Killed(cmd.spawn().unwrap()));
    }
}

fn workspace_binary_exists(name: &str) -> bool {
    std::panic::catch_unwind(|| workspace_binary(name)).is_ok()
}

fn pdf(rng: &mut fastrand::Rng, label: &str) -> Vec<u8> {
    let filler: String = (0..rng.usize(200..60_000))
        .map(|_| rng.alphanumeric())
        .collect();
    format!("%PDF-1.4\n% {label} {}\n{filler}\n%%EOF\n", rng.u64(..)).into_bytes()
}

/// Writes `bytes` at `path` the way scanners and browsers do: beside it, then renamed in.
fn arrive(path: &Path, bytes: &[u8]) {
    let part = path.with_extension("pdf.part");
    std::fs::write(&part, bytes).unwrap();
    std::fs::rename(&part, path).unwrap();
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[test]
#[ignore = "long: run by `make soak`"]
fn soak() {
    let secs: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(180);
    let seed: u64 = std::env::var("SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    println!("soak: {secs} s, seed {seed} (SOAK_SEED={seed} replays the choices)");
    let mut rng = fastrand::Rng::with_seed(seed);
    let root = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox_process(&root.path().join("site"), &[]);
    let url = sandbox.base_url.clone();
    let http = reqwest::blocking::Client::new();
    let set_faults = |value: serde_json::Value| {
        let answer = http
            .put(format!("{url}/_admin/faults"))
            .json(&value)
            .send()
            .unwrap();
        assert!(answer.status().is_success());
    };
    let private = root.path().join("private");
    std::fs::create_dir_all(&private).unwrap();

    // With a display (`make soak` opens a virtual one), the app itself watches the Wix side's
    // folders and is the one SIGKILLed there; without, `attache watch` stands in for it.
    let with_app =
        std::env::var_os("DISPLAY").is_some() && workspace_binary_exists("attache-desktop");
    println!(
        "soak: the Wix side is watched by {}",
        if with_app {
            "the app (attache-desktop)"
        } else {
            "attache watch (no DISPLAY)"
        }
    );
    let mut sides: Vec<Side> = [("Wix", "demo", with_app), ("EspoCRM", "demo-espo", false)]
        .into_iter()
        .map(|(crm, account, app)| {
            let base = root.path().join(account);
            let home = base.join("home");
            let inboxes = [base.join("Scans"), base.join("Share")];
            for inbox in &inboxes {
                for (contact, _) in CONTACTS {
                    std::fs::create_dir_all(inbox.join(contact)).unwrap();
                }
            }
            std::fs::create_dir_all(&home).unwrap();
            let config = serde_json::json!({
                "current": account,
                "inboxes": {account: {
                    "folders": [
                        {"path": inboxes[0], "poll": false},
                        {"path": inboxes[1], "poll": true},
                    ],
                    "after": "move",
                    "rules": [],
                }},
            });
            std::fs::write(home.join("config.json"), config.to_string()).unwrap();
            Side {
                crm,
                app,
                account,
                home,
                inboxes,
                drops: base.join("drops"),
                watch: None,
                next_kill: Instant::now(),
                uploads: Vec::new(),
                written: BTreeMap::new(),
                links: Vec::new(),
                batches: Vec::new(),
                kills: 0,
            }
        })
        .collect();
    set_faults(faults("none"));
    for side in &mut sides {
        side.start_watch(&url);
        side.next_kill = Instant::now() + Duration::from_millis(rng.u64(2_000..10_000));
    }

    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let mut n = 0usize;
    let (mut overwrites, mut fault_switches) = (0, 0);
    let mut next_switch = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(rng.u64(30..200)));
        n += 1;
        let side = &mut sides[rng.usize(..2)];
        let roll = rng.u32(..100);
        if roll < 70 {
            // A new scan (an accent now and then: renaming CRMs normalise it).
            let (contact, _) = CONTACTS[rng.usize(..CONTACTS.len())];
            let inbox = &side.inboxes[rng.usize(..2)];
            let accent = if rng.bool() { "e\u{301}" } else { "" };
            let path = inbox.join(contact).join(format!("scan {n:05}{accent}.pdf"));
            let bytes = pdf(&mut rng, &format!("{n}"));
            arrive(&path, &bytes);
            side.written.entry(path).or_default().push(bytes);
        } else if roll < 78 {
            // Written again under the same name while it may still wait (or be on its way).
            let waiting: Vec<PathBuf> = side
                .written
                .keys()
                .filter(|p| p.exists())
                .cloned()
                .collect();
            if let Some(path) = waiting.get(rng.usize(..waiting.len().max(1))) {
                let bytes = pdf(&mut rng, &format!("{n} again"));
                arrive(path, &bytes);
                side.written.get_mut(path).unwrap().push(bytes);
                overwrites += 1;
            }
        } else if roll < 82 {
            // A link to someone's private file, named after a client.
            let target = private.join(format!("private {n}.pdf"));
            let bytes = pdf(&mut rng, "private");
            std::fs::write(&target, &bytes).unwrap();
            let (contact, _) = CONTACTS[rng.usize(..CONTACTS.len())];
            let link = side.inboxes[rng.usize(..2)]
                .join(contact)
                .join(format!("{contact} link {n}.pdf"));
            std::os::unix::fs::symlink(&target, &link).unwrap();
            side.links.push((link, target, bytes));
        } else if roll < 92 {
            // A batch dropped on a client, its process killed now and then.
            let (_, email) = CONTACTS[rng.usize(..CONTACTS.len())];
            let dir = side.drops.join(format!("batch {n}"));
            std::fs::create_dir_all(&dir).unwrap();
            let files: Vec<PathBuf> = (0..rng.usize(1..5))
                .map(|i| {
                    let path = dir.join(format!("drop {n}-{i}.pdf"));
                    std::fs::write(&path, pdf(&mut rng, "drop")).unwrap();
                    path
                })
                .collect();
            let contact = CONTACTS.iter().position(|(_, e)| *e == email).unwrap();
            let mut cmd = side.command(&url);
            cmd.arg("upload").arg(email).args(&files);
            let kill_at = Instant::now() + Duration::from_millis(rng.u64(100..6_000));
            side.uploads.push((Killed(cmd.spawn().unwrap()), kill_at));
            side.batches.push((contact, files));
        }
        // Kill what is due (SIGKILL), restart the watcher at once.
        for side in &mut sides {
            let now = Instant::now();
            if now >= side.next_kill {
                side.watch = None;
                side.kills += 1;
                side.start_watch(&url);
                side.next_kill = now + Duration::from_millis(rng.u64(1_000..8_000));
            }
            side.uploads.retain_mut(|(proc, kill_at)| {
                if proc.0.try_wait().unwrap().is_some() {
                    return false;
                }
                if now >= *kill_at && rng.bool() {
                    side.kills += 1;
                    return false; // dropped: SIGKILL
                }
                true
            });
        }
        if Instant::now() >= next_switch {
            set_faults(faults(["none", "nfc", "cleaned"][rng.usize(..3)]));
            fault_switches += 1;
            next_switch = Instant::now() + Duration::from_secs(rng.u64(5..15));
        }
    }

    // The storm is over: finish the work as a user would.
    for side in &mut sides {
        side.watch = None;
        side.uploads.clear();
    }
    set_faults(serde_json::json!({}));
    let mut violations = Vec::new();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let wix = demo_wix(&url);
    let everyone = runtime.block_on(CrmBackend::list_contacts(&wix)).unwrap();
    let contact_ids: Vec<String> = CONTACTS
        .iter()
        .map(|(name, _)| {
            everyone
                .iter()
                .find(|c| c.display_name == *name)
                .unwrap()
                .id
                .clone()
        })
        .collect();
    // Attachments on the site before the soak are the seed's; only ours are counted.
    let mut totals = (0, 0, 0);
    for side in &mut sides {
        let out = side
            .command(&url)
            .args(["watch", "--once", "--json"])
            .output()
            .unwrap();
        assert!(
            out.status.code().is_some(),
            "watch --once ended by a signal"
        );
        for (contact, files) in side.batches.clone() {
            let out = side
                .command(&url)
                .arg("upload")
                .arg(CONTACTS[contact].1)
                .args(&files)
                .output()
                .unwrap();
            if !out.status.success() {
                violations.push(format!(
                    "{}: dropping {files:?} again failed: {}",
                    side.crm,
                    String::from_utf8_lossy(&out.stdout)
                ));
            }
        }
        totals.0 += side.written.len();
        totals.1 += side.batches.iter().map(|(_, f)| f.len()).sum::<usize>();
        totals.2 += side.links.len();
    }

    // What is on the site: (contact, name key, size) → how many.
    let mut on_site: HashMap<(usize, String, u64), usize> = HashMap::new();
    for (c, id) in contact_ids.iter().enumerate() {
        for a in runtime
            .block_on(CrmBackend::list_attachments(&wix, id))
            .unwrap()
        {
            // Wix's list may leave the size out: then the file says it (HEAD, asked again
            // if it fails: the checker must not invent a violation).
            let size = match a.size_bytes {
                Some(size) => size,
                None => (0..5)
                    .find_map(|_| runtime.block_on(wix.file_size(&a)).ok().flatten())
                    .unwrap_or(0),
            };
            *on_site
                .entry((c, file_name_key(&a.file_name), size))
                .or_default() += 1;
        }
    }
    let key_of =
        |contact: usize, name: &str, size: usize| (contact, file_name_key(name), size as u64);
    let contact_of = |path: &Path| {
        let folder = path
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        CONTACTS
            .iter()
            .position(|(name, _)| *name == folder)
            .unwrap()
    };
    let mut expected_once: HashSet<(usize, String, u64)> = HashSet::new();
    for side in &sides {
        // Every version still on disk, anywhere under the inboxes.
        let mut on_disk: HashMap<Vec<u8>, Vec<PathBuf>> = HashMap::new();
        for inbox in &side.inboxes {
            for path in walk(inbox) {
                if path
                    .components()
                    .any(|c| c.as_os_str() == ".attache-claims")
                {
                    continue;
                }
                if std::fs::symlink_metadata(&path)
                    .unwrap()
                    .file_type()
                    .is_symlink()
                {
                    continue;
                }
                on_disk
                    .entry(std::fs::read(&path).unwrap())
                    .or_default()
                    .push(path);
            }
        }
        for (path, versions) in &side.written {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let contact = contact_of(path);
            let last = versions.last().unwrap();
            // Never lost: the last version written is on disk (in the inbox, or filed).
            match on_disk.get(last) {
                None => violations.push(format!(
                    "{}: {} (last version) is gone from disk",
                    side.crm,
                    path.display()
                )),
                Some(places) => {
                    let filed = places
                        .iter()
                        .any(|p| p.components().any(|c| c.as_os_str() == "Filed"));
                    if filed {
                        // Filed: attached, once.
                        expected_once.insert(key_of(contact, &name, last.len()));
                    } else {
                        violations.push(format!(
                            "{}: {} was not filed after watch --once",
                            side.crm,
                            path.display()
                        ));
                    }
                }
            }
            // Earlier versions: attached at most once each (one sent before it was overwritten).
            for v in &versions[..versions.len() - 1] {
                let n = on_site
                    .get(&key_of(contact, &name, v.len()))
                    .copied()
                    .unwrap_or(0);
                if n > 1 {
                    violations.push(format!(
                        "{}: an earlier version of {} attached {n} times",
                        side.crm,
                        path.display()
                    ));
                }
            }
        }
        // Every file filed was verified on the site: nothing moved without its upload.
        for inbox in &side.inboxes {
            for path in walk(&inbox.join("Filed")) {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                let size = std::fs::metadata(&path).unwrap().len() as usize;
                let original = name
                    .split(" (")
                    .next()
                    .unwrap()
                    .trim_end_matches(".pdf")
                    .to_owned()
                    + ".pdf";
                let contact = contact_of(&path);
                if !on_site.contains_key(&key_of(contact, &name, size))
                    && !on_site.contains_key(&key_of(contact, &original, size))
                {
                    violations.push(format!(
                        "{}: {} is filed but not on the site",
                        side.crm,
                        path.display()
                    ));
                }
            }
        }
        // Links: left alone, their targets untouched and never sent.
        for (link, target, bytes) in &side.links {
            if !std::fs::symlink_metadata(link).is_ok_and(|m| m.file_type().is_symlink()) {
                violations.push(format!(
                    "{}: the link {} was moved or removed",
                    side.crm,
                    link.display()
                ));
            }
            if std::fs::read(target).ok().as_ref() != Some(bytes) {
                violations.push(format!(
                    "{}: the private file {} changed",
                    side.crm,
                    target.display()
                ));
            }
            let contact = contact_of(link);
            let name = link.file_name().unwrap().to_string_lossy().into_owned();
            if on_site.contains_key(&key_of(contact, &name, bytes.len())) {
                violations.push(format!(
                    "{}: the link {} was sent",
                    side.crm,
                    link.display()
                ));
            }
        }
        for (contact, files) in &side.batches {
            for file in files {
                let name = file.file_name().unwrap().to_string_lossy().into_owned();
                expected_once.insert(key_of(
                    *contact,
                    &name,
                    std::fs::metadata(file).unwrap().len() as usize,
                ));
            }
        }
        // Nothing secret under the home: no key, no upload URL (a capability), in any file or
        // log, once the work is done.
        for path in walk(&side.home) {
            let bytes = std::fs::read(&path).unwrap_or_default();
            for secret in [&b"demo-api-key"[..], b"/_upload/attachments/", b"/_tus/"] {
                if bytes.windows(secret.len()).any(|w| w == secret) {
                    violations.push(format!(
                        "{}: {} holds {:?}",
                        side.crm,
                        path.display(),
                        String::from_utf8_lossy(secret)
                    ));
                }
            }
        }
    }
    for key in &expected_once {
        let n = on_site.get(key).copied().unwrap_or(0);
        if n != 1 {
            violations.push(format!("{key:?} is attached {n} times, not once"));
        }
    }

    let kills: usize = sides.iter().map(|s| s.kills).sum();
    println!(
        "soak: {:.0} s, {} inbox files ({overwrites} overwritten), {} dropped in batches, {} links, \
         {kills} processes SIGKILLed, {fault_switches} fault switches (5xx 4%, 429 3%, cut 5%, lost 5%, \
         expired 3%, stalls 2%, list lag 300 ms, renames none/nfc/cleaned), {} attachments checked: {} violations",
        started.elapsed().as_secs_f64().min(secs as f64),
        totals.0,
        totals.1,
        totals.2,
        expected_once.len(),
        violations.len()
    );
    if !violations.is_empty() {
        // Kept for a look: the homes hold every process's log.
        let kept = root.keep();
        panic!(
            "seed {seed}, files and logs kept in {}:\n{}",
            kept.display(),
            violations.join("\n")
        );
    }
}
