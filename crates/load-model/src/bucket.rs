//! What Avi reports for a bucket: exact averages of the users' connections over `[start, end)`,
//! split among the pool members present at each instant.
//!
//! Avi aggregates every metric over buckets aligned to its clock (300 s, 5 s for realtime
//! metrics) and reports a bucket only once it has closed ([`closed_bucket`]). A pool member's
//! value for a bucket is the average of its share over the whole bucket (zero while it was not a
//! member), so the members' values always add up to the pool's total.

use crate::members::{Member, Membership};
use crate::users::Polyline;

/// The latest bucket closed at `now`, lagging `lag` seconds behind it: `(start, end)`.
///
/// Times are seconds on a clock where buckets of `period` seconds start at 0 (for Avi, the
/// Unix epoch): a bucket is visible from its end on, never while it is still filling.
pub fn closed_bucket(now: f64, period: f64, lag: f64) -> (f64, f64) {
    let end = ((now - lag) / period).floor() * period;
    (end - period, end)
}

/// What each user of a pool does (fixed for the pool's life, so history stays exact).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Traffic {
    /// Open connections per user.
    pub conns_per_user: f64,
    /// Requests per second per user.
    pub requests_per_user_per_second: f64,
    /// Server response time, ms.
    pub response_time_ms: f64,
}

/// What one pool member, or the whole pool, did during a bucket: integrals over time, not yet
/// divided by the bucket's length.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// ∫ open connections.
    pub conn_integral: f64,
    /// The largest open connections at any instant.
    pub max_conns: f64,
    /// Connections opened (the users' rise).
    pub new_conns: f64,
    /// Connections closed (the users' fall).
    pub closed_conns: f64,
    /// ∫ requests per second.
    pub request_integral: f64,
    /// Seconds it was a member (for the pool: seconds it had members).
    pub present: f64,
    /// Pool only: ∫ connections / members, while there were members.
    pub per_server_integral: f64,
    /// Pool only: ∫ members.
    pub server_integral: f64,
}

/// A pool's bucket: each member with samples in it, and the pool as a whole.
#[derive(Clone, Debug, PartialEq)]
pub struct Bucket {
    /// Its start, seconds since the scenario start.
    pub start: f64,
    /// Its end (exclusive).
    pub end: f64,
    /// Members that were members at some time in the bucket, oldest first.
    pub members: Vec<(Member, Usage)>,
    /// The pool as a whole.
    pub pool: Usage,
}

impl Bucket {
    /// Evaluates `[start, end)` of a pool whose `users` do what `traffic` says, spread evenly
    /// over the `members` present at each instant. Exact: the users are piecewise linear and
    /// the members change only at the cuts.
    pub fn of_pool(
        users: &Polyline,
        traffic: &Traffic,
        members: &Membership,
        start: f64,
        end: f64,
    ) -> Self {
        let c = traffic.conns_per_user;
        let rps = traffic.requests_per_user_per_second;
        let all = members.all();
        let mut usage = vec![Usage::default(); all.len()];
        let mut pool = Usage::default();
        for w in members.cuts(start, end).windows(2) {
            let (s, e) = (w[0], w[1]);
            let active: Vec<usize> = (0..all.len()).filter(|&i| all[i].is_active_at(s)).collect();
            if active.is_empty() || e <= s {
                continue;
            }
            let n = active.len() as f64;
            let conns = c * users.integral(s, e);
            let max = c * users.max(s, e);
            let rise = c * users.increase(s, e);
            let fall = c * users.decrease(s, e);
            let requests = rps * users.integral(s, e);
            for &i in &active {
                let m = &mut usage[i];
                m.conn_integral += conns / n;
                m.max_conns = m.max_conns.max(max / n);
                m.new_conns += rise / n;
                m.closed_conns += fall / n;
                m.request_integral += requests / n;
                m.present += e - s;
            }
            pool.conn_integral += conns;
            pool.max_conns = pool.max_conns.max(max);
            pool.new_conns += rise;
            pool.closed_conns += fall;
            pool.request_integral += requests;
            pool.present += e - s;
            pool.per_server_integral += conns / n;
            pool.server_integral += n * (e - s);
        }
        let members = all
            .iter()
            .zip(usage)
            .filter(|(m, _)| m.overlaps(start, end))
            .map(|(m, u)| (m.clone(), u))
            .collect();
        Self {
            start,
            end,
            members,
            pool,
        }
    }

    /// Its length in seconds.
    pub fn seconds(&self) -> f64 {
        self.end - self.start
    }

    /// Each member's average open connections (`l4_server.avg_open_conns` of its line), oldest
    /// member first.
    pub fn member_conns(&self) -> impl Iterator<Item = f64> + '_ {
        self.members
            .iter()
            .map(|(_, u)| u.conn_integral / self.seconds())
    }

    /// The pool's average open connections: the sum of its members' lines (connections count
    /// only while the pool had members).
    pub fn pool_conns(&self) -> f64 {
        self.pool.conn_integral / self.seconds()
    }
}

