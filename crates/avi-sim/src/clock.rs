//! The simulated clock.
//!
//! Everything time-dependent in the simulator (load, aggregation buckets, session expiry,
//! scheduled faults) reads this clock, never the wall clock, so a test can pause it and move it
//! by hand, and a demo can run it faster than real time. Simulated time is kept as seconds
//! elapsed since the scenario's start (an `f64`), plus the start as a Unix time; the real
//! controller aligns its buckets to the wall clock, so buckets are aligned to the Unix epoch.

use std::sync::Mutex;
use std::time::Instant;

use jiff::{SignedDuration, Timestamp};

/// Why a clock change was refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ClockError {
    /// The simulated time would move backwards: completed buckets and the history of server
    /// counts and load changes must stay what they were.
    #[error(
        "the simulated clock cannot move backwards (now at {now:.3} s, asked for {asked:.3} s)"
    )]
    Backwards {
        /// Seconds elapsed now.
        now: f64,
        /// Seconds elapsed asked for.
        asked: f64,
    },
    /// The time scale is negative, infinite or NaN.
    #[error("time scale must be a finite number >= 0, got {0}")]
    BadScale(f64),
    /// A time or duration that is not a finite number.
    #[error("time must be a finite number, got {0}")]
    NotFinite(f64),
}

/// The simulator's clock: real time multiplied by a scale, pausable, settable forwards.
#[derive(Debug)]
pub struct SimClock {
    start_unix: i64,
    state: Mutex<ClockState>,
}

#[derive(Debug)]
struct ClockState {
    anchor: Instant,
    anchor_elapsed: f64,
    scale: f64,
    paused: bool,
}

impl ClockState {
    fn elapsed(&self, real_now: Instant) -> f64 {
        if self.paused {
            self.anchor_elapsed
        } else {
            self.anchor_elapsed + real_now.duration_since(self.anchor).as_secs_f64() * self.scale
        }
    }

    fn reanchor(&mut self, real_now: Instant) {
        self.anchor_elapsed = self.elapsed(real_now);
        self.anchor = real_now;
    }
}

/// A copy of the clock's state at one moment.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClockReading {
    /// The simulated time.
    pub now: Timestamp,
    /// The simulated start (elapsed 0).
    pub start: Timestamp,
    /// Simulated seconds since the start.
    pub elapsed_seconds: f64,
    /// Simulated seconds per real second.
    pub time_scale: f64,
    /// Whether the clock is stopped.
    pub paused: bool,
}

