//! Users over time, with exact integrals.
//!
//! A load is a piecewise-linear function of simulated time (seconds since the scenario start)
//! that may jump: a ramp at a spawn rate is a line, a stop or a step in a series is a jump.
//! The controller reports averages over buckets, so what matters is the integral of the load
//! over an interval, its maximum, and how much it rose or fell; all three are computed exactly
//! from the vertices, never by sampling.

/// One vertex of a [`Polyline`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Vertex {
    /// Seconds since the scenario start.
    pub t: f64,
    /// Value from this time on (until the next vertex, towards which it moves linearly).
    pub v: f64,
}

/// A piecewise-linear function of time with jumps: two vertices at the same time are a jump.
///
/// Before the first vertex the value is the first vertex's value, after the last it is the last
/// vertex's value; at a jump the function takes the value after the jump (right-continuous).
#[derive(Clone, Debug, PartialEq)]
pub struct Polyline {
    points: Vec<Vertex>,
}

impl Polyline {
    /// A constant function.
    pub fn constant(v: f64) -> Self {
        Self {
            points: vec![Vertex { t: 0.0, v }],
        }
    }

    /// A function through `points`, which must be sorted by time (equal times are jumps).
    pub fn new(points: Vec<Vertex>) -> Self {
        debug_assert!(points.windows(2).all(|w| w[0].t <= w[1].t));
        if points.is_empty() {
            Self::constant(0.0)
        } else {
            Self { points }
        }
    }

    /// The vertices.
    pub fn points(&self) -> &[Vertex] {
        &self.points
    }

    /// The value at `t` (after any jump at `t`).
    pub fn value_at(&self, t: f64) -> f64 {
        let p = &self.points;
        // Index of the last vertex at or before t.
        let i = p.partition_point(|x| x.t <= t);
        if i == 0 {
            return p[0].v;
        }
        let a = p[i - 1];
        match p.get(i) {
            None => a.v,
            Some(b) => lerp(a, *b, t),
        }
    }

    /// The value just before `t` (before any jump at `t`).
    pub fn left_limit(&self, t: f64) -> f64 {
        let p = &self.points;
        let i = p.partition_point(|x| x.t < t);
        if i == 0 {
            return p[0].v;
        }
        let a = p[i - 1];
        match p.get(i) {
            None => a.v,
            Some(b) => lerp(a, *b, t),
        }
    }

    /// The linear pieces over `[a, b)`: (start, end, value at start, value just before end).
    fn pieces(&self, a: f64, b: f64) -> Vec<(f64, f64, f64, f64)> {
        let mut out = Vec::new();
        if b <= a {
            return out;
        }
        let mut cuts = vec![a];
        cuts.extend(self.points.iter().map(|p| p.t).filter(|&t| t > a && t < b));
        cuts.push(b);
        cuts.dedup();
        for w in cuts.windows(2) {
            let (s, e) = (w[0], w[1]);
            if e > s {
                out.push((s, e, self.value_at(s), self.left_limit(e)));
            }
        }
        out
    }

    /// The integral over `[a, b)`.
    pub fn integral(&self, a: f64, b: f64) -> f64 {
        self.pieces(a, b)
            .iter()
            .map(|&(s, e, vs, ve)| (e - s) * (vs + ve) / 2.0)
            .sum()
    }

    /// The largest value on `[a, b)` (including values approached just before `b`).
    pub fn max(&self, a: f64, b: f64) -> f64 {
        self.pieces(a, b)
            .iter()
            .map(|&(_, _, vs, ve)| vs.max(ve))
            .fold(self.value_at(a), f64::max)
    }

    /// Total rise on `[a, b)`: upward slopes and upward jumps (a jump at `a` counts, one at `b`
    /// belongs to the next interval).
    pub fn increase(&self, a: f64, b: f64) -> f64 {
        self.change(a, b, 1.0)
    }

    /// Total fall on `[a, b)`, as a positive number.
    pub fn decrease(&self, a: f64, b: f64) -> f64 {
        self.change(a, b, -1.0)
    }

    fn change(&self, a: f64, b: f64, sign: f64) -> f64 {
        if b <= a {
            return 0.0;
        }
        let slopes: f64 = self
            .pieces(a, b)
            .iter()
            .map(|&(_, _, vs, ve)| (sign * (ve - vs)).max(0.0))
            .sum();
        let jumps: f64 = self
            .points
            .windows(2)
            .filter(|w| w[0].t == w[1].t && w[0].t >= a && w[0].t < b)
            .map(|w| (sign * (w[1].v - w[0].v)).max(0.0))
            .sum();
        slopes + jumps
    }

