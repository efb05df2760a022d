//! The request body of an upload: the file streamed in fixed chunks (constant memory whatever
//! its size), checked against the file the job was queued with.
//!
//! The last chunk is held back until the end of the file has been reached and the file's size
//! and modification time (nanoseconds) are still those the job recorded when it hashed the
//! content, so a file edited mid-upload makes the body fail *before* the server has all the
//! bytes: the server sees a broken request and attaches nothing, and the engine re-reads the
//! file and sends it as it now is. Size + mtime is rsync's quick check; hashing again while
//! sending would cost a second full pass of CPU on the path that must keep up with the network.
//! Hand-written because no crate streams a file with a held-back, checked tail.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use bytes::{Bytes, BytesMut};
use futures::Stream;
use tokio::io::AsyncReadExt;

/// Read size: big enough for loopback line rate, small enough for smooth progress.
const CHUNK: usize = 256 * 1024;

/// Shared between the body and the engine: bytes handed to the transport so far, and whether
/// the body stopped because the file changed.
#[derive(Debug, Default)]
pub struct Progress {
    sent: AtomicU64,
    changed: AtomicBool,
}

impl Progress {
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
    pub fn file_changed(&self) -> bool {
        self.changed.load(Ordering::Relaxed)
    }
    pub fn reset(&self) {
        self.restart_at(0);
    }
    /// A resumed upload: the server already holds `offset` bytes.
    pub fn restart_at(&self, offset: u64) {
        self.sent.store(offset, Ordering::Relaxed);
        self.changed.store(false, Ordering::Relaxed);
    }
}

/// One file to send, as the job knows it.
#[derive(Debug, Clone)]
pub struct UploadSource {
    pub path: PathBuf,
    pub file_name: String,
    pub mime_type: String,
    pub size: u64,
    /// Modification time (ns since the epoch) when the content was hashed.
    pub modified_ns: i64,
    pub content_hash: String,
    pub progress: Arc<Progress>,
}

#[derive(Debug, thiserror::Error)]
#[error("the file changed while it was being uploaded")]
pub struct FileChanged;

struct BodyState {
    path: PathBuf,
    file: Option<tokio::fs::File>,
    expected_size: u64,
    expected_modified_ns: i64,
    read: u64,
    held: Option<Bytes>,
    progress: Arc<Progress>,
    finished: bool,
    /// A byte range of the file (a resumable upload's chunk): where it starts and how long it
    /// is. `None` streams the whole file.
    range: Option<(u64, u64)>,
}

impl BodyState {
    fn changed(&mut self) -> io::Error {
        self.finished = true;
        self.progress.changed.store(true, Ordering::Relaxed);
        io::Error::other(FileChanged)
    }

    fn release(&mut self, chunk: Bytes) -> Bytes {
        self.progress
            .sent
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        chunk
    }

    async fn next_chunk(&mut self) -> Option<io::Result<Bytes>> {
        loop {
            if self.finished {
                return None;
            }
            if self.file.is_none() {
                let path = self.path.clone();
                let opened = tokio::task::spawn_blocking(move || open_plain(&path))
                    .await
                    .unwrap_or_else(|e| Err(io::Error::other(e)));
                let mut file = match opened {
                    Ok(f) => tokio::fs::File::from_std(f),
                    Err(e) => {
                        self.finished = true;
                        return Some(Err(e));
                    }
                };
                if let Some((start, _)) = self.range {
                    use tokio::io::AsyncSeekExt;
                    if let Err(e) = file.seek(io::SeekFrom::Start(start)).await {
                        self.finished = true;
                        return Some(Err(e));
                    }
                }
                self.file = Some(file);
            }
            let want = match self.range {
                Some((_, len)) => (len - self.read).min(CHUNK as u64) as usize,
                None => CHUNK,
            };
            if want == 0 {
                // The range is complete: the file must still be the one the job recorded.
                if stat(&self.path).ok() != Some((self.expected_size, self.expected_modified_ns)) {
                    return Some(Err(self.changed()));
                }
                self.finished = true;
                return self.held.take().map(|c| Ok(self.release(c)));
            }
            let mut buf = BytesMut::with_capacity(want);
            let file = self.file.as_mut().expect("opened above");
            let n = match file
                .read_buf(&mut bytes::BufMut::limit(&mut buf, want))
                .await
            {
                Ok(n) => n,
                Err(e) => {
                    self.finished = true;
                    return Some(Err(e));
                }
            };
            if n == 0 && self.range.is_some() {
                // Shorter than the range: the file was truncated.
                return Some(Err(self.changed()));
            }
            if n == 0 {
                let now = stat(&self.path).ok();
                if self.read != self.expected_size
                    || now != Some((self.expected_size, self.expected_modified_ns))
                {
                    return Some(Err(self.changed()));
                }
                self.finished = true;
                return self.held.take().map(|c| Ok(self.release(c)));
            }
            self.read += n as u64;
            if self.read > self.expected_size {
                return Some(Err(self.changed()));
            }
            if let Some(previous) = self.held.replace(buf.freeze()) {
                return Some(Ok(self.release(previous)));
            }
        }
    }
}

