//! Who files a file when several machines watch one folder (the scanner's network share, seen
//! from the agent's laptop and the office PC). Each machine's own lock is in its own home, so
//! the claim has to live in the folder itself: `<inbox>/.attache-claims/`, which the inbox
//! ignores like every hidden name.
//!
//! - A file is claimed before anything is done with it: `<key>.claim`, created with
//!   `O_EXCL` (atomic on local disks, NFS v3+ and SMB), naming the machine, the file and the
//!   claim's state. Whoever creates it files the file; the others leave it alone.
//! - Each machine writes its heartbeat, `machines/<id>`, every [`HEARTBEAT_EVERY`]. A claim
//!   whose machine has been silent for [`LEASE`] (it vanished: unplugged, uninstalled) is taken
//!   over: renamed aside (only one rename of a name succeeds), checked to be the stale claim
//!   that was read, then claimed afresh with `O_EXCL`.
//! - A file kept in place after filing (the Keep setting) has its claim marked `filed`, and a
//!   filed claim is never taken over: the other machine would attach it again.
//! - A claim whose file is gone (moved to `Filed/`, deleted, rewritten) is removed by the
//!   machine that put it away, or by any machine's periodic sweep once it is older than a lease.
//!
//! Hand-written: no maintained crate offers lock files with leases on network file systems
//! (`fs4`/`fd-lock` are `flock`s, which SMB and many NFS setups do not share between machines).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::store::FoundFile;

/// The folder inside each watched folder where claims live (hidden: the inbox ignores it).
pub const CLAIMS_FOLDER: &str = ".attache-claims";
/// How often a watching machine says it is alive.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(20);
/// How long a machine may be silent before its claims are taken over.
pub const LEASE: Duration = Duration::from_secs(120);

/// The outcome of asking for a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This machine files it.
    Ours,
    /// Another machine does (or did); leave it alone.
    Theirs { machine: String },
    /// This machine files it, taken over from one that vanished, which may have sent it
    /// already.
    TakenOver { from: String },
}

/// What a claim file says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Held {
    machine: String,
    filed: bool,
    /// Path inside the inbox, size and modification time of the claimed file.
    file: String,
    size: u64,
    modified_ns: i64,
}

impl Held {
    fn text(&self) -> String {
        let state = if self.filed { "filed" } else { "working" };
        format!(
            "{}\n{state}\n{}\n{}\n{}\n",
            self.machine, self.size, self.modified_ns, self.file
        )
    }

    fn parse(text: &str) -> Option<Self> {
        let mut lines = text.splitn(5, '\n');
        let machine = lines.next()?.to_owned();
        let filed = lines.next()? == "filed";
        let size = lines.next()?.parse().ok()?;
        let modified_ns = lines.next()?.parse().ok()?;
        let file = lines.next()?.strip_suffix('\n')?.to_owned();
        (!machine.is_empty()).then_some(Self {
            machine,
            filed,
            file,
            size,
            modified_ns,
        })
    }
}

/// This machine's claims (one per watcher; `machine` identifies this home on this computer).
#[derive(Debug, Clone)]
pub struct Claims {
    machine: String,
    lease: Duration,
}

impl Claims {
    pub fn new(machine: String) -> Self {
        Self {
            machine,
            lease: LEASE,
        }
    }

    /// A shorter lease, for tests of a vanished machine.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Says this machine is alive, in each watched folder.
    pub fn beat(&self, inboxes: &[PathBuf]) {
        for inbox in inboxes {
            let dir = inbox.join(CLAIMS_FOLDER).join("machines");
            // Written, not only touched: some network file systems keep a cached mtime.
            let beat = std::fs::create_dir_all(&dir).and_then(|()| {
                std::fs::write(
                    dir.join(&self.machine),
                    crate::uploads::now_ms().to_string(),
                )
            });
            if let Err(e) = beat {
                tracing::debug!(folder = %inbox.display(), "no heartbeat: {e}");
            }
        }
    }

