//! The inbox crash test: `attache watch` is killed with SIGKILL at random moments while files
//! keep arriving, over many trials, against a sandbox in another process. A final
//! `attache watch --once` finishes the work; then every file is attached exactly once and sits,
//! once, in `Filed/<contact>/`: none lost, none twice.

#![cfg(unix)]

use std::time::Duration;

use attache_tests::cli_attachment_counts;
use attache_tests::{attache_logged, start_sandbox_process, Killed};

#[test]
fn watch_killed_at_random_moments_loses_nothing_and_attaches_nothing_twice() {
    let site = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let inbox = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox_process(site.path(), &["--faults", "latency=10ms"]);
    let url = sandbox.base_url.clone();
    let folder = inbox.path().join("Hiroshi Tanaka");
    std::fs::create_dir_all(&folder).unwrap();

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut rng = fastrand::Rng::with_seed(seed);
    let (trials, per_trial) = (8, 15);
    let mut kills = 0;
    for trial in 0..trials {
        // Half the files are there before the watcher starts, half arrive while it runs.
        let write = |i: usize, rng: &mut fastrand::Rng| {
            let body = format!(
                "%PDF-1.4\n% trial {trial} file {i} seed {seed}\n{}\n%%EOF\n",
                "x".repeat(rng.usize(10..100_000))
            );
            let part = folder.join(format!("t{trial}-{i}.pdf.part"));
            std::fs::write(&part, body).unwrap();
            std::fs::rename(&part, folder.join(format!("t{trial}-{i}.pdf"))).unwrap();
        };
        for i in 0..per_trial / 2 {
            write(i, &mut rng);
        }
        let mut watch = attache_logged(home.path(), &url);
        watch.arg("watch").arg(inbox.path());
        let child = Killed(watch.spawn().unwrap());
        for i in per_trial / 2..per_trial {
            std::thread::sleep(Duration::from_millis(rng.u64(0..150)));
            write(i, &mut rng);
        }
        std::thread::sleep(Duration::from_millis(rng.u64(0..1500)));
        let mut child = child;
        if child.0.try_wait().unwrap().is_none() {
            kills += 1; // SIGKILL: no cleanup, no flush (Killed's drop)
        }
        drop(child);
    }
    assert!(
        kills >= trials / 2,
        "most runs were killed mid-way ({kills} of {trials})"
    );

    // The restart finishes whatever the killed runs left.
    let mut once = attache_logged(home.path(), &url);
    once.arg("watch")
        .arg(inbox.path())
        .args(["--once", "--json"]);
    let out = once.output().unwrap();
    assert!(
        out.status.success(),
        "seed {seed}: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    let counts = cli_attachment_counts(home.path(), &url, "h.tanaka@example.jp");
    let filed = inbox.path().join("Filed").join("Hiroshi Tanaka");
    let mut on_disk: Vec<String> = std::fs::read_dir(&filed)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut expected = Vec::new();
    for trial in 0..trials {
        for i in 0..per_trial {
            let name = format!("t{trial}-{i}.pdf");
            assert_eq!(
                counts.get(&name).copied(),
                Some(1),
                "{name} attached once (seed {seed})"
            );
            expected.push(name);
        }
    }
    expected.sort();
    assert_eq!(
        on_disk, expected,
        "every file filed exactly once, none lost (seed {seed})"
    );
    let left: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        left.is_empty(),
        "nothing left behind: {left:?} (seed {seed})"
    );
}
