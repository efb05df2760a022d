//! A TCP proxy for tests that need a bad network between a client and a real server: it can
//! cut the connection on which client-to-server traffic first passes a byte count, and throttle
//! that direction to a rate, and it counts the bytes that went upstream.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, Default)]
pub struct Behaviour {
    /// Cut (once) the connection that carries upstream byte number `cut_after`.
    pub cut_after: Option<u64>,
    /// Upstream bytes per second, all connections together.
    pub bytes_per_sec: Option<u64>,
}

pub struct Proxy {
    pub port: u16,
    /// Client-to-server bytes forwarded so far.
    pub upstream_bytes: Arc<AtomicU64>,
    /// Whether the cut happened.
    pub cut: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Listens on a free loopback port and forwards to `127.0.0.1:upstream`.
pub async fn start(upstream: u16, behaviour: Behaviour) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let upstream_bytes = Arc::new(AtomicU64::new(0));
    let cut = Arc::new(AtomicBool::new(false));
    let (total, done) = (upstream_bytes.clone(), cut.clone());
    let started = Instant::now();
    let task = tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let (total, done) = (total.clone(), done.clone());
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let down = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                });
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match cr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let before = total.fetch_add(n as u64, Ordering::SeqCst);
                    if let Some(limit) = behaviour.cut_after {
                        if !done.load(Ordering::SeqCst) && before + n as u64 > limit {
                            done.store(true, Ordering::SeqCst);
                            let keep = limit.saturating_sub(before) as usize;
                            let _ = sw.write_all(&buf[..keep]).await;
                            break; // drops both halves: the connection dies mid-request
                        }
                    }
                    if sw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    if let Some(rate) = behaviour.bytes_per_sec {
                        let due = Duration::from_secs_f64((before + n as u64) as f64 / rate as f64);
                        let elapsed = started.elapsed();
                        if due > elapsed {
                            tokio::time::sleep(due - elapsed).await;
                        }
                    }
                }
                down.abort();
            });
        }
    });
    Proxy {
        port,
        upstream_bytes,
        cut,
        task,
    }
}