    /// Claims `file` (found in `inbox`) for this machine, unless another machine that is alive
    /// holds it, or filed it. A folder where no claim can be written (read-only) is this
    /// machine's alone: `Ours`, with the reason logged.
    pub fn claim(&self, inbox: &Path, file: &FoundFile) -> Claim {
        let wanted = self.held(inbox, file, false);
        let path = claim_path(inbox, file);
        // Two rounds: a stale claim moved aside, then our own made.
        let mut taken_from = None;
        for _ in 0..2 {
            match create_new(&path, &wanted) {
                Ok(()) => {
                    return match taken_from {
                        Some(from) => Claim::TakenOver { from },
                        None => Claim::Ours,
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    tracing::warn!(folder = %inbox.display(), "no claim could be written, filing alone: {e}");
                    return Claim::Ours;
                }
            }
            let Some(held) = read(&path) else {
                // Being written this instant by its creator, or unreadable: theirs for now.
                if age(&path).is_some_and(|age| age > self.lease) {
                    let _ = std::fs::remove_file(&path);
                    continue;
                }
                return Claim::Theirs {
                    machine: "another machine".into(),
                };
            };
            if held.machine == self.machine {
                return Claim::Ours;
            }
            if held.filed || self.alive(inbox, &held.machine) || !self.older_than_lease(&path) {
                return Claim::Theirs {
                    machine: held.machine,
                };
            }
            if !self.take_over(&path, &held) {
                return Claim::Theirs {
                    machine: held.machine,
                };
            }
            tracing::info!(file = %file.path.display(), from = %held.machine, "taking over the claim of a machine silent for {:?}", self.lease);
            taken_from = Some(held.machine);
        }
        Claim::Theirs {
            machine: "another machine".into(),
        }
    }

    /// After the file was moved away or deleted: its claim goes.
    pub fn release(&self, inbox: &Path, file: &FoundFile) {
        let path = claim_path(inbox, file);
        if read(&path).is_some_and(|held| held.machine == self.machine) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// After the file was attached and kept in place: no machine may take it over.
    pub fn mark_filed(&self, inbox: &Path, file: &FoundFile) {
        let path = claim_path(inbox, file);
        if read(&path).is_some_and(|held| held.machine == self.machine) {
            let filed = self.held(inbox, file, true);
            // Written beside and renamed over: a reader never sees half a claim.
            let beside = path.with_extension(format!("{}.tmp", self.machine));
            if std::fs::write(&beside, filed.text()).is_ok() {
                let _ = std::fs::rename(&beside, &path);
            }
        }
    }

    /// Removes claims, older than a lease, whose file is no longer there as claimed (moved,
    /// deleted or rewritten by whichever machine, or by the user).
    pub fn sweep(&self, inbox: &Path) {
        let Ok(entries) = std::fs::read_dir(inbox.join(CLAIMS_FOLDER)) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "claim") || !self.older_than_lease(&path) {
                continue;
            }
            let Some(held) = read(&path) else { continue };
            let still_there = attache_core::upload::stat(&inbox.join(&held.file))
                .is_ok_and(|now| now == (held.size, held.modified_ns));
            if !still_there {
                let _ = std::fs::remove_file(&path);
            }
        }
    }

    fn held(&self, inbox: &Path, file: &FoundFile, filed: bool) -> Held {
        Held {
            machine: self.machine.clone(),
            filed,
            file: inside(inbox, &file.path),
            size: file.size,
            modified_ns: file.modified_ns,
        }
    }

    fn alive(&self, inbox: &Path, machine: &str) -> bool {
        let beat = inbox.join(CLAIMS_FOLDER).join("machines").join(machine);
        age(&beat).is_some_and(|age| age <= self.lease)
    }

    fn older_than_lease(&self, path: &Path) -> bool {
        age(path).is_none_or(|age| age > self.lease)
    }

    /// Moves the stale claim aside; true when what was moved is the claim that was judged stale
    /// (not a fresh one another machine made meanwhile, which is put back).
    fn take_over(&self, path: &Path, stale: &Held) -> bool {
        let aside = path.with_extension(format!("stale-{}", self.machine));
        if std::fs::rename(path, &aside).is_err() {
            return false; // another machine moved it first
        }
        if read(&aside).as_ref() == Some(stale) {
            let _ = std::fs::remove_file(&aside);
            return true;
        }
        // Lost a race: that was a fresh claim. Back where it was (unless one was made since).
        if std::fs::hard_link(&aside, path).is_ok() {
            let _ = std::fs::remove_file(&aside);
        }
        false
    }
}

/// `<inbox>/.attache-claims/<key>.claim`, the key a hash of where the file is, its size and
/// time: a new file written under the same name is a new claim.
fn claim_path(inbox: &Path, file: &FoundFile) -> PathBuf {
    let mut hasher = blake3::Hasher::new();
    hasher.update(inside(inbox, &file.path).as_bytes());
    hasher.update(&file.size.to_le_bytes());
    hasher.update(&file.modified_ns.to_le_bytes());
    let key = hasher.finalize().to_hex();
    inbox
        .join(CLAIMS_FOLDER)
        .join(format!("{}.claim", &key[..32]))
}

fn inside(inbox: &Path, path: &Path) -> String {
    path.strip_prefix(inbox)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\n', " ")
}

fn create_new(path: &Path, held: &Held) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(held.text().as_bytes())?;
    file.sync_all()
}

fn read(path: &Path) -> Option<Held> {
    Held::parse(&std::fs::read_to_string(path).ok()?)
}

