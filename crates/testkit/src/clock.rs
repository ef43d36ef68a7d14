//! Timestamps as the API server writes them, and the human-readable ages its tables show.

use jiff::Timestamp;

/// `metav1.Time`: RFC 3339 with second precision, in UTC.
pub(crate) fn now_time() -> String {
    format_time(Timestamp::now())
}

/// `metav1.MicroTime`: RFC 3339 with microsecond precision, in UTC.
pub(crate) fn now_micro_time() -> String {
    Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

fn format_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Parses an RFC 3339 timestamp (with or without fractions).
pub(crate) fn parse(s: &str) -> Option<Timestamp> {
    s.parse::<Timestamp>().ok()
}

/// Seconds elapsed since `s`, if it parses.
pub(crate) fn seconds_since(s: &str) -> Option<i64> {
    let t = parse(s)?;
    Some(Timestamp::now().duration_since(t).as_secs())
}

/// The age column of a table, as `metatable.ConvertToHumanReadableDateType` renders it.
pub(crate) fn age(timestamp: Option<&str>) -> String {
    match timestamp.and_then(seconds_since) {
        Some(secs) => human_duration(secs),
        None => "<unknown>".to_owned(),
    }
}

/// `k8s.io/apimachinery/pkg/util/duration.HumanDuration`, on whole seconds.
pub(crate) fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_apimachinery() {
        for (secs, want) in [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (125, "2m5s"),
            (600, "10m"),
            (179 * 60, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 60, "3h1m"),
            (47 * 3600, "47h"),
            (50 * 3600, "2d2h"),
            (9 * 24 * 3600, "9d"),
            (3 * 365 * 24 * 3600, "3y"),
            (3 * 365 * 24 * 3600 + 24 * 3600, "3y1d"),
            (9 * 365 * 24 * 3600, "9y"),
        ] {
            assert_eq!(human_duration(secs), want, "{secs}s");
        }
    }

    #[test]
    fn times_round_trip() {
        let t = now_time();
        assert!(t.ends_with('Z') && t.len() == 20, "{t}");
        assert!(parse(&t).is_some());
        let m = now_micro_time();
        assert_eq!(m.len(), 27, "{m}");
        assert!(parse(&m).is_some());
        assert_eq!(age(None), "<unknown>");
    }
}
