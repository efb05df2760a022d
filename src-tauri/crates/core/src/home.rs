//! Where the app and the CLI keep their state: the platform's app-data folder, or
//! `$ATTACHE_HOME` when set (tests and scripts rely on that to stay isolated).

use std::path::{Path, PathBuf};

/// The root of all local state, and the well-known paths under it.
#[derive(Debug, Clone)]
pub struct AppHome {
    root: PathBuf,
}

impl AppHome {
    pub const ENV: &'static str = "ATTACHE_HOME";

    /// `$ATTACHE_HOME`, else the platform data folder (e.g. `~/.local/share/attache`).
    pub fn discover() -> std::io::Result<Self> {
        if let Some(dir) = std::env::var_os(Self::ENV).filter(|v| !v.is_empty()) {
            return Self::at(PathBuf::from(dir));
        }
        let dirs =
            directories::ProjectDirs::from("app", "Attache", "attache").ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no home folder found; set ATTACHE_HOME to a folder Attaché may use",
                )
            })?;
        Self::at(dirs.data_dir().to_path_buf())
    }

    /// Uses `root`, creating it and its sub-folders. The root is private to the user (0700 on
    /// Unix): it holds copies of clients' documents.
    pub fn at(root: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&root)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700))?;
        }
        let home = Self { root };
        for dir in [
            home.files_dir(),
            home.previews_dir(),
            home.demo_dir(),
            home.logs_dir(),
        ] {
            std::fs::create_dir_all(dir)?;
        }
        Ok(home)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn config_file(&self) -> PathBuf {
        self.root.join("config.json")
    }
    pub fn cache_db(&self) -> PathBuf {
        self.root.join("cache.sqlite3")
    }
    /// Downloaded attachments, one folder per account and attachment.
    pub fn files_dir(&self) -> PathBuf {
        self.root.join("files")
    }
    /// Downloaded preview renditions.
    pub fn previews_dir(&self) -> PathBuf {
        self.root.join("previews")
    }
    /// Rendered thumbnails (grid and preview sizes), capped and evicted least recently used.
    pub fn thumbs_dir(&self) -> PathBuf {
        self.root.join("thumbs")
    }
    /// The Demo site's data (its contacts and files).
    pub fn demo_dir(&self) -> PathBuf {
        self.root.join("demo")
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }
    /// The upload queue: durable state, kept apart from the cache (which may be rebuilt).
    pub fn queue_db(&self) -> PathBuf {
        self.root.join("queue.sqlite3")
    }
    /// The inbox folders' files: what was filed where, and what waits for review.
    pub fn inbox_db(&self) -> PathBuf {
        self.root.join("inbox.sqlite3")
    }
    /// Held (an OS file lock) by the one process that watches the inbox folders at a time.
    pub fn inbox_lock(&self) -> PathBuf {
        self.root.join("inbox.lock")
    }
    /// Held (an OS file lock) by the one process that runs the upload queue at a time.
    pub fn queue_lock(&self) -> PathBuf {
        self.root.join("queue.lock")
    }
    /// Images converted on request (WebP/BMP/TIFF to PNG/JPEG) before upload.
    pub fn converted_dir(&self) -> PathBuf {
        self.root.join("converted")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn the_home_folder_is_private_to_the_user() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("attache");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        AppHome::at(root.clone()).unwrap();
        let mode = std::fs::metadata(&root).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "an existing home is made private too");
        let fresh = dir.path().join("new/attache");
        AppHome::at(fresh.clone()).unwrap();
        assert_eq!(
            std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
}
