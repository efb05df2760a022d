//! The thumbnail disk cache: one file per key (a content hash for local files, an account and
//! remote id for CRM files) and size, capped in bytes, least recently used evicted first.
//!
//! Recency is the file's modification time, bumped on every hit: no index to keep in step with
//! the files, and a crash can at worst leave a file that is evicted later.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::render::Thumbnail;

pub struct ThumbCache {
    dir: PathBuf,
    cap_bytes: u64,
}

impl ThumbCache {
    pub fn new(dir: PathBuf, cap_bytes: u64) -> Self {
        Self { dir, cap_bytes }
    }

    fn file(&self, key: &str, size: u32, ext: &str) -> PathBuf {
        // Keys come from ids and hashes; anything else is replaced so a key can never name a
        // path outside the cache.
        let safe: String = key
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.dir.join(format!("{safe}-{size}.{ext}"))
    }

    /// The cached thumbnail for `key` at `size`, if any (marked as just used).
    pub fn get(&self, key: &str, size: u32) -> Option<(PathBuf, &'static str)> {
        for (ext, mime) in [("jpg", "image/jpeg"), ("png", "image/png")] {
            let path = self.file(key, size, ext);
            if let Ok(file) = std::fs::File::options().append(true).open(&path) {
                let _ = file.set_modified(SystemTime::now());
                return Some((path, mime));
            }
        }
        None
    }

    /// Stores a thumbnail (written beside and renamed into place), then trims the cache.
    pub fn put(&self, key: &str, size: u32, thumb: &Thumbnail) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.file(key, size, thumb.extension());
        let partial = path.with_extension("partial");
        std::fs::write(&partial, &thumb.bytes)?;
        std::fs::rename(&partial, &path)?;
        self.trim(&path)?;
        Ok(path)
    }

    /// Deletes the least recently used files until the cache fits its cap (never `keep`).
    fn trim(&self, keep: &Path) -> std::io::Result<()> {
        let mut files: Vec<(SystemTime, u64, PathBuf)> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                meta.is_file().then(|| {
                    (
                        meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                        meta.len(),
                        e.path(),
                    )
                })
            })
            .collect();
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        if total <= self.cap_bytes {
            return Ok(());
        }
        files.sort_by_key(|f| f.0);
        for (_, len, path) in files {
            if total <= self.cap_bytes {
                break;
            }
            if path != keep && std::fs::remove_file(&path).is_ok() {
                total -= len;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn thumb(n: usize) -> Thumbnail {
        Thumbnail {
            bytes: vec![7; n],
            width: 1,
            height: 1,
            mime: "image/jpeg",
        }
    }

    #[test]
    fn least_recently_used_files_go_first() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ThumbCache::new(dir.path().to_path_buf(), 2500);
        cache.put("a", 256, &thumb(1000)).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        cache.put("b", 256, &thumb(1000)).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            cache.get("a", 256).is_some(),
            "a is used again: now the most recent"
        );
        std::thread::sleep(Duration::from_millis(20));
        cache.put("c", 256, &thumb(1000)).unwrap();
        assert!(cache.get("a", 256).is_some());
        assert!(
            cache.get("b", 256).is_none(),
            "b was the least recently used"
        );
        assert!(cache.get("c", 256).is_some());
        assert!(cache.get("a", 1024).is_none(), "sizes are cached apart");
        // A key cannot escape the folder.
        let path = cache.put("../../etc/passwd", 256, &thumb(10)).unwrap();
        assert!(path.starts_with(dir.path()));
    }
}