/// The users' average open connections over `[start, end)`, whoever serves them: what a virtual
/// service's client side reports.
pub fn client_conns(users: &Polyline, traffic: &Traffic, start: f64, end: f64) -> f64 {
    traffic.conns_per_user * users.integral(start, end) / (end - start)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use proptest::prelude::*;

    use super::*;
    use crate::users::ramp;

    const IP: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 10);

    fn seed() -> Polyline {
        ramp(0.0, 1000.0, Some(5.0), Some(1320.0), None)
    }

    fn traffic() -> Traffic {
        Traffic {
            conns_per_user: 1.0,
            requests_per_user_per_second: 1.0,
            response_time_ms: 5.0,
        }
    }

    fn steady(n: u32) -> Membership {
        Membership::new(n, IP, 8080)
    }

    #[test]
    fn a_bucket_is_visible_once_it_has_closed() {
        assert_eq!(closed_bucket(1000.0, 300.0, 0.0), (600.0, 900.0));
        assert_eq!(closed_bucket(900.0, 300.0, 0.0), (600.0, 900.0));
        assert_eq!(closed_bucket(899.9, 300.0, 0.0), (300.0, 600.0));
        assert_eq!(closed_bucket(905.0, 300.0, 10.0), (300.0, 600.0));
        assert_eq!(closed_bucket(12.0, 5.0, 0.0), (5.0, 10.0));
        // Aligned to the clock's zero, not to the reader's start.
        assert_eq!(closed_bucket(-1.0, 300.0, 0.0), (-600.0, -300.0));
    }

    #[test]
    fn the_seed_buckets_average_the_ramp() {
        let (users, members) = (seed(), steady(1));
        let avg =
            |end| Bucket::of_pool(&users, &traffic(), &members, end - 300.0, end).pool_conns();
        // Ramp to 1000 over 200 s, then 100 s at 1000: (200 × 500 + 100 × 1000) / 300.
        assert!((avg(300.0) - 2000.0 / 3.0).abs() < 1e-9, "{}", avg(300.0));
        assert_eq!(avg(600.0), 1000.0);
        // Stopped at 1320: 120 s of 1000 in [1200, 1500).
        assert_eq!(avg(1500.0), 400.0);
        assert_eq!(avg(1800.0), 0.0);
        // Before the start the world is idle.
        assert_eq!(avg(0.0), 0.0);
    }

    #[test]
    fn realtime_buckets_are_five_seconds() {
        let b = Bucket::of_pool(&seed(), &traffic(), &steady(1), 5.0, 10.0);
        // Users 25 → 50 over [5, 10): mean 37.5.
        assert_eq!(b.pool_conns(), 37.5);
        assert_eq!(b.pool.new_conns, 25.0);
    }

    #[test]
    fn members_split_the_load_and_add_up_to_the_pool() {
        let b = Bucket::of_pool(&seed(), &traffic(), &steady(4), 300.0, 600.0);
        assert_eq!(b.member_conns().collect::<Vec<_>>(), [250.0; 4]);
        assert_eq!(b.pool_conns(), 1000.0);
    }

    #[test]
    fn a_member_joining_mid_bucket_counts_from_then_on() {
        let mut members = steady(4);
        members.set_count(450.0, 5);
        let b = Bucket::of_pool(&seed(), &traffic(), &members, 300.0, 600.0);
        let lines: Vec<f64> = b.member_conns().collect();
        // The first four had 1000/4 for 150 s, then 1000/5; the fifth 1000/5 for 150 s.
        assert_eq!(lines, [225.0, 225.0, 225.0, 225.0, 100.0]);
        assert_eq!(b.pool_conns(), 1000.0);
        assert_eq!(b.pool.server_integral / b.seconds(), 4.5);
    }

    #[test]
    fn a_jump_inside_a_bucket_is_counted_exactly() {
        // All users leave at 1320, 120 s into [1200, 1500).
        let b = Bucket::of_pool(&seed(), &traffic(), &steady(2), 1200.0, 1500.0);
        assert_eq!(b.member_conns().collect::<Vec<_>>(), [200.0, 200.0]);
        assert_eq!(b.pool.closed_conns, 1000.0);
        assert_eq!(b.pool.max_conns, 1000.0);
        assert_eq!(client_conns(&seed(), &traffic(), 1200.0, 1500.0), 400.0);
    }

    #[test]
    fn connections_without_members_reach_no_server() {
        let members = Membership::from_lifetimes([(150.0, f64::INFINITY)], IP, 8080);
        let b = Bucket::of_pool(&seed(), &traffic(), &members, 300.0, 600.0);
        assert_eq!(b.pool_conns(), 1000.0);
        let b = Bucket::of_pool(&seed(), &traffic(), &members, 0.0, 300.0);
        // [150, 300) at 750 → 1000 → 1000: ∫ = 50 × 875 + 100 × 1000.
        assert_eq!(b.pool_conns(), (50.0 * 875.0 + 100.0 * 1000.0) / 300.0);
        assert_eq!(b.pool.present, 150.0);
        let none = Bucket::of_pool(&seed(), &traffic(), &steady(0), 0.0, 300.0);
        assert!(none.members.is_empty());
        assert_eq!(none.pool_conns(), 0.0);
    }

    proptest! {
        #[test]
        fn members_add_up_to_the_pool_and_serve_every_user(
            max in 0.0f64..5000.0, rate in 0.1f64..50.0, stop in 0.0f64..3000.0,
            changes in proptest::collection::vec((0.0f64..3000.0, 1u32..8), 0..6),
            start in 0.0f64..2700.0, realtime in any::<bool>(),
        ) {
            let users = ramp(0.0, max, Some(rate), Some(stop), None);
            let mut members = steady(1);
            let mut changes = changes;
            changes.sort_by(|a, b| a.0.total_cmp(&b.0));
            for (t, n) in changes {
                members.set_count(t, n);
            }
            let end = start + if realtime { 5.0 } else { 300.0 };
            let b = Bucket::of_pool(&users, &traffic(), &members, start, end);
            let lines: f64 = b.member_conns().sum();
            let tolerance = 1e-9 * (1.0 + max);
            prop_assert!((lines - b.pool_conns()).abs() <= tolerance);
            // At least one member at every instant: no connection goes unserved.
            let offered = client_conns(&users, &traffic(), start, end);
            prop_assert!((b.pool_conns() - offered).abs() <= tolerance);
            prop_assert!(b.member_conns().all(|v| v >= 0.0 && v <= b.pool.max_conns + tolerance));
        }
    }
}
