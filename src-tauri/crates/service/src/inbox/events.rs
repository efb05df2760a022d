//! What the watcher does about each file-system event: a pure function of the event, which
//! paths are inside a watched folder, and what each path is on disk now. Kept apart from the
//! runner so every case is tested as a table of events and expected actions (as
//! notify-debouncer-full tests its stitching), without sleeps or a real file system; the
//! real-file-system tests in `tests/tests/inbox.rs` stay for what only they can show.

use std::path::{Path, PathBuf};

use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RenameMode};
use notify::Event;

/// What a path is on disk at the moment the event is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDisk {
    File,
    Folder,
    /// Gone, or something else (a socket, a broken link).
    Other,
}

/// What the runner does for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Events were lost: read every folder again.
    RescanAll,
    /// A folder appeared (created, or moved in): read it.
    Scan(PathBuf),
    /// A file is being written; it settles once quiet.
    Written(PathBuf),
    /// A file was closed after writing, or renamed into place: complete unless written again.
    Closed(PathBuf),
    /// A file left (deleted, or renamed away): forget it.
    Removed(PathBuf),
}

/// The actions for one event. `watched` says whether a path is inside a watched folder (and
/// not in `Filed/` or ignored); `on_disk` what a path is now.
pub fn classify(
    event: &Event,
    watched: impl Fn(&Path) -> bool,
    on_disk: impl Fn(&Path) -> OnDisk,
) -> Vec<Action> {
    if event.need_rescan() {
        return vec![Action::RescanAll];
    }
    let inside = |p: &&PathBuf| watched(p);
    match event.kind {
        EventKind::Create(kind) => event
            .paths
            .iter()
            .filter(inside)
            .map(|path| {
                if kind == CreateKind::Folder || on_disk(path) == OnDisk::Folder {
                    Action::Scan(path.clone())
                } else {
                    Action::Written(path.clone())
                }
            })
            .collect(),
        EventKind::Modify(ModifyKind::Name(mode)) => {
            // Stitched renames carry [from, to]; lone halves one path.
            let (from, to) = match (mode, event.paths.as_slice()) {
                (RenameMode::Both, [from, to]) => (Some(from), Some(to)),
                (RenameMode::From, [from]) => (Some(from), None),
                (_, [path]) if on_disk(path) != OnDisk::Other => (None, Some(path)),
                (_, [path]) => (Some(path), None),
                _ => (None, None),
            };
            let mut actions: Vec<Action> = from
                .map(|f| Action::Removed(f.clone()))
                .into_iter()
                .collect();
            if let Some(to) = to.filter(|p| watched(p)) {
                actions.push(if on_disk(to) == OnDisk::Folder {
                    Action::Scan(to.clone())
                } else {
                    // Renamed into place: written in full elsewhere.
                    Action::Closed(to.clone())
                });
            }
            actions
        }
        EventKind::Modify(ModifyKind::Metadata(_)) => Vec::new(),
        EventKind::Modify(_) => event
            .paths
            .iter()
            .filter(inside)
            .filter(|p| on_disk(p) == OnDisk::File)
            .map(|p| Action::Written(p.clone()))
            .collect(),
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => event
            .paths
            .iter()
            .filter(inside)
            .map(|p| Action::Closed(p.clone()))
            .collect(),
        EventKind::Remove(_) => event
            .paths
            .iter()
            .map(|p| Action::Removed(p.clone()))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{DataChange, Flag, MetadataKind, RemoveKind};
    use Action::*;
    use OnDisk::{File, Folder, Other};

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    fn event(kind: EventKind, paths: &[&str]) -> Event {
        paths
            .iter()
            .fold(Event::new(kind), |e, path| e.add_path(p(path)))
    }

    /// Paths under `/in` are watched, except `/in/Filed`; `disk` lists what exists and how.
    fn run(e: &Event, disk: &[(&str, OnDisk)]) -> Vec<Action> {
        classify(
            e,
            |path| path.starts_with("/in") && !path.starts_with("/in/Filed"),
            |path| {
                disk.iter()
                    .find(|(d, _)| Path::new(d) == path)
                    .map_or(Other, |(_, k)| *k)
            },
        )
    }

    #[test]
    fn each_event_leads_to_exactly_these_actions() {
        let rename = |mode| EventKind::Modify(ModifyKind::Name(mode));
        #[rustfmt::skip]
        let table: Vec<(&str, Event, Vec<(&str, OnDisk)>, Vec<Action>)> = vec![
            ("a new file is being written",
             event(EventKind::Create(CreateKind::File), &["/in/a.pdf"]), vec![("/in/a.pdf", File)],
             vec![Written(p("/in/a.pdf"))]),
            ("a new folder is read",
             event(EventKind::Create(CreateKind::Folder), &["/in/Ana"]), vec![("/in/Ana", Folder)],
             vec![Scan(p("/in/Ana"))]),
            ("a create of unknown kind that is a folder is read",
             event(EventKind::Create(CreateKind::Any), &["/in/Ana"]), vec![("/in/Ana", Folder)],
             vec![Scan(p("/in/Ana"))]),
            ("a file outside the watched folders is ignored",
             event(EventKind::Create(CreateKind::File), &["/tmp/x.pdf"]), vec![("/tmp/x.pdf", File)],
             vec![]),
            ("a file in Filed/ is ignored",
             event(EventKind::Create(CreateKind::File), &["/in/Filed/Ana/a.pdf"]), vec![],
             vec![]),
            ("more data in a file",
             event(EventKind::Modify(ModifyKind::Data(DataChange::Content)), &["/in/a.pdf"]), vec![("/in/a.pdf", File)],
             vec![Written(p("/in/a.pdf"))]),
            ("a modify of something no longer a file does nothing",
             event(EventKind::Modify(ModifyKind::Data(DataChange::Any)), &["/in/a.pdf"]), vec![],
             vec![]),
            ("a metadata touch (antivirus, NAS indexer) does nothing",
             event(EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)), &["/in/a.pdf"]), vec![("/in/a.pdf", File)],
             vec![]),
            ("closed after writing",
             event(EventKind::Access(AccessKind::Close(AccessMode::Write)), &["/in/a.pdf"]), vec![("/in/a.pdf", File)],
             vec![Closed(p("/in/a.pdf"))]),
            ("closed after reading does nothing",
             event(EventKind::Access(AccessKind::Close(AccessMode::Read)), &["/in/a.pdf"]), vec![("/in/a.pdf", File)],
             vec![]),
            ("a download renamed into place is complete",
             event(rename(RenameMode::Both), &["/in/a.pdf.part", "/in/a.pdf"]), vec![("/in/a.pdf", File)],
             vec![Removed(p("/in/a.pdf.part")), Closed(p("/in/a.pdf"))]),
            ("a folder moved in is read",
             event(rename(RenameMode::Both), &["/tmp/Ana", "/in/Ana"]), vec![("/in/Ana", Folder)],
             vec![Removed(p("/tmp/Ana")), Scan(p("/in/Ana"))]),
            ("a file moved out is forgotten",
             event(rename(RenameMode::Both), &["/in/a.pdf", "/tmp/a.pdf"]), vec![("/tmp/a.pdf", File)],
             vec![Removed(p("/in/a.pdf"))]),
            ("the lone 'from' half of a rename",
             event(rename(RenameMode::From), &["/in/a.pdf"]), vec![],
             vec![Removed(p("/in/a.pdf"))]),
            ("a lone 'to' half whose path exists arrived",
             event(rename(RenameMode::To), &["/in/b.pdf"]), vec![("/in/b.pdf", File)],
             vec![Closed(p("/in/b.pdf"))]),
            ("a lone half of unknown direction whose path is gone left",
             event(rename(RenameMode::Any), &["/in/b.pdf"]), vec![],
             vec![Removed(p("/in/b.pdf"))]),
            ("a deletion is forgotten, watched or not",
             event(EventKind::Remove(RemoveKind::File), &["/in/a.pdf"]), vec![],
             vec![Removed(p("/in/a.pdf"))]),
            ("lost events rescan everything",
             event(EventKind::Other, &[]).set_flag(Flag::Rescan), vec![],
             vec![RescanAll]),
        ];
        for (case, e, disk, expected) in table {
            assert_eq!(run(&e, &disk), expected, "{case}");
        }
    }
}
