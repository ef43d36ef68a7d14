//! Time in whole seconds.
//!
//! Kubernetes stores `metav1.Time` with second precision, so the engine works in whole seconds
//! throughout: a time it writes to status reads back unchanged, and the next decision compares
//! exactly what the previous one saw.

use api::k8s::{Time, jiff::Timestamp};

/// Seconds since the Unix epoch.
pub(crate) type Seconds = i64;

/// The whole seconds of a status time.
pub(crate) fn secs(t: &Time) -> Seconds {
    t.0.as_second()
}

/// The whole seconds of a timestamp (fractions are dropped, as status would drop them).
pub(crate) fn secs_of(t: Timestamp) -> Seconds {
    t.as_second()
}

/// A status time from whole seconds. Times outside jiff's range (years before -9999 or after
/// 9999) are clamped to it; they cannot come from a real clock.
pub(crate) fn time_at(s: Seconds) -> Time {
    let clamped = s.clamp(Timestamp::MIN.as_second(), Timestamp::MAX.as_second());
    Time(Timestamp::from_second(clamped).unwrap_or(Timestamp::UNIX_EPOCH))
}