fn age(path: &Path) -> Option<Duration> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    // A time ahead of ours (another machine's clock) is no age at all.
    Some(
        SystemTime::now()
            .duration_since(modified)
            .unwrap_or_default(),
    )
}

/// This home's name among the machines watching a folder: the computer's host name and a
/// random part kept in the home (two homes on one computer are two watchers).
pub fn machine_id(home: &attache_core::AppHome) -> String {
    let file = home.root().join("machine-id");
    if let Ok(id) = std::fs::read_to_string(&file) {
        let id = id.trim();
        if !id.is_empty() {
            return id.to_owned();
        }
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::env::var("COMPUTERNAME"))
        .unwrap_or_else(|_| "machine".into());
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect();
    let id = format!("{host}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let _ = std::fs::write(&file, &id);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(inbox: &Path, name: &str) -> FoundFile {
        let path = inbox.join(name);
        std::fs::write(&path, name).unwrap();
        let (size, modified_ns) = attache_core::upload::stat(&path).unwrap();
        FoundFile {
            inbox: inbox.to_owned(),
            path,
            size,
            modified_ns,
        }
    }

    fn backdate(path: &Path, by: Duration) {
        let file = std::fs::File::options().append(true).open(path).unwrap();
        file.set_modified(SystemTime::now() - by).unwrap();
    }

    #[test]
    fn one_machine_files_a_file_and_a_vanished_one_loses_its_claims() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = dir.path();
        let (laptop, office) = (
            Claims::new("laptop-1".into()),
            Claims::new("office-2".into()),
        );
        laptop.beat(&[inbox.to_owned()]);
        office.beat(&[inbox.to_owned()]);
        let scan = found(inbox, "scan.pdf");
        assert_eq!(laptop.claim(inbox, &scan), Claim::Ours);
        assert_eq!(laptop.claim(inbox, &scan), Claim::Ours, "asking again");
        let theirs = Claim::Theirs {
            machine: "laptop-1".into(),
        };
        assert_eq!(office.claim(inbox, &scan), theirs);

        // The laptop goes silent; its claim is old: the office takes it over.
        let claim = claim_path(inbox, &scan);
        backdate(&claim, LEASE * 2);
        assert_eq!(office.claim(inbox, &scan), theirs, "heartbeat still fresh");
        backdate(
            &inbox.join(CLAIMS_FOLDER).join("machines").join("laptop-1"),
            LEASE * 2,
        );
        assert_eq!(
            office.claim(inbox, &scan),
            Claim::TakenOver {
                from: "laptop-1".into()
            }
        );
        assert_eq!(
            laptop.claim(inbox, &scan),
            Claim::Theirs {
                machine: "office-2".into()
            },
            "the laptop, back, leaves it to the office"
        );
        assert_eq!(
            std::fs::read_dir(inbox.join(CLAIMS_FOLDER))
                .unwrap()
                .count(),
            2
        );
    }

    #[test]
    fn a_filed_claim_is_never_taken_over_and_released_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = dir.path();
        let (laptop, office) = (Claims::new("laptop".into()), Claims::new("office".into()));
        let kept = found(inbox, "kept.pdf");
        assert_eq!(laptop.claim(inbox, &kept), Claim::Ours);
        laptop.mark_filed(inbox, &kept);
        backdate(&claim_path(inbox, &kept), LEASE * 2);
        assert!(matches!(office.claim(inbox, &kept), Claim::Theirs { .. }));

        let moved = found(inbox, "moved.pdf");
        assert_eq!(laptop.claim(inbox, &moved), Claim::Ours);
        std::fs::remove_file(&moved.path).unwrap();
        laptop.release(inbox, &moved);
        assert!(!claim_path(inbox, &moved).exists());

        // The sweep removes old claims of files that are gone, and keeps the others.
        let gone = found(inbox, "gone.pdf");
        assert_eq!(office.claim(inbox, &gone), Claim::Ours);
        std::fs::remove_file(&gone.path).unwrap();
        backdate(&claim_path(inbox, &gone), LEASE * 2);
        office.sweep(inbox);
        assert!(!claim_path(inbox, &gone).exists());
        assert!(claim_path(inbox, &kept).exists());
    }

    #[test]
    fn a_rewritten_file_is_a_new_claim_and_claims_parse_back() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = dir.path();
        let first = found(inbox, "scan.pdf");
        let mut second = first.clone();
        second.size += 1;
        assert_ne!(claim_path(inbox, &first), claim_path(inbox, &second));
        let held = Held {
            machine: "m".into(),
            filed: true,
            file: "a/b c.pdf".into(),
            size: 3,
            modified_ns: -4,
        };
        assert_eq!(Held::parse(&held.text()), Some(held));
        assert_eq!(Held::parse("m\nworking\n1\n"), None, "cut short");
    }
}
