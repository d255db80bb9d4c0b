//! Time for executions: real, or scaled by a factor.
//!
//! A scaled clock multiplies every *duration* the engine waits for — Wait
//! states, Retry intervals, task and machine `TimeoutSeconds` — by `factor`
//! (e.g. 0.001 turns a 60 s Wait into 60 ms). When tasks do real work (real
//! handlers, not mocks), [`Clock::with_real_timeouts`] keeps `TimeoutSeconds`
//! as written, so a scaled Retry interval never turns into a timeout that a
//! real call cannot meet. The definition is never changed,
//! and timestamps (history, `$$.Execution.StartTime`, Wait `Timestamp`) stay
//! wall-clock time. All waiting goes through `tokio::time`, so tests may use
//! `tokio::time::pause()`; `now()` advances with tokio's clock too.

use std::time::Duration;
use time::OffsetDateTime;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    factor: f64,
    real_timeouts: bool,
    base_wall: OffsetDateTime,
    base_instant: Instant,
}

/// A time-scale factor that is not a positive finite number.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("time scale must be a positive finite number, got {0}")]
pub struct BadTimeScale(pub f64);

impl Default for Clock {
    fn default() -> Self {
        Clock::real()
    }
}

impl Clock {
    /// Real time: durations as written.
    pub fn real() -> Clock {
        Clock {
            factor: 1.0,
            real_timeouts: false,
            base_wall: OffsetDateTime::now_utc(),
            base_instant: Instant::now(),
        }
    }

    /// Every duration multiplied by `factor` (> 0).
    pub fn scaled(factor: f64) -> Result<Clock, BadTimeScale> {
        if !(factor.is_finite() && factor > 0.0) {
            return Err(BadTimeScale(factor));
        }
        Ok(Clock { factor, ..Clock::real() })
    }

    /// Keeps task and machine `TimeoutSeconds` in real time.
    pub fn with_real_timeouts(mut self) -> Clock {
        self.real_timeouts = true;
        self
    }

    /// Whether task and machine `TimeoutSeconds` stay in real time.
    pub fn keeps_real_timeouts(&self) -> bool {
        self.real_timeouts
    }

    /// The real duration of a `TimeoutSeconds` value.
    pub fn timeout(&self, d: Duration) -> Duration {
        if self.real_timeouts { d } else { self.scale(d) }
    }

    pub fn factor(&self) -> f64 {
        self.factor
    }

    /// Wall-clock now, advancing with tokio's clock (so paused tests are deterministic).
    pub fn now(&self) -> OffsetDateTime {
        self.base_wall + self.base_instant.elapsed()
    }

    /// The real duration the engine waits for a definition duration `d`.
    pub fn scale(&self, d: Duration) -> Duration {
        if self.factor == 1.0 { d } else { d.mul_f64(self.factor) }
    }

    /// Sleep for the scaled equivalent of `d`.
    pub async fn sleep(&self, d: Duration) {
        tokio::time::sleep(self.scale(d)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_factors() {
        assert!(Clock::scaled(0.0).is_err());
        assert!(Clock::scaled(-1.0).is_err());
        assert!(Clock::scaled(f64::NAN).is_err());
        assert_eq!(Clock::scaled(0.001).unwrap().scale(Duration::from_secs(60)), Duration::from_millis(60));
    }

    #[test]
    fn timeouts_scale_unless_kept_real() {
        let scaled = Clock::scaled(0.001).unwrap();
        assert_eq!(scaled.timeout(Duration::from_secs(120)), Duration::from_millis(120));
        let real = scaled.with_real_timeouts();
        assert_eq!(real.timeout(Duration::from_secs(120)), Duration::from_secs(120));
        assert_eq!(real.scale(Duration::from_secs(30)), Duration::from_millis(30));
    }

    #[tokio::test(start_paused = true)]
    async fn sleep_is_scaled_and_now_follows_tokio_time() {
        let c = Clock::scaled(0.01).unwrap();
        let t0 = Instant::now();
        let w0 = c.now();
        c.sleep(Duration::from_secs(100)).await;
        assert_eq!(t0.elapsed(), Duration::from_secs(1));
        assert_eq!(c.now() - w0, time::Duration::seconds(1));
    }
}
