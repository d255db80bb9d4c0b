//! Predicted waits: when to poll a snapshot or a copy next, from its
//! `PercentProgress`.
//!
//! A snapshot or copy wait is a loop in the state machine: FetchStatus ->
//! Choice -> Wait (`SecondsPath`) -> FetchStatus. FetchStatus's output is a
//! [`Poll`] the Task writes to `$.poll`; the next poll reads it back from the
//! payload, so the loop's memory lives in the execution, not in the Lambda.
//!
//! Time is the state machine's own: the sum of the Waits the loop asked for
//! (`waited`), never a clock read in the Lambda. On AWS that leaves out the
//! second or so each poll itself takes; under the drill's scaled clock it is
//! what the Wait states stand for, so the same prediction holds in both.
//!
//! The rate is measured from the first poll that saw the progress (the
//! anchor) to this one: `PercentProgress` is a whole percent, so over a
//! multi-hour copy one percent takes minutes and two polls in a row often
//! read the same value; the longest baseline has the smallest rounding
//! error. Then:
//! - no progress figure, 100 while not ready, or no movement since the
//!   anchor: the schedule's backoff (`intervalSeconds`, x`backoffRate`, at
//!   most `maxDelaySeconds`), as the Retry it replaces;
//! - a predicted remaining time longer than [`FINAL_WITHIN`]: wait half of
//!   it (each poll halves the distance to the predicted end, so a rate that
//!   changes is noticed on the way);
//! - otherwise wait the remaining time and a margin, and expect the
//!   resource ready: one poll just after the predicted end;
//! - polled at or after the predicted end and still not ready: wait the new
//!   prediction (from a longer baseline, so closer); from the second such
//!   poll on, never less than the schedule's backoff (from its interval),
//!   so progress stuck at 99 % is polled as rarely as the fallback.
//!
//! The RDS API reference ("DBClusterSnapshot", `PercentProgress`: the
//! estimated share of the data transferred,
//! <https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBClusterSnapshot.html>)
//! does not say how smoothly it grows; the fallback above covers a figure
//! that jumps or sits still.
//!
//! The bound: once `waited` reaches `boundSeconds` and the resource is not
//! ready, FetchStatus fails `ResourceNotReady` (the state's Catch turns it
//! into the named `Timeout`); the last Wait is shortened so that the bound
//! is polled exactly.

use serde::{Deserialize, Serialize};

/// Below this predicted remaining time, the next poll goes just after the
/// predicted end instead of halfway.
pub const FINAL_WITHIN: f64 = 300.0;
/// The shortest Wait the loop asks for, seconds.
pub const MIN_WAIT: u64 = 5;

/// A predicted wait's schedule, from the Task's `Parameters.predict`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Schedule {
    /// The wait gives up once this many seconds were waited.
    pub bound_seconds: u64,
    /// The backoff without a usable progress figure, as a Retry's fields.
    pub interval_seconds: u64,
    pub backoff_rate: f64,
    pub max_delay_seconds: u64,
}

impl Schedule {
    /// A schedule's problems, named (checked before any call).
    pub fn check(&self) -> Result<(), String> {
        if self.interval_seconds == 0 || self.max_delay_seconds < self.interval_seconds {
            return Err(format!(
                "predict: intervalSeconds must be >= 1 and <= maxDelaySeconds, got {} and {}",
                self.interval_seconds, self.max_delay_seconds
            ));
        }
        if !(self.backoff_rate.is_finite() && self.backoff_rate >= 1.0) {
            return Err(format!("predict: backoffRate must be >= 1.0, got {}", self.backoff_rate));
        }
        if self.bound_seconds < self.interval_seconds {
            return Err(format!(
                "predict: boundSeconds {} is shorter than intervalSeconds {}",
                self.bound_seconds, self.interval_seconds
            ));
        }
        Ok(())
    }

    /// The backoff after a wait of `last` seconds (the first: the interval).
    fn backoff(&self, last: Option<u64>) -> u64 {
        match last {
            None | Some(0) => self.interval_seconds,
            Some(s) => ((s as f64 * self.backoff_rate).round() as u64)
                .clamp(self.interval_seconds, self.max_delay_seconds),
        }
    }
}

/// Where the rate is measured from: the first poll that saw the progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Anchor {
    pub waited: u64,
    pub progress: i32,
}

