//! The crash test: `attache upload` is killed with SIGKILL at random moments, over many trials,
//! against a sandbox in another process; after a restart every file is attached exactly once.

#![cfg(unix)]

use std::process::Command;
use std::time::Duration;

use attache_tests::cli_attachment_counts;
use attache_tests::{attache_logged, start_sandbox_process};
use serde_json::Value;

fn output(mut cmd: Command) -> std::process::Output {
    cmd.output().unwrap()
}

#[test]
fn killed_at_random_moments_every_file_ends_attached_exactly_once() {
    let site = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox_process(site.path(), &["--faults", "latency=15ms"]);
    let url = sandbox.base_url.clone();
    let mut contacts = attache_logged(home.path(), &url);
    contacts.args(["contacts", "--json", "--search", "Hiroshi"]);
    let out = output(contacts);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let contact = found[0]["id"].as_str().unwrap().to_string();

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut rng = fastrand::Rng::with_seed(seed);
    let trials = 10;
    let per_trial = 20;
    let mut kills = 0;
    for trial in 0..trials {
        let dir = home.path().join(format!("batch-{trial}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_trial {
            let body = format!(
                "%PDF-1.4\n% trial {trial} file {i} seed {seed}\n{}\n%%EOF\n",
                "x".repeat(rng.usize(10..200_000))
            );
            std::fs::write(dir.join(format!("t{trial}-{i}.pdf")), body).unwrap();
        }
        let mut run = attache_logged(home.path(), &url);
        run.args(["upload", &contact]).arg(&dir);
        let mut child = run.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(rng.u64(0..500)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL: no cleanup, no flush
            kills += 1;
        }
        child.wait().unwrap();

        // Sometimes the restart is killed too.
        if rng.bool() {
            let mut resume = attache_logged(home.path(), &url);
            resume.args(["uploads", "--resume"]);
            let mut child = resume.spawn().unwrap();
            std::thread::sleep(Duration::from_millis(rng.u64(0..400)));
            let _ = child.kill();
            child.wait().unwrap();
        }

        // The restart: the same command again, which queues what the killed run had not,
        // resumes what it had, and reports the rest as already attached.
        let mut again = attache_logged(home.path(), &url);
        again.args(["upload", &contact]).arg(&dir);
        let out = output(again);
        assert!(
            out.status.success(),
            "trial {trial} (seed {seed}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        kills >= trials / 2,
        "most runs were killed mid-way ({kills} of {trials})"
    );

    let counts = cli_attachment_counts(home.path(), &url, &contact);
    for trial in 0..trials {
        for i in 0..per_trial {
            let name = format!("t{trial}-{i}.pdf");
            assert_eq!(counts.get(&name).copied(), Some(1), "{name} (seed {seed})");
        }
    }
}
