//! Fault injection, switchable at start (`attache sandbox --faults SPEC`) or at run time
//! (`PUT /_admin/faults` with the JSON form), so tests can show the client recovering from
//! each failure Wix and its upload hosts are known to produce.
//!
//! SPEC is comma-separated `name=value`: `latency=50ms`, `5xx=0.1` (share of requests answered
//! 500/503/504 before any work), `429=0.05` (share answered 429 with `Retry-After: 1`),
//! `reset=0.1` (share of upload PUTs cut off mid-body; nothing stored), `lost=0.05` (share of
//! upload PUTs stored and then answered 503, as when the connection dies after the commit),
//! `stall=0.05` (share of upload PUTs whose body stops being read after the first piece, for
//! [`STALL_HOLD`], as a congested or sleeping peer does; nothing stored),
//! `url-ttl=2s` (upload URLs expire), `expired=0.2` (share of upload URLs found
//! expired when used), `rate=200` (requests per minute per site, 429 beyond), `list-lag=500ms`
//! (a new attachment is left out of its contact's list for that long after it was stored, as
//! an eventually consistent listing does), `rename=nfc` or `rename=cleaned` (the name an
//! upload is stored under is not quite the one sent: Unicode-normalised to NFC, or that and
//! the characters many servers refuse, `\ / : * ? " < > | # % & { }` and controls, replaced by
//! `_`, as CRMs that tidy file names do).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How long a stalled upload is held before the site gives up on it (clients give up first).
pub const STALL_HOLD: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Faults {
    pub latency_ms: u64,
    pub error_rate: f64,
    pub throttle_rate: f64,
    pub reset_rate: f64,
    pub lost_response_rate: f64,
    pub upload_url_ttl_ms: Option<u64>,
    pub expired_url_rate: f64,
    pub rate_limit_per_minute: Option<u32>,
    pub list_lag_ms: u64,
    pub rename: Renaming,
    pub stall_rate: f64,
}

/// How the site changes the name an upload is stored under.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Renaming {
    /// Stored as sent.
    #[default]
    None,
    /// Unicode-normalised to NFC ("Cafe\u{301}" is stored "Caf\u{e9}").
    Nfc,
    /// NFC, and each character servers often refuse replaced by `_`.
    Cleaned,
}

impl Renaming {
    pub fn apply(self, name: &str) -> String {
        if self == Renaming::None {
            return name.to_owned();
        }
        let nfc = icu_normalizer::ComposingNormalizerBorrowed::new_nfc().normalize(name);
        if self == Renaming::Nfc {
            return nfc.into_owned();
        }
        nfc.chars()
            .map(|c| match c {
                '\\' | '/' | ':' | '*' | '?' | '"' | '<' | '>' | '|' | '#' | '%' | '&' | '{'
                | '}' => '_',
                c if c.is_control() => '_',
                c => c,
            })
            .collect()
    }
}

impl Faults {
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut faults = Faults::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected name=value"))?;
            let share = || -> Result<f64, String> {
                let v: f64 = value
                    .parse()
                    .map_err(|_| format!("{name}: {value:?} is not a number"))?;
                if (0.0..=1.0).contains(&v) {
                    Ok(v)
                } else {
                    Err(format!("{name}: a share between 0 and 1, not {v}"))
                }
            };
            match name {
                "latency" => faults.latency_ms = millis(value)?,
                "5xx" => faults.error_rate = share()?,
                "429" => faults.throttle_rate = share()?,
                "reset" => faults.reset_rate = share()?,
                "lost" => faults.lost_response_rate = share()?,
                "expired" => faults.expired_url_rate = share()?,
                "stall" => faults.stall_rate = share()?,
                "url-ttl" => faults.upload_url_ttl_ms = Some(millis(value)?),
                "list-lag" => faults.list_lag_ms = millis(value)?,
                "rename" => {
                    faults.rename = match value {
                        "none" => Renaming::None,
                        "nfc" => Renaming::Nfc,
                        "cleaned" => Renaming::Cleaned,
                        other => return Err(format!("rename: none, nfc or cleaned, not {other:?}")),
                    }
                }
                "rate" => {
                    faults.rate_limit_per_minute =
                        Some(value.parse().map_err(|_| format!("rate: {value:?} is not a whole number"))?)
                }
                other => return Err(format!("unknown fault {other:?} (latency, 5xx, 429, reset, lost, expired, stall, url-ttl, rate, list-lag, rename)")),
            }
        }
        Ok(faults)
    }

    /// True with probability `share`.
    pub fn roll(share: f64) -> bool {
        share > 0.0 && fastrand::f64() < share
    }
}

fn millis(value: &str) -> Result<u64, String> {
    let (number, scale) = if let Some(v) = value.strip_suffix("ms") {
        (v, 1)
    } else if let Some(v) = value.strip_suffix('s') {
        (v, 1000)
    } else {
        (value, 1)
    };
    number
        .parse::<u64>()
        .map(|n| n * scale)
        .map_err(|_| format!("{value:?} is not a duration like 50ms or 2s"))
}

/// Requests in the last minute, for the per-site rate limit.
#[derive(Default)]
pub struct RateWindow {
    seen: Mutex<VecDeque<Instant>>,
}

impl RateWindow {
    /// `None` when the request may go ahead; otherwise how long until it could.
    pub fn admit(&self, per_minute: u32) -> Option<Duration> {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        while seen
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            seen.pop_front();
        }
        if seen.len() < per_minute as usize {
            seen.push_back(now);
            return None;
        }
        let oldest = *seen.front().expect("full window");
        Some(Duration::from_secs(60).saturating_sub(now.duration_since(oldest)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_fault_and_refuses_nonsense() {
        let f = Faults::parse(
            "latency=50ms, 5xx=0.1,429=0.05,reset=0.2,lost=0.3,url-ttl=2s,expired=0.4,rate=200,list-lag=1s,rename=nfc,stall=0.5",
        )
        .unwrap();
        assert_eq!(
            f,
            Faults {
                latency_ms: 50,
                error_rate: 0.1,
                throttle_rate: 0.05,
                reset_rate: 0.2,
                lost_response_rate: 0.3,
                upload_url_ttl_ms: Some(2000),
                expired_url_rate: 0.4,
                rate_limit_per_minute: Some(200),
                list_lag_ms: 1000,
                rename: Renaming::Nfc,
                stall_rate: 0.5,
            }
        );
        assert!(Faults::parse("rename=upper").is_err());
        assert!(Faults::parse("5xx=2").is_err());
        assert!(Faults::parse("boom=1").is_err());
        assert!(Faults::parse("latency").is_err());
        assert_eq!(Faults::parse("").unwrap(), Faults::default());
    }

    #[test]
    fn renaming_normalises_and_cleans() {
        let nfd = "Cafe\u{301} #2: a/b.pdf";
        assert_eq!(Renaming::None.apply(nfd), nfd);
        assert_eq!(Renaming::Nfc.apply(nfd), "Caf\u{e9} #2: a/b.pdf");
        assert_eq!(Renaming::Cleaned.apply(nfd), "Caf\u{e9} _2_ a_b.pdf");
    }

    #[test]
    fn the_rate_window_admits_up_to_the_limit() {
        let w = RateWindow::default();
        assert!((0..3).all(|_| w.admit(3).is_none()));
        let wait = w.admit(3).unwrap();
        assert!(wait <= Duration::from_secs(60) && wait > Duration::from_secs(59));
    }
}
