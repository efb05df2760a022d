//! What the inbox checks before it reads, moves or deletes a file it did not create: that the
//! file is a regular file reached from the watched folder through real folders only (a link,
//! or a linked folder named after a client, would make it upload and then move or delete the
//! link's target: someone's `~/.ssh`), and, before moving or deleting, that it is still exactly
//! the file whose upload was verified (a scanner that overwrote `scan.pdf` since must not have
//! the new version moved away unsent).
//!
//! A link swapped in between a check and the read that follows cannot be ruled out by a path
//! check alone; the upload engine's content check (size, time, hash) catches a swap made after
//! the file was queued only as "changed", which it then sends as it is. Noted as a limit.

use std::path::{Component, Path, PathBuf};

use attache_core::upload::{stat, UploadJob};

/// Why a path is not one the inbox may touch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotPlain {
    #[error("{0} is a link; Attaché files only regular files inside the watched folder and leaves links alone")]
    Link(PathBuf),
    #[error("{0} is not a regular file")]
    NotAFile(PathBuf),
    #[error("{0} is not inside the watched folder")]
    Outside(PathBuf),
    #[error("{0} is gone")]
    Gone(PathBuf),
}

/// Whether `path` is a regular file under `inbox` with no link on the way (the watched folder
/// itself may be a link: the user chose it).
pub fn plain_file_inside(inbox: &Path, path: &Path) -> Result<(), NotPlain> {
    let relative = path
        .strip_prefix(inbox)
        .map_err(|_| NotPlain::Outside(path.to_owned()))?;
    let parts: Vec<Component> = relative.components().collect();
    if parts.is_empty() {
        return Err(NotPlain::NotAFile(path.to_owned()));
    }
    let mut at = inbox.to_path_buf();
    for (i, part) in parts.iter().enumerate() {
        match part {
            Component::Normal(name) => at.push(name),
            _ => return Err(NotPlain::Outside(path.to_owned())),
        }
        let meta = std::fs::symlink_metadata(&at).map_err(|_| NotPlain::Gone(at.clone()))?;
        let last = i + 1 == parts.len();
        if meta.file_type().is_symlink() {
            return Err(NotPlain::Link(at));
        }
        if (last && !meta.is_file()) || (!last && !meta.is_dir()) {
            return Err(NotPlain::NotAFile(at));
        }
    }
    Ok(())
}

/// Whether the file at `path` holds exactly what `job` sent and verified: its size and content
/// hash. (Not its path or time: a second copy of a file already attached is put away as the
/// first's upload, and is that same content.)
pub fn is_the_sent_file(path: &Path, job: &UploadJob) -> bool {
    match stat(path) {
        Ok((size, _)) if size == job.size => {
            crate::uploads::hash_file(path).is_ok_and(|hash| hash == job.content_hash)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_reached_through_real_folders_pass() {
        let root = tempfile::tempdir().unwrap();
        let inbox = root.path().join("Inbox");
        let secrets = root.path().join("secrets");
        std::fs::create_dir_all(inbox.join("Ana Silva")).unwrap();
        std::fs::create_dir_all(&secrets).unwrap();
        std::fs::write(secrets.join("id_rsa"), "private").unwrap();
        std::fs::write(inbox.join("Ana Silva/offer.pdf"), "%PDF").unwrap();
        std::os::unix::fs::symlink(&secrets, inbox.join("Noah Brooks")).unwrap();
        std::os::unix::fs::symlink(secrets.join("id_rsa"), inbox.join("key.pdf")).unwrap();

        assert_eq!(
            plain_file_inside(&inbox, &inbox.join("Ana Silva/offer.pdf")),
            Ok(())
        );
        assert_eq!(
            plain_file_inside(&inbox, &inbox.join("Noah Brooks/id_rsa")),
            Err(NotPlain::Link(inbox.join("Noah Brooks")))
        );
        assert_eq!(
            plain_file_inside(&inbox, &inbox.join("key.pdf")),
            Err(NotPlain::Link(inbox.join("key.pdf")))
        );
        assert_eq!(
            plain_file_inside(&inbox, &inbox.join("Ana Silva")),
            Err(NotPlain::NotAFile(inbox.join("Ana Silva")))
        );
        assert_eq!(
            plain_file_inside(&inbox, &inbox.join("../secrets/id_rsa")),
            Err(NotPlain::Outside(inbox.join("../secrets/id_rsa")))
        );
        assert_eq!(
            plain_file_inside(&inbox, &secrets.join("id_rsa")),
            Err(NotPlain::Outside(secrets.join("id_rsa")))
        );
        assert!(matches!(
            plain_file_inside(&inbox, &inbox.join("gone.pdf")),
            Err(NotPlain::Gone(_))
        ));
        // A watched folder that is itself a link (the user chose it) is fine.
        let linked_inbox = root.path().join("Scans");
        std::os::unix::fs::symlink(&inbox, &linked_inbox).unwrap();
        assert_eq!(
            plain_file_inside(&linked_inbox, &linked_inbox.join("Ana Silva/offer.pdf")),
            Ok(())
        );
    }
}
