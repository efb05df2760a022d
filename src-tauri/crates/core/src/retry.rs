//! Exponential backoff with full jitter, honouring `Retry-After`: the policy every CRM client
//! and the upload engine retry transient failures with, and [`retrying`], the one loop that
//! applies it (no client writes its own).

use std::future::Future;
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Total attempts, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// No retries: for tests that want to see the first failure.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The pause before attempt `attempt + 1` (attempt counts from 1). A server's `Retry-After`
    /// wins when present (capped at `max_delay`); otherwise a uniformly random delay in
    /// `[0, min(max, base * 2^(attempt-1))]` ("full jitter").
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max_delay);
        }
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let ceiling = exp.min(self.max_delay);
        ceiling.mul_f64(fastrand::f64())
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Final: give the error to the caller.
    Stop,
    /// Worth another try, after the policy's pause (or the server's `Retry-After`).
    Again { retry_after: Option<Duration> },
}

/// Runs `attempt` (numbered from 1) until it succeeds, `decide` says [`Retry::Stop`], or the
/// policy's attempts are spent, pausing [`RetryPolicy::delay`] between tries. `decide` sees each
/// failure and its attempt number.
pub async fn retrying<T, E, Fut>(
    policy: &RetryPolicy,
    mut attempt: impl FnMut(u32) -> Fut,
    mut decide: impl FnMut(&E, u32) -> Retry,
) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
{
    let mut n = 0;
    loop {
        n += 1;
        let err = match attempt(n).await {
            Ok(value) => return Ok(value),
            Err(e) => e,
        };
        match decide(&err, n) {
            Retry::Again { retry_after } if n < policy.max_attempts => {
                tokio::time::sleep(policy.delay(n, retry_after)).await
            }
            _ => return Err(err),
        }
    }
}

/// HTTP statuses worth retrying: throttling and transient server failures, never other 4xx.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 429 | 500 | 503 | 504)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_is_bounded_and_honours_retry_after() {
        let p = RetryPolicy::default();
        for attempt in 1..10 {
            assert!(p.delay(attempt, None) <= p.max_delay);
        }
        assert!(p.delay(1, None) <= p.base_delay);
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(p.delay(1, Some(Duration::from_secs(600))), p.max_delay);
    }

    #[tokio::test(start_paused = true)]
    async fn the_loop_tries_until_success_stop_or_the_last_attempt() {
        let policy = RetryPolicy::default();
        let calls = std::cell::Cell::new(0);
        let ok: Result<u32, &str> = retrying(
            &policy,
            |n| {
                calls.set(n);
                async move {
                    if n < 3 {
                        Err("busy")
                    } else {
                        Ok(n)
                    }
                }
            },
            |_, _| Retry::Again { retry_after: None },
        )
        .await;
        assert_eq!(ok, Ok(3));
        let spent: Result<(), &str> = retrying(
            &policy,
            |_| async { Err("busy") },
            |_, _| Retry::Again {
                retry_after: Some(Duration::from_secs(1)),
            },
        )
        .await;
        assert_eq!(spent, Err("busy"));
        let seen = std::cell::Cell::new(0);
        let stopped: Result<(), &str> = retrying(
            &policy,
            |n| {
                seen.set(n);
                async { Err("refused") }
            },
            |_, _| Retry::Stop,
        )
        .await;
        assert_eq!((stopped, seen.get()), (Err("refused"), 1));
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn only_transient_statuses_retry() {
        for s in [429, 500, 503, 504] {
            assert!(is_retryable_status(s));
        }
        for s in [400, 401, 403, 404, 409, 501] {
            assert!(!is_retryable_status(s));
        }
    }
}
