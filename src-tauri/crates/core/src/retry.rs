//! Exponential backoff with full jitter, honouring `Retry-After`: the policy every CRM client
//! retries transient failures with.

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
