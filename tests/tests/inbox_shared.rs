//! One scanner folder watched by two machines (two `attache watch` processes with their own
//! homes, as the agent's laptop and the office PC): each file is filed by one of them, once;
//! and the files a machine had claimed when it vanished are filed by the other after a while.

#![cfg(unix)]

use std::path::Path;
use std::time::{Duration, Instant};

use attache_tests::{attache_logged, cli_attachment_counts, start_sandbox_process, Killed};

const LEASE_MS: &str = "1500";

fn watch(home: &Path, url: &str, inbox: &Path) -> Killed {
    std::fs::create_dir_all(home).unwrap();
    let mut cmd = attache_logged(home, url);
    cmd.env("ATTACHE_INBOX_CLAIM_LEASE_MS", LEASE_MS)
        .arg("watch")
        .arg(inbox);
    Killed(cmd.spawn().unwrap())
}

fn arrive(folder: &Path, name: &str) {
    let part = folder.join(format!("{name}.part"));
    std::fs::write(&part, format!("%PDF-1.4\n% {name}\n%%EOF\n")).unwrap();
    std::fs::rename(&part, folder.join(name)).unwrap();
}

fn names_in(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn until(what: &str, within: Duration, done: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One shared folder, `Hiroshi Tanaka/` inside it, a sandbox with `faults` in its own process,
/// and a place for each machine's home.
struct Share {
    _dirs: [tempfile::TempDir; 3],
    _sandbox: attache_tests::SandboxProcess,
    url: String,
    homes: std::path::PathBuf,
    root: std::path::PathBuf,
    folder: std::path::PathBuf,
}

impl Share {
    /// The site stops misbehaving.
    fn faults_off(&self) {
        let answer = reqwest::blocking::Client::new()
            .put(format!("{}/_admin/faults", self.url))
            .json(&serde_json::json!({}))
            .send()
            .unwrap();
        assert!(answer.status().is_success());
    }

    /// Where the client's scans go once filed.
    fn filed(&self) -> std::path::PathBuf {
        self.root.join("Filed").join("Hiroshi Tanaka")
    }
}

fn share(faults: &str) -> Share {
    let dirs = [(); 3].map(|_| tempfile::tempdir().unwrap());
    let sandbox = start_sandbox_process(dirs[0].path(), &["--faults", faults]);
    let root = dirs[2].path().to_path_buf();
    let folder = root.join("Hiroshi Tanaka");
    std::fs::create_dir_all(&folder).unwrap();
    Share {
        url: sandbox.base_url.clone(),
        homes: dirs[1].path().to_path_buf(),
        _sandbox: sandbox,
        _dirs: dirs,
        root,
        folder,
    }
}

#[test]
fn two_machines_on_one_folder_file_each_scan_once() {
    let shared = share("latency=20ms");
    let (url, folder) = (&shared.url, &shared.folder);
    let (laptop, office) = (shared.homes.join("laptop"), shared.homes.join("office"));

    // Some scans wait in the folder before either starts; the rest arrive while both watch.
    let names: Vec<String> = (0..40).map(|i| format!("scan {i:02}.pdf")).collect();
    for name in &names[..15] {
        arrive(&folder, name);
    }
    let a = watch(&laptop, url, &shared.root);
    let b = watch(&office, url, &shared.root);
    for name in &names[15..] {
        std::thread::sleep(Duration::from_millis(50));
        arrive(&folder, name);
    }
    let filed = shared.filed();
    until("every scan filed", Duration::from_secs(90), || {
        names_in(&filed).len() >= names.len() && names_in(&folder).is_empty()
    });
    // A moment for a second copy, were one on its way.
    std::thread::sleep(Duration::from_secs(2));
    drop((a, b));

    let mut expected = names.clone();
    expected.sort();
    assert_eq!(names_in(&filed), expected, "each filed once, none twice");
    let counts = cli_attachment_counts(&laptop, url, "h.tanaka@example.jp");
    for name in &names {
        assert_eq!(
            counts.get(name),
            Some(&1),
            "{name} attached once: {counts:?}"
        );
    }
    // Both machines were there: each left a heartbeat; no claim is left for a moved file.
    let claims = shared.root.join(".attache-claims");
    assert_eq!(names_in(&claims.join("machines")).len(), 2);
    let left: Vec<String> = names_in(&claims)
        .into_iter()
        .filter(|n| n.ends_with(".claim"))
        .collect();
    assert!(left.is_empty(), "claims of moved files remain: {left:?}");
}

#[test]
fn the_scans_a_vanished_machine_had_claimed_are_filed_by_the_other() {
    // Every request takes 4 s: the laptop claims the scans, then dies before any can land.
    let shared = share("latency=4s");
    let (url, folder, homes) = (&shared.url, &shared.folder, &shared.homes);
    let names: Vec<String> = (0..5).map(|i| format!("contract {i}.pdf")).collect();
    for name in &names {
        arrive(&folder, name);
    }
    let claims = shared.root.join(".attache-claims");
    let claimed = || {
        names_in(&claims)
            .iter()
            .filter(|n| n.ends_with(".claim"))
            .count()
    };
    let laptop_home = homes.join("laptop");
    let laptop = watch(&laptop_home, url, &shared.root);
    until("the laptop's claims", Duration::from_secs(60), || {
        claimed() == names.len()
    });
    drop(laptop); // SIGKILL: the laptop vanishes with its claims

    // The office machine starts on a fast site: it waits out the laptop's lease, then files all.
    shared.faults_off();
    let office_home = homes.join("office");
    let office = watch(&office_home, url, &shared.root);
    let filed = shared.filed();
    until(
        "the office files the laptop's scans",
        Duration::from_secs(60),
        || names_in(&filed).len() == names.len(),
    );
    drop(office);
    let counts = cli_attachment_counts(&office_home, url, "h.tanaka@example.jp");
    for name in &names {
        assert_eq!(counts.get(name), Some(&1), "{name}: {counts:?}");
    }
    let mut log = String::new();
    for entry in std::fs::read_dir(&office_home).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with("log-") {
            log += &std::fs::read_to_string(entry.path()).unwrap_or_default();
        }
    }
    assert!(log.contains("taking over the claim"), "{log}");
}

/// A machine that sent a scan and vanished before it heard back (the answer lost, the site's
/// list still lagging): the machine that takes over its claim finds that upload on the client
/// and files the scan without sending it a second time.
#[test]
fn a_scan_a_vanished_machine_had_sent_is_not_sent_again() {
    // Uploads are stored, then answered 503; new attachments stay out of lists for a minute.
    let shared = share("lost=1,list-lag=60s");
    let (url, folder, homes) = (&shared.url, &shared.folder, &shared.homes);
    arrive(&folder, "deed.pdf");
    let admin = reqwest::blocking::Client::new();
    let uploads_seen = || -> (u64, u64) {
        let v: serde_json::Value = admin
            .get(format!("{url}/_admin/uploads-in-flight"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        (v["now"].as_u64().unwrap(), v["peak"].as_u64().unwrap())
    };
    let laptop = watch(&homes.join("laptop"), url, &shared.root);
    until(
        "the laptop's upload stored",
        Duration::from_secs(60),
        || uploads_seen() == (0, 1),
    );
    drop(laptop); // vanishes before it could see its upload listed

    shared.faults_off();
    let office_home = homes.join("office");
    let office = watch(&office_home, url, &shared.root);
    let filed = shared.filed();
    until("the office files the deed", Duration::from_secs(60), || {
        names_in(&filed) == ["deed.pdf"]
    });
    drop(office);
    let counts = cli_attachment_counts(&office_home, url, "h.tanaka@example.jp");
    assert_eq!(counts.get("deed.pdf"), Some(&1), "sent once: {counts:?}");
}
