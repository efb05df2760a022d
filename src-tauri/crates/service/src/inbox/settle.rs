//! When a file in an inbox is complete: the writer is done with it.
//!
//! What the watcher saw decides how long the file's size and modification time must stay still:
//! - closed after writing, or renamed into place (how browsers, scanners and `mv` finish a
//!   file): one confirming look, so filing starts within a fraction of a second;
//! - found by a scan or a polling watcher, with no word on the writer: [`QUIET_UNKNOWN`];
//! - written to and not yet closed (a slow writer holding the file open): only the close makes
//!   it complete, or, for writers whose close is never reported, [`QUIET_OPEN`] of silence.
//!
//! paperless-ngx waits for five seconds of quiet on every file; the close event lets Attaché
//! start at once without ever taking a file that is still being written.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A file seen closed (or renamed in) must look the same this much later.
pub const QUIET_CLOSED: Duration = Duration::from_millis(100);
/// A file found without events must stay unchanged this long.
pub const QUIET_UNKNOWN: Duration = Duration::from_secs(1);
/// A file still open for writing must stay unchanged this long to be taken anyway.
pub const QUIET_OPEN: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    Closed,
    Unknown,
    Open,
}

#[derive(Debug)]
struct Candidate {
    writer: Writer,
    /// Size and modification time at the last look, and since when they have not changed.
    seen: Option<(u64, i64)>,
    still_since: Instant,
}

/// A file judged complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub path: PathBuf,
    pub size: u64,
    pub modified_ns: i64,
}

/// How many files are followed at once by default. Each costs a `stat` per look; a folder
/// holding more new files than this is taken in turns (see [`Settling::take_catch_up`]).
pub const FOLLOWED_MAX: usize = 10_000;

/// The files being watched until they are complete, at most a limit of them at once.
#[derive(Debug)]
pub struct Settling {
    candidates: HashMap<PathBuf, Candidate>,
    limit: usize,
    /// A file was turned away because the list was full: the folders must be read again once
    /// there is room, or it would wait for the next periodic rescan.
    overflowed: bool,
}

impl Default for Settling {
    fn default() -> Self {
        Self::with_limit(FOLLOWED_MAX)
    }
}

impl Settling {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_limit(limit: usize) -> Self {
        Self {
            candidates: HashMap::new(),
            limit: limit.max(1),
            overflowed: false,
        }
    }

    /// Whether files were turned away and there is room again (half the list free): the caller
    /// reads the folders again to pick them up. True once per overflow.
    pub fn take_catch_up(&mut self) -> bool {
        if self.overflowed && self.candidates.len() <= self.limit / 2 {
            self.overflowed = false;
            return true;
        }
        false
    }

    /// Room for `path`: already followed, or the list is not full (else noted as overflow).
    fn admits(&mut self, path: &Path) -> bool {
        if self.candidates.len() < self.limit || self.candidates.contains_key(path) {
            return true;
        }
        self.overflowed = true;
        false
    }

    /// Bytes were written (or the file was created): wait for the close.
    pub fn written(&mut self, path: &Path, now: Instant) {
        self.note(path, Writer::Open, now);
    }

    /// Closed after writing, or renamed into the inbox.
    pub fn closed(&mut self, path: &Path, now: Instant) {
        self.note(path, Writer::Closed, now);
    }

    /// Found by a scan or a polling watcher. Says nothing new about a file already followed.
    pub fn found(&mut self, path: &Path, now: Instant) {
        if !self.admits(path) {
            return;
        }
        self.candidates.entry(path.to_owned()).or_insert(Candidate {
            writer: Writer::Unknown,
            seen: None,
            still_since: now,
        });
    }

    /// Deleted or renamed away before it was taken.
    pub fn removed(&mut self, path: &Path) {
        self.candidates.remove(path);
        // A folder renamed away takes its files with it.
        self.candidates.retain(|p, _| !p.starts_with(path));
    }

    fn note(&mut self, path: &Path, writer: Writer, now: Instant) {
        if !self.admits(path) {
            return;
        }
        let c = self.candidates.entry(path.to_owned()).or_insert(Candidate {
            writer,
            seen: None,
            still_since: now,
        });
        c.writer = writer;
        c.still_since = now;
    }

    pub fn is_empty(&self) -> bool {
        self.candidates.is_empty()
    }