/// The verified byte stream for `source` (see the module docs).
pub fn verified_body(
    source: &UploadSource,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    source.progress.reset();
    body_stream(source, None)
}

/// `len` bytes of `source` from `offset` (a chunk of a resumable upload), verified the same
/// way: the last piece is held back until the file is seen unchanged. Progress counts on from
/// whatever the caller set (see [`Progress::restart_at`]).
pub fn verified_range(
    source: &UploadSource,
    offset: u64,
    len: u64,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    body_stream(source, Some((offset, len)))
}

fn body_stream(
    source: &UploadSource,
    range: Option<(u64, u64)>,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let state = BodyState {
        path: source.path.clone(),
        file: None,
        expected_size: source.size,
        expected_modified_ns: source.modified_ns,
        read: 0,
        held: None,
        progress: source.progress.clone(),
        finished: false,
        range,
    };
    futures::stream::unfold(state, |mut state| async move {
        let item = state.next_chunk().await?;
        Some((item, state))
    })
}

/// Opens a file to be sent, never through a link: a link put in the file's place after it was
/// checked (to `~/.ssh/id_rsa`, say) fails here instead of being read. Only regular files open
/// (a FIFO would block the reader for ever; a device is not a document).
pub fn open_plain(path: &Path) -> io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|e| {
        #[cfg(unix)]
        if e.raw_os_error() == Some(libc::ELOOP) {
            return io::Error::new(
                io::ErrorKind::InvalidInput,
                "it is a link, and links are not followed",
            );
        }
        e
    })?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is not a regular file",
        ));
    }
    Ok(file)
}

/// Size and modification time, the cheap identity checked before and after reading (of the
/// path itself: a link is not followed).
pub fn stat(path: &Path) -> std::io::Result<(u64, i64)> {
    let meta = std::fs::symlink_metadata(path)?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    Ok((meta.len(), modified))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn source(path: PathBuf, bytes: &[u8]) -> UploadSource {
        UploadSource {
            modified_ns: stat(&path).unwrap().1,
            path,
            file_name: "f.bin".into(),
            mime_type: "application/pdf".into(),
            size: bytes.len() as u64,
            content_hash: blake3::hash(bytes).to_hex().to_string(),
            progress: Arc::default(),
        }
    }

    async fn collect(source: &UploadSource) -> Result<Vec<u8>, io::Error> {
        let mut out = Vec::new();
        let mut body = std::pin::pin!(verified_body(source));
        while let Some(chunk) = body.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn a_range_streams_exactly_its_bytes_and_notices_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let bytes: Vec<u8> = (0..CHUNK * 3 + 5).map(|i| (i % 253) as u8).collect();
        let path = dir.path().join("r.bin");
        std::fs::write(&path, &bytes).unwrap();
        let src = source(path.clone(), &bytes);
        src.progress.restart_at(100);
        let mut got = Vec::new();
        let mut body = std::pin::pin!(verified_range(&src, 100, CHUNK as u64 + 7));
        while let Some(chunk) = body.next().await {
            got.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(got, &bytes[100..100 + CHUNK + 7]);
        assert_eq!(src.progress.sent(), 100 + CHUNK as u64 + 7);
        std::fs::write(&path, &bytes[..CHUNK]).unwrap();
        let mut body = std::pin::pin!(verified_range(&src, 10, CHUNK as u64 * 2));
        let mut failed = false;
        while let Some(chunk) = body.next().await {
            failed |= chunk.is_err();
        }
        assert!(
            failed && src.progress.file_changed(),
            "a truncated file fails the range"
        );
    }

    #[tokio::test]
    async fn streams_the_file_exactly_and_counts_progress() {
        let dir = tempfile::tempdir().unwrap();
        let bytes: Vec<u8> = (0..CHUNK * 2 + 17).map(|i| (i % 251) as u8).collect();
        let path = dir.path().join("f.bin");
        std::fs::write(&path, &bytes).unwrap();
        let src = source(path, &bytes);
        assert_eq!(collect(&src).await.unwrap(), bytes);
        assert_eq!(src.progress.sent(), bytes.len() as u64);
        assert!(!src.progress.file_changed());
    }

    #[tokio::test]
    async fn a_changed_file_fails_before_its_last_bytes_are_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        let original = vec![1u8; CHUNK + 10];
        std::fs::write(&path, &original).unwrap();
        let src = source(path.clone(), &original);
        let mut edited = original.clone();
        edited[5] = 2;
        std::thread::sleep(std::time::Duration::from_millis(5));
        std::fs::write(&path, &edited).unwrap();
        let mut body = std::pin::pin!(verified_body(&src));
        let first = body.next().await.unwrap().unwrap();
        assert_eq!(
            first.len(),
            CHUNK,
            "the first chunk goes out once the next one is read"
        );
        assert!(body.next().await.unwrap().is_err(), "the tail is withheld");
        assert!(src.progress.file_changed());
        assert!(src.progress.sent() < original.len() as u64);

        std::fs::write(&path, [original.clone(), vec![0]].concat()).unwrap();
        assert!(
            collect(&src).await.is_err(),
            "a file that grew is refused too"
        );
    }
}