/// One poll of a predicted wait: FetchStatus's output, kept at `$.poll`.
/// Every field has a default, so a payload whose `poll` is some other
/// Task's output (a mock's `{"status": "available"}`) still parses and is
/// never mistaken for this wait's memory ([`Poll::continues`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Poll {
    /// The kind waited for (`sourceSnapshot`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_for: Option<String>,
    pub ready: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resource: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent_progress: Option<i32>,
    /// The Wait before the next poll (0 when ready).
    pub seconds: u64,
    /// Seconds waited before this poll, since the wait's first poll.
    pub waited: u64,
    /// Polls so far, this one included.
    pub polls: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchor: Option<Anchor>,
    /// The next poll is the one just after the predicted end.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub expect_ready: bool,
    /// Polls so far that came after the predicted end and found the
    /// resource still not ready.
    #[serde(skip_serializing_if = "is_zero")]
    pub overdue: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Poll {
    /// This payload's poll continues the wait for `kind` (else a wait starts).
    pub fn continues(&self, kind: &str) -> bool {
        !self.ready && self.polls > 0 && self.wait_for.as_deref() == Some(kind)
    }

    /// Seconds waited when the next poll runs.
    pub fn waited_at_next(&self) -> u64 {
        self.waited.saturating_add(self.seconds)
    }
}

/// What to do after a poll that found the resource not ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Wait `seconds`, then poll again.
    Wait { seconds: u64, anchor: Option<Anchor>, expect_ready: bool, overdue: u64 },
    /// The bound is reached: the wait fails.
    GiveUp,
}

/// The least wait after the `overdue`-th poll past the predicted end: none
/// after the first (the new prediction is closer), then the schedule's
/// backoff from its interval.
fn overdue_backoff(schedule: &Schedule, overdue: u64) -> u64 {
    match overdue {
        0 | 1 => 0,
        n => {
            let grown = schedule.interval_seconds as f64 * schedule.backoff_rate.powi((n - 2).min(64) as i32);
            (grown.round() as u64).min(schedule.max_delay_seconds)
        }
    }
}