impl SimClock {
    /// A clock that starts at `start_unix` (elapsed 0), running `scale` times real time.
    pub fn new(start_unix: i64, scale: f64, paused: bool) -> Result<Self, ClockError> {
        check_scale(scale)?;
        Ok(Self {
            start_unix,
            state: Mutex::new(ClockState {
                anchor: Instant::now(),
                anchor_elapsed: 0.0,
                scale,
                paused,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClockState> {
        // The state is plain numbers, always consistent: a panic elsewhere cannot corrupt it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Simulated seconds elapsed since the start.
    pub fn elapsed(&self) -> f64 {
        self.lock().elapsed(Instant::now())
    }

    /// The start as Unix seconds.
    pub fn start_unix(&self) -> i64 {
        self.start_unix
    }

    /// Simulated time as Unix seconds (fractional).
    pub fn unix(&self) -> f64 {
        self.start_unix as f64 + self.elapsed()
    }

    /// Converts Unix seconds to seconds elapsed since the start.
    pub fn elapsed_at(&self, unix: f64) -> f64 {
        unix - self.start_unix as f64
    }

    /// The simulated time.
    pub fn now(&self) -> Timestamp {
        timestamp(self.unix())
    }

    /// A copy of the whole state.
    pub fn reading(&self) -> ClockReading {
        let state = self.lock();
        let elapsed = state.elapsed(Instant::now());
        ClockReading {
            now: timestamp(self.start_unix as f64 + elapsed),
            start: timestamp(self.start_unix as f64),
            elapsed_seconds: elapsed,
            time_scale: state.scale,
            paused: state.paused,
        }
    }

    /// Moves the clock forward by `seconds` of simulated time.
    pub fn advance(&self, seconds: f64) -> Result<f64, ClockError> {
        if !seconds.is_finite() {
            return Err(ClockError::NotFinite(seconds));
        }
        let mut state = self.lock();
        let now = Instant::now();
        state.reanchor(now);
        if seconds < 0.0 {
            return Err(ClockError::Backwards {
                now: state.anchor_elapsed,
                asked: state.anchor_elapsed + seconds,
            });
        }
        state.anchor_elapsed += seconds;
        Ok(state.anchor_elapsed)
    }

    /// Sets the simulated time to `elapsed` seconds after the start (never backwards).
    pub fn set_elapsed(&self, elapsed: f64) -> Result<f64, ClockError> {
        if !elapsed.is_finite() {
            return Err(ClockError::NotFinite(elapsed));
        }
        let mut state = self.lock();
        let now = Instant::now();
        state.reanchor(now);
        if elapsed < state.anchor_elapsed {
            return Err(ClockError::Backwards {
                now: state.anchor_elapsed,
                asked: elapsed,
            });
        }
        state.anchor_elapsed = elapsed;
        Ok(elapsed)
    }

    /// Changes how many simulated seconds pass per real second.
    pub fn set_scale(&self, scale: f64) -> Result<(), ClockError> {
        check_scale(scale)?;
        let mut state = self.lock();
        state.reanchor(Instant::now());
        state.scale = scale;
        Ok(())
    }

    /// Stops (`true`) or restarts (`false`) the clock.
    pub fn set_paused(&self, paused: bool) {
        let mut state = self.lock();
        state.reanchor(Instant::now());
        state.paused = paused;
    }

    /// Real seconds until the simulated clock reaches `elapsed`, if it is running.
    pub fn real_seconds_until(&self, elapsed: f64) -> Option<f64> {
        let state = self.lock();
        if state.paused || state.scale <= 0.0 {
            return None;
        }
        let now = state.elapsed(Instant::now());
        Some(((elapsed - now) / state.scale).max(0.0))
    }
}

fn check_scale(scale: f64) -> Result<(), ClockError> {
    if scale.is_finite() && scale >= 0.0 {
        Ok(())
    } else {
        Err(ClockError::BadScale(scale))
    }
}

/// Unix seconds (fractional) as a timestamp, saturating at jiff's range.
pub(crate) fn timestamp(unix: f64) -> Timestamp {
    let whole = unix.floor();
    let nanos = ((unix - whole) * 1e9).round() as i32;
    Timestamp::new(whole as i64, nanos.clamp(0, 999_999_999)).unwrap_or(if unix < 0.0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// A timestamp as fractional Unix seconds.
pub(crate) fn unix_seconds(t: Timestamp) -> f64 {
    let d: SignedDuration = t.duration_since(Timestamp::UNIX_EPOCH);
    d.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paused_clock_moves_only_by_hand() {
        let clock = SimClock::new(1_767_225_600, 1.0, true).unwrap();
        assert_eq!(clock.elapsed(), 0.0);
        clock.advance(300.0).unwrap();
        assert_eq!(clock.elapsed(), 300.0);
        assert_eq!(clock.now().to_string(), "2026-01-01T00:05:00Z");
        clock.set_elapsed(900.5).unwrap();
        assert_eq!(clock.elapsed(), 900.5);
        assert!(matches!(
            clock.set_elapsed(10.0),
            Err(ClockError::Backwards { .. })
        ));
        assert!(clock.advance(-1.0).is_err());
        assert!(clock.set_scale(-2.0).is_err());
        assert!(clock.set_scale(f64::NAN).is_err());
        assert_eq!(clock.real_seconds_until(1000.0), None);
    }

    #[test]
    fn running_clock_never_goes_backwards() {
        let clock = SimClock::new(0, 1000.0, false).unwrap();
        let mut last = clock.elapsed();
        for _ in 0..1000 {
            let now = clock.elapsed();
            assert!(now >= last);
            last = now;
        }
        clock.set_paused(true);
        let frozen = clock.elapsed();
        assert_eq!(clock.elapsed(), frozen);
    }

    #[test]
    fn timestamps_round_trip() {
        let t = timestamp(1_767_225_600.25);
        assert_eq!(unix_seconds(t), 1_767_225_600.25);
    }
}