    /// Replaces the function from `t0` on with `other` (history before `t0` is kept).
    pub fn splice(&mut self, t0: f64, other: &Polyline) {
        let before = self.value_at(t0);
        self.points.retain(|p| p.t < t0);
        self.points.push(Vertex { t: t0, v: before });
        let after = other.value_at(t0);
        if after != before {
            self.points.push(Vertex { t: t0, v: after });
        }
        self.points
            .extend(other.points.iter().copied().filter(|p| p.t > t0));
        self.compact();
    }

    /// Drops vertices that change nothing (three equal values in a row).
    fn compact(&mut self) {
        let mut out: Vec<Vertex> = Vec::with_capacity(self.points.len());
        for p in self.points.drain(..) {
            let n = out.len();
            if n >= 2 && out[n - 1].v == p.v && out[n - 2].v == p.v {
                out[n - 1] = p;
            } else {
                out.push(p);
            }
        }
        self.points = out;
    }
}

fn lerp(a: Vertex, b: Vertex, t: f64) -> f64 {
    if b.t <= a.t {
        return b.v;
    }
    a.v + (b.v - a.v) * (t - a.t) / (b.t - a.t)
}

/// Builds the users-over-time function of a Locust-style load: no users before `start_at`,
/// then `spawn_rate` users per second (instantly if `None`) up to `max_users`, held until
/// `stop_at`, then removed at `stop_rate` per second (instantly if `None`).
pub fn ramp(
    start_at: f64,
    max_users: f64,
    spawn_rate: Option<f64>,
    stop_at: Option<f64>,
    stop_rate: Option<f64>,
) -> Polyline {
    let mut points = vec![Vertex {
        t: start_at,
        v: 0.0,
    }];
    let full_at = match spawn_rate {
        Some(rate) if rate > 0.0 => start_at + max_users / rate,
        _ => start_at,
    };
    match stop_at {
        Some(stop) if stop < full_at => {
            // Stopped before the ramp finished: the users reached so far are removed.
            let reached = lerp(
                Vertex {
                    t: start_at,
                    v: 0.0,
                },
                Vertex {
                    t: full_at,
                    v: max_users,
                },
                stop,
            );
            points.push(Vertex {
                t: stop,
                v: reached,
            });
            push_stop(&mut points, stop, reached, stop_rate);
        }
        _ => {
            points.push(Vertex {
                t: full_at,
                v: max_users,
            });
            if let Some(stop) = stop_at {
                points.push(Vertex {
                    t: stop,
                    v: max_users,
                });
                push_stop(&mut points, stop, max_users, stop_rate);
            }
        }
    }
    let mut line = Polyline::new(points);
    line.compact();
    line
}

fn push_stop(points: &mut Vec<Vertex>, stop: f64, users: f64, stop_rate: Option<f64>) {
    let end = match stop_rate {
        Some(rate) if rate > 0.0 => stop + users / rate,
        _ => stop,
    };
    points.push(Vertex { t: end, v: 0.0 });
}

/// Builds a step function from `(at, users)` pairs sorted by time: 0 before the first.
pub fn steps(series: &[(f64, f64)]) -> Polyline {
    let mut points = Vec::with_capacity(series.len() * 2 + 1);
    let mut current = 0.0;
    match series.first() {
        Some(&(t, _)) => points.push(Vertex { t, v: 0.0 }),
        None => return Polyline::constant(0.0),
    }
    for &(t, users) in series {
        points.push(Vertex { t, v: current });
        points.push(Vertex { t, v: users });
        current = users;
    }
    let mut line = Polyline::new(points);
    line.dedup_jumps();
    line.compact();
    line
}

/// Builds a ramp from `from` (at `t0`) to `to` at `rate` per second (a jump if `None`).
pub fn ramp_to(t0: f64, from: f64, to: f64, rate: Option<f64>) -> Polyline {
    let end = match rate {
        Some(r) if r > 0.0 => t0 + (to - from).abs() / r,
        _ => t0,
    };
    Polyline::new(vec![Vertex { t: t0, v: from }, Vertex { t: end, v: to }])
}