    /// The most files followed at once.
    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn len(&self) -> usize {
        self.candidates.len()
    }

    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.candidates.keys().map(PathBuf::as_path)
    }

    /// Looks at every candidate (`stat` gives size and modification time, or `None` when the
    /// file is gone) and returns those now complete; they stop being followed.
    pub fn take_settled(
        &mut self,
        now: Instant,
        stat: impl Fn(&Path) -> Option<(u64, i64)>,
    ) -> Vec<Settled> {
        let mut settled = Vec::new();
        self.candidates.retain(|path, c| {
            let Some(current) = stat(path) else {
                return false; // vanished: nothing to file
            };
            if c.seen != Some(current) {
                let looked_before = c.seen.replace(current).is_some();
                // Changed well after its close: written again, whatever an event said.
                if looked_before
                    && c.writer == Writer::Closed
                    && now.duration_since(c.still_since) > QUIET_CLOSED
                {
                    c.writer = Writer::Open;
                }
                c.still_since = now;
                // A first look at a closed file is its confirmation only after QUIET_CLOSED.
                return true;
            }
            let quiet = match c.writer {
                Writer::Closed => QUIET_CLOSED,
                Writer::Unknown => QUIET_UNKNOWN,
                Writer::Open => QUIET_OPEN,
            };
            if now.duration_since(c.still_since) >= quiet {
                settled.push(Settled {
                    path: path.clone(),
                    size: current.0,
                    modified_ns: current.1,
                });
                false
            } else {
                true
            }
        });
        settled
    }

    /// How soon [`Settling::take_settled`] has something to decide.
    pub fn next_check(&self) -> Option<Duration> {
        (!self.candidates.is_empty()).then_some(QUIET_CLOSED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn a_closed_file_is_taken_after_one_confirming_look() {
        let t0 = Instant::now();
        let mut s = Settling::new();
        s.written(Path::new("a"), t0);
        s.closed(Path::new("a"), t0);
        let stat = |_: &Path| Some((10, 1));
        assert!(
            s.take_settled(t0, stat).is_empty(),
            "first look only records"
        );
        assert!(s
            .take_settled(t0 + Duration::from_millis(50), stat)
            .is_empty());
        assert_eq!(s.take_settled(t0 + QUIET_CLOSED, stat).len(), 1);
        assert!(s.is_empty());
    }

    #[test]
    fn an_open_file_waits_for_its_close_however_slow_the_writer() {
        let t0 = Instant::now();
        let mut s = Settling::new();
        let size = RefCell::new(1u64);
        let stat = |_: &Path| Some((*size.borrow(), *size.borrow() as i64));
        s.written(Path::new("slow"), t0);
        // The writer pauses for seconds between chunks: no quiet spell short of QUIET_OPEN counts.
        for second in 1..=10 {
            let now = t0 + Duration::from_secs(second);
            assert!(
                s.take_settled(now, stat).is_empty(),
                "taken at {second}s while still open"
            );
            if second % 3 == 0 {
                *size.borrow_mut() += 1;
                s.written(Path::new("slow"), now);
            }
        }
        let closed_at = t0 + Duration::from_secs(11);
        s.closed(Path::new("slow"), closed_at);
        assert!(s.take_settled(closed_at, stat).is_empty());
        assert_eq!(s.take_settled(closed_at + QUIET_CLOSED, stat)[0].size, 4);
    }

    #[test]
    fn found_files_need_a_quiet_second_and_vanished_ones_are_dropped() {
        let t0 = Instant::now();
        let mut s = Settling::new();
        s.found(Path::new("scan"), t0);
        s.found(Path::new("gone"), t0);
        let stat = |p: &Path| (p != Path::new("gone")).then_some((5, 5));
        assert!(s.take_settled(t0, stat).is_empty());
        assert_eq!(s.len(), 1, "the vanished file is no longer followed");
        assert!(s
            .take_settled(t0 + Duration::from_millis(900), stat)
            .is_empty());
        assert_eq!(s.take_settled(t0 + QUIET_UNKNOWN, stat).len(), 1);

        // A folder renamed away takes its files.
        s.found(Path::new("dir/x"), t0);
        s.removed(Path::new("dir"));
        assert!(s.is_empty());
    }

    #[test]
    fn a_closed_file_that_changes_again_is_open_again() {
        let t0 = Instant::now();
        let mut s = Settling::new();
        let size = RefCell::new(1u64);
        let stat = |_: &Path| Some((*size.borrow(), 0));
        s.closed(Path::new("f"), t0);
        s.take_settled(t0, stat);
        *size.borrow_mut() = 2; // written again without an event reaching us (yet)
        assert!(s.take_settled(t0 + QUIET_CLOSED * 2, stat).is_empty());
        assert!(
            s.take_settled(t0 + QUIET_CLOSED * 4, stat).is_empty(),
            "changed after its close: waits"
        );
    }

    #[test]
    fn past_its_limit_it_turns_files_away_and_asks_for_a_catch_up_once_there_is_room() {
        let t0 = Instant::now();
        let mut s = Settling::with_limit(4);
        for name in ["a", "b", "c", "d", "e", "f"] {
            s.closed(Path::new(name), t0);
        }
        assert_eq!(s.len(), 4);
        // A file already followed is still heard about when the list is full.
        s.written(Path::new("a"), t0);
        assert!(!s.take_catch_up(), "no room yet");
        let stat = |_: &Path| Some((1, 1));
        s.take_settled(t0, stat);
        let taken = s.take_settled(t0 + QUIET_OPEN, stat);
        assert_eq!(taken.len(), 4);
        assert!(s.take_catch_up(), "room again: read the folders");
        assert!(!s.take_catch_up(), "once per overflow");
        s.found(Path::new("e"), t0);
        assert_eq!(s.len(), 1);
    }
}