/// The plan after a not-ready poll at `waited` seconds that read `progress`,
/// given the wait's previous poll (None on its first).
pub fn next(schedule: &Schedule, prev: Option<&Poll>, waited: u64, progress: Option<i32>) -> Next {
    if waited >= schedule.bound_seconds {
        return Next::GiveUp;
    }
    let backoff = schedule.backoff(prev.map(|p| p.seconds));
    let overdue = prev.map_or(0, |p| p.overdue + u64::from(p.expect_ready));
    let usable = progress.filter(|p| (0..100).contains(p));
    let anchor = match (usable, prev.and_then(|p| p.anchor)) {
        (None, _) => None,
        // Progress that went back (a figure RDS recomputed) starts over.
        (Some(p), Some(a)) if p >= a.progress => Some(a),
        (Some(p), _) => Some(Anchor { waited, progress: p }),
    };
    let (seconds, expect_ready) = match (usable, anchor) {
        (Some(p), Some(a)) if p > a.progress && waited > a.waited => {
            let rate = f64::from(p - a.progress) / (waited - a.waited) as f64;
            // A whole percent read is the floor: up to 100 - p remain.
            let remaining = f64::from(100 - p) / rate;
            if remaining > FINAL_WITHIN && overdue == 0 {
                ((remaining / 2.0).ceil() as u64, false)
            } else {
                let margin = 1.0 + remaining * 0.02;
                let at_end = (remaining + margin).ceil() as u64;
                (at_end.max(overdue_backoff(schedule, overdue)), true)
            }
        }
        _ => (backoff, false),
    };
    let seconds = seconds.max(MIN_WAIT).min(schedule.bound_seconds - waited).max(1);
    Next::Wait { seconds, anchor, expect_ready, overdue }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEDULE: Schedule =
        Schedule { bound_seconds: 43_200, interval_seconds: 30, backoff_rate: 1.5, max_delay_seconds: 180 };

    /// Runs a wait against a resource whose progress is `progress(t)` and
    /// that is ready at `ready_at`: the polls' times and whether it gave up.
    fn simulate(ready_at: u64, progress: impl Fn(u64) -> Option<i32>) -> (Vec<u64>, bool) {
        let mut prev: Option<Poll> = None;
        let mut times = Vec::new();
        loop {
            let waited = prev.as_ref().map(Poll::waited_at_next).unwrap_or(0);
            times.push(waited);
            if waited >= ready_at {
                return (times, false);
            }
            let p = progress(waited);
            match next(&SCHEDULE, prev.as_ref(), waited, p) {
                Next::GiveUp => return (times, true),
                Next::Wait { seconds, anchor, expect_ready, overdue } => {
                    prev = Some(Poll {
                        overdue,
                        wait_for: Some("targetSnapshot".into()),
                        percent_progress: p,
                        seconds,
                        waited,
                        polls: times.len() as u64,
                        anchor,
                        expect_ready,
                        ..Poll::default()
                    });
                }
            }
        }
    }

    fn linear(total: u64) -> impl Fn(u64) -> Option<i32> {
        move |t| Some(((t * 100) / total).min(99) as i32)
    }

    #[test]
    fn flat_or_unknown_progress_backs_off_like_the_retry() {
        for progress in [None, Some(0), Some(100)] {
            let (times, gave_up) = simulate(600, |_| progress);
            assert!(!gave_up);
            let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
            // 30, 45, 68, 102, 153, then at most 180 apart.
            assert_eq!(gaps[..5], [30, 45, 68, 102, 153], "{progress:?}: {gaps:?}");
            assert!(gaps[5..].iter().all(|g| *g == 180), "{progress:?}: {gaps:?}");
        }
    }

    #[test]
    fn steady_progress_waits_about_the_remaining_time() {
        for total in [140, 1_500, 24_876] {
            let (times, gave_up) = simulate(total, linear(total));
            assert!(!gave_up);
            let last = *times.last().expect("polled");
            // Detected within a few percent of the work's length past its end.
            assert!(last >= total && last - total <= 5 + total / 40, "{total}: {times:?}");
            // Far fewer polls than the 180 s backoff would take.
            assert!(times.len() <= 12, "{total}: {} polls {times:?}", times.len());
        }
        // A copy of hours: one long wait halfway there early on.
        let (times, _) = simulate(24_876, linear(24_876));
        assert!(times.windows(2).any(|w| w[1] - w[0] > 5_000), "{times:?}");
    }

    #[test]
    fn progress_stuck_near_the_end_is_polled_no_more_often_than_the_backoff() {
        // Linear to 99 % at 1,000 s, then stuck there until 4,000 s.
        let (times, gave_up) = simulate(4_000, |t| Some(((t * 100) / 1_000).min(99) as i32));
        assert!(!gave_up);
        let late: Vec<u64> = times.windows(2).filter(|w| w[0] > 1_200).map(|w| w[1] - w[0]).collect();
        assert!(late.iter().all(|g| *g >= 150), "{late:?}");
    }

    #[test]
    fn a_poll_just_before_the_end_is_followed_by_the_new_prediction_not_the_backoff() {
        // Predicted to be ready by now, still 97 % after 100 s: about 3 s remain.
        let prev = Poll {
            wait_for: Some("sourceSnapshot".into()),
            seconds: 60,
            waited: 40,
            polls: 3,
            anchor: Some(Anchor { waited: 0, progress: 0 }),
            expect_ready: true,
            ..Poll::default()
        };
        let Next::Wait { seconds, overdue, .. } = next(&SCHEDULE, Some(&prev), 100, Some(97)) else {
            panic!()
        };
        assert_eq!((seconds, overdue), (MIN_WAIT, 1));
        // Past it again: the backoff from its interval.
        let prev = Poll { seconds, waited: 100, polls: 4, overdue, ..prev };
        let Next::Wait { seconds, overdue, .. } = next(&SCHEDULE, Some(&prev), 105, Some(97)) else {
            panic!()
        };
        assert_eq!((seconds, overdue), (SCHEDULE.interval_seconds, 2));
    }

    #[test]
    fn the_bound_ends_the_wait_exactly_when_reached() {
        let (times, gave_up) = simulate(u64::MAX, |_| Some(3));
        assert!(gave_up);
        assert_eq!(*times.last().expect("polled"), SCHEDULE.bound_seconds);
        // A prediction beyond the bound is cut to land on it.
        let slow = |t: u64| Some((t / 1_000) as i32);
        let (times, gave_up) = simulate(u64::MAX, slow);
        assert!(gave_up);
        assert_eq!(*times.last().expect("polled"), SCHEDULE.bound_seconds);
        assert_eq!(next(&SCHEDULE, None, SCHEDULE.bound_seconds, Some(50)), Next::GiveUp);
    }

    #[test]
    fn progress_that_goes_back_starts_a_new_anchor() {
        let prev = Poll {
            wait_for: Some("ownCopy".into()),
            seconds: 60,
            waited: 60,
            polls: 2,
            anchor: Some(Anchor { waited: 0, progress: 40 }),
            ..Poll::default()
        };
        let Next::Wait { anchor, .. } = next(&SCHEDULE, Some(&prev), 120, Some(10)) else { panic!() };
        assert_eq!(anchor, Some(Anchor { waited: 120, progress: 10 }));
    }

    #[test]
    fn a_poll_continues_only_its_own_unfinished_wait() {
        let p = Poll { wait_for: Some("ownCopy".into()), polls: 1, ..Poll::default() };
        assert!(p.continues("ownCopy"));
        assert!(!p.continues("sourceSnapshot"));
        assert!(!Poll { ready: true, ..p.clone() }.continues("ownCopy"));
        let mock: Poll = serde_json::from_value(serde_json::json!({"status": "available"})).expect("parses");
        assert!(!mock.continues("ownCopy"));
    }

    #[test]
    fn bad_schedules_are_named() {
        assert!(SCHEDULE.check().is_ok());
        for bad in [
            Schedule { interval_seconds: 0, ..SCHEDULE },
            Schedule { max_delay_seconds: 10, ..SCHEDULE },
            Schedule { backoff_rate: 0.5, ..SCHEDULE },
            Schedule { bound_seconds: 10, ..SCHEDULE },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }
}
