//! The values a client is configured with: which transport it uses, how it retries, how it
//! checks its connection.

use std::time::Duration;

/// Which transport a client uses. All three carry the same frames and resume the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Transport {
    /// One WebSocket (`{url}/ws`): the default.
    #[default]
    Ws,
    /// `POST {url}/http` for everything: server frames arrive in the responses only.
    Http,
    /// Server-Sent Events down (`{url}/sse`), `POST {url}/http` up.
    Sse,
}

impl std::str::FromStr for Transport {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ws" => Ok(Self::Ws),
            "http" => Ok(Self::Http),
            "sse" => Ok(Self::Sse),
            other => Err(format!("unknown transport `{other}`: use ws, http or sse")),
        }
    }
}

/// Exponential backoff with jitter between reconnection attempts.
///
/// The delay before attempt `n` (from 1) is `min(cap, base * factor^(n-1))`, less a random
/// share of up to `jitter` of it, so that clients dropped together do not return together.
///
/// ```
/// use std::time::Duration;
/// use omni::client::Backoff;
///
/// let backoff = Backoff { jitter: 0.0, ..Backoff::default() };
/// assert_eq!(backoff.delay(1), Duration::from_millis(250));
/// assert_eq!(backoff.delay(3), Duration::from_millis(1000));
/// assert_eq!(backoff.delay(30), Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The first delay. Default 250 ms.
    pub base: Duration,
    /// The longest delay. Default 10 s.
    pub cap: Duration,
    /// Growth per attempt. Default 2.
    pub factor: f64,
    /// The largest share of a delay taken off at random, from 0 to 1. Default 0.5.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(250),
            cap: Duration::from_secs(10),
            factor: 2.0,
            jitter: 0.5,
        }
    }
}

impl Backoff {
    /// The delay before reconnection attempt `attempt` (1 for the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(64) as i32;
        let full = self.base.as_secs_f64() * self.factor.powi(exponent);
        let capped = full.min(self.cap.as_secs_f64());
        let jitter = self.jitter.clamp(0.0, 1.0) * rand::random::<f64>();
        Duration::from_secs_f64(capped * (1.0 - jitter))
    }
}

/// Liveness checking: a WebSocket ping every `interval`, and for every transport, a
/// connection on which nothing arrived for `interval + timeout` is treated as dead (a
/// half-open TCP connection sends no error) and replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// How often to ping. Default 15 s.
    pub interval: Duration,
    /// How long past an interval to wait for any sign of life. Default 10 s.
    pub timeout: Duration,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(15),
            timeout: Duration::from_secs(10),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_only_shortens_and_stays_within_its_share() {
        let backoff = Backoff::default();
        for attempt in 1..10 {
            let full = Backoff {
                jitter: 0.0,
                ..backoff
            }
            .delay(attempt);
            for _ in 0..50 {
                let d = backoff.delay(attempt);
                assert!(d <= full && d >= full / 2, "{d:?} vs {full:?}");
            }
        }
    }
}