impl Polyline {
    /// Removes zero-height jumps (equal time and equal value).
    fn dedup_jumps(&mut self) {
        self.points.dedup_by(|b, a| a.t == b.t && a.v == b.v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seed() -> Polyline {
        ramp(0.0, 1000.0, Some(5.0), Some(1320.0), None)
    }

    #[test]
    fn seed_load_ramps_holds_and_stops() {
        let u = seed();
        assert_eq!(u.value_at(-10.0), 0.0);
        assert_eq!(u.value_at(100.0), 500.0);
        assert_eq!(u.value_at(200.0), 1000.0);
        assert_eq!(u.value_at(1319.9), 1000.0);
        assert_eq!(u.value_at(1320.0), 0.0);
        assert_eq!(u.left_limit(1320.0), 1000.0);
        // First 300 s bucket: a 200 s ramp then 100 s at 1000.
        assert!((u.integral(0.0, 300.0) / 300.0 - 2000.0 / 3.0).abs() < 1e-9);
        assert_eq!(u.integral(300.0, 600.0) / 300.0, 1000.0);
        // The bucket with the stop: 120 s of 1000 users.
        assert_eq!(u.integral(1200.0, 1500.0) / 300.0, 400.0);
        assert_eq!(u.max(1200.0, 1500.0), 1000.0);
        assert_eq!(u.max(1320.0, 1500.0), 0.0);
        assert_eq!(u.increase(0.0, 300.0), 1000.0);
        assert_eq!(u.decrease(1200.0, 1500.0), 1000.0);
        assert_eq!(u.decrease(1320.0, 1500.0), 1000.0);
        assert_eq!(u.decrease(1000.0, 1320.0), 0.0);
    }

    #[test]
    fn stop_before_full_and_gradual_stop() {
        let u = ramp(10.0, 1000.0, Some(10.0), Some(30.0), Some(50.0));
        assert_eq!(u.value_at(30.0), 200.0);
        assert_eq!(u.value_at(32.0), 100.0);
        assert_eq!(u.value_at(34.0), 0.0);
        let instant = ramp(0.0, 50.0, None, None, None);
        assert_eq!(instant.value_at(0.0), 50.0);
        assert_eq!(instant.value_at(-1.0), 0.0);
    }

    #[test]
    fn steps_are_piecewise_constant() {
        let u = steps(&[(0.0, 0.0), (300.0, 666.7), (600.0, 100.0)]);
        assert_eq!(u.value_at(299.0), 0.0);
        assert_eq!(u.value_at(300.0), 666.7);
        assert_eq!(u.value_at(650.0), 100.0);
        assert_eq!(u.integral(0.0, 900.0), 300.0 * 666.7 + 300.0 * 100.0);
        assert_eq!(u.increase(0.0, 900.0), 666.7);
        assert_eq!(u.decrease(0.0, 900.0), 566.7);
    }

    #[test]
    fn splice_keeps_history() {
        let mut u = seed();
        u.splice(250.0, &ramp_to(250.0, 1000.0, 200.0, Some(10.0)));
        assert_eq!(u.value_at(100.0), 500.0);
        assert_eq!(u.value_at(250.0), 1000.0);
        assert_eq!(u.value_at(290.0), 600.0);
        assert_eq!(u.value_at(400.0), 200.0);
        assert_eq!(u.value_at(5000.0), 200.0);
        u.splice(500.0, &Polyline::constant(7.0));
        assert_eq!(u.value_at(499.0), 200.0);
        assert_eq!(u.value_at(500.0), 7.0);
    }

    proptest! {
        #[test]
        fn integral_is_additive_and_bounded(
            max in 0.0f64..5000.0, rate in 0.1f64..50.0, stop in 0.0f64..3000.0,
            a in -100.0f64..3000.0, len1 in 0.0f64..600.0, len2 in 0.0f64..600.0,
        ) {
            let u = ramp(0.0, max, Some(rate), Some(stop), None);
            let (b, c) = (a + len1, a + len1 + len2);
            let whole = u.integral(a, c);
            let parts = u.integral(a, b) + u.integral(b, c);
            prop_assert!((whole - parts).abs() <= 1e-6 * (1.0 + whole.abs()));
            prop_assert!(whole <= u.max(a, c) * (c - a) + 1e-6 * (1.0 + whole.abs()));
            prop_assert!(whole >= -1e-9);
            // Rise minus fall is the net change across the interval.
            let net = u.increase(a, c) - u.decrease(a, c);
            let expected = u.left_limit(c) - u.value_at(a)
                + if c > a { jump_at(&u, a) } else { 0.0 };
            prop_assert!((net - expected).abs() <= 1e-6 * (1.0 + max));
        }
    }

    /// The size of a jump at exactly `t` (counted in the interval starting at `t`).
    fn jump_at(u: &Polyline, t: f64) -> f64 {
        u.value_at(t) - u.left_limit(t)
    }
}
