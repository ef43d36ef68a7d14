//! The virtual world a scenario runs in: a target whose pods become ready after a delay, and an
//! Avi controller that reports bucket averages of the load.

use std::collections::HashMap;

use api::{EntityType, Reason, ResolvedMetric, k8s::jiff::SignedDuration};
use scaling::{Decision, Failure, Inputs, Sample, TargetState, decide};

use super::scenario::{Initial, Load, MetricModel, Per, Point, Scenario};

/// One poll of the simulation.
#[derive(Clone, Debug)]
pub struct Tick {
    /// Seconds from the start.
    pub t: i64,
    /// The target as the engine saw it.
    pub target: TargetState,
    /// Each metric's reading (`None` when it failed).
    pub metrics: Vec<Option<f64>>,
    /// What the engine decided.
    pub decision: Decision,
}

/// Runs the scenario: one decision per polling interval from t = 0 to the duration, the target
/// following each scale.
pub fn run(s: &Scenario) -> Vec<Tick> {
    let step = i64::try_from(s.resolved.polling_interval.as_secs())
        .unwrap_or(i64::MAX)
        .max(1);
    let mut target = Target::new(s.initial, s.ready_delay);
    let mut avi = Avi::new(s);
    let mut status = s.status.clone();
    let mut ticks = Vec::new();
    let mut t = 0;
    while t <= s.duration {
        let state = target.state(t, s.has_ready_replicas);
        let samples: Vec<Result<Sample, Failure>> = (0..s.metrics.len())
            .map(|i| avi.read(i, t, &target))
            .collect();
        let decision = decide(&Inputs {
            spec: &s.resolved,
            generation: s.generation,
            status: status.as_ref(),
            target: Ok(state),
            samples: samples.clone(),
            now: s.start + SignedDuration::from_secs(t),
        });
        if decision.scale {
            target.spec = decision.desired_replicas;
        }
        target.reconcile(t);
        status = Some(decision.status.clone());
        ticks.push(Tick {
            t,
            target: state,
            metrics: samples
                .iter()
                .map(|r| r.as_ref().ok().map(|s| s.value))
                .collect(),
            decision,
        });
        t += step;
    }
    ticks
}

/// A pod of the target.
#[derive(Clone, Copy, Debug)]
struct Pod {
    /// When it becomes ready (seconds from the start; `i64::MIN` for pods ready at the start).
    ready_at: i64,
    /// When it was removed.
    removed_at: Option<i64>,
}

impl Pod {
    fn exists_at(&self, t: f64) -> bool {
        self.removed_at.is_none_or(|r| t < r as f64)
    }

    fn is_ready_at(&self, t: f64) -> bool {
        self.ready_at as f64 <= t && self.exists_at(t)
    }
}

/// The scaled workload: its `spec.replicas` and its pods. Missing pods are created right after
/// each decision and become ready `ready_delay` seconds later; surplus pods go at once, those
/// not ready first, then the newest (as a ReplicaSet picks them).
#[derive(Clone, Debug)]
pub struct Target {
    spec: i32,
    pods: Vec<Pod>,
    ready_delay: i64,
}

impl Target {
    fn new(initial: Initial, ready_delay: i64) -> Self {
        let ready = (0..initial.ready).map(|_| Pod {
            ready_at: i64::MIN,
            removed_at: None,
        });
        let pending = (initial.ready..initial.status).map(|_| Pod {
            ready_at: ready_delay,
            removed_at: None,
        });
        Self {
            spec: initial.spec,
            pods: ready.chain(pending).collect(),
            ready_delay,
        }
    }

    fn alive(&self, t: i64) -> impl Iterator<Item = &Pod> {
        self.pods.iter().filter(move |p| p.exists_at(t as f64))
    }

    /// The counts the engine sees at `t`.
    fn state(&self, t: i64, has_ready_replicas: bool) -> TargetState {
        TargetState {
            spec_replicas: self.spec,
            status_replicas: count(self.alive(t).count()),
            ready_replicas: has_ready_replicas.then(|| self.ready_at(t as f64)),
        }
    }

    /// Ready pods at `t`: the pool's members.
    fn ready_at(&self, t: f64) -> i32 {
        count(self.pods.iter().filter(|p| p.is_ready_at(t)).count())
    }

    /// Brings the pods to `spec` at `t`.
    fn reconcile(&mut self, t: i64) {
        let alive = count(self.alive(t).count());
        let spec = self.spec.max(0);
        if alive < spec {
            for _ in alive..spec {
                self.pods.push(Pod {
                    ready_at: t.saturating_add(self.ready_delay),
                    removed_at: None,
                });
            }
        } else if alive > spec {
            let mut victims: Vec<usize> = (0..self.pods.len())
                .filter(|&i| self.pods[i].exists_at(t as f64))
                .collect();
            // Not ready first, then the newest: the latest ready time first.
            victims.sort_by_key(|&i| std::cmp::Reverse((self.pods[i].ready_at, i)));
            for &i in victims.iter().take((alive - spec) as usize) {
                self.pods[i].removed_at = Some(t);
            }
        }
    }
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The simulated controller: what a poll reads for each metric.
struct Avi<'s> {
    scenario: &'s Scenario,
    /// Closed buckets already averaged, by metric and bucket end (seconds from the start).
    buckets: HashMap<(usize, i64), Option<f64>>,
}

impl<'s> Avi<'s> {
    fn new(scenario: &'s Scenario) -> Self {
        Self {
            scenario,
            buckets: HashMap::new(),
        }
    }

    /// What polling metric `i` at `t` returns.
    fn read(&mut self, i: usize, t: i64, target: &Target) -> Result<Sample, Failure> {
        let metric = &self.scenario.resolved.metrics[i];
        let members = target.ready_at(t as f64);
        let series = match metric.entity.kind {
            // Avi answers one series per pool member, and none for a pool without members.
            EntityType::Pool if members == 0 => {
                return Err(Failure::new(
                    Reason::FailedGetAviMetric,
                    "the pool has no members (no ready replica)",
                ));
            }
            EntityType::Pool => u32::try_from(members).unwrap_or(u32::MAX),
            _ => 1,
        };
        let value = match &self.scenario.metrics[i] {
            MetricModel::Series(points) => series_at(points, t)?,
            MetricModel::Load(load) => {
                let end = self.last_bucket_end(metric, t);
                let key = (i, end);
                let value = match self.buckets.get(&key) {
                    Some(v) => *v,
                    None => {
                        let v = bucket_average(load, metric, end, target);
                        self.buckets.insert(key, v);
                        v
                    }
                };
                value.ok_or_else(|| {
                    Failure::new(
                        Reason::FailedGetAviMetric,
                        "the pool had no members in the last bucket",
                    )
                })?
            }
        };
        Ok(Sample {
            value,
            series,
            read_at: self.scenario.start + SignedDuration::from_secs(t),
        })
    }

    /// The end of the latest closed bucket at `t`, in seconds from the start. Buckets are
    /// aligned to the wall clock (multiples of the period since the epoch), as Avi's are.
    fn last_bucket_end(&self, metric: &ResolvedMetric, t: i64) -> i64 {
        let period = period_secs(metric);
        let start = self.scenario.start.as_second();
        let now = start + t;
        now.div_euclid(period) * period - start
    }
}

fn period_secs(metric: &ResolvedMetric) -> i64 {
    i64::try_from(metric.aggregation_period().as_secs())
        .unwrap_or(300)
        .max(1)
}

/// The reading of a series at `t`: the last point at or before it.
fn series_at(points: &[Point], t: i64) -> Result<f64, Failure> {
    let point = points
        .iter()
        .rev()
        .find(|p| p.at <= t)
        .unwrap_or(&points[0]);
    point
        .reading
        .map_err(|reason| Failure::new(reason, format!("simulated {reason}")))
}

/// The average of the load's metric over the bucket `[end - period, end)`, sampled finely
/// (midpoints of 1-second steps, 0.05-second steps for realtime): what Avi reports for it.
/// `None` when the metric is per member and the pool had no member during the bucket.
fn bucket_average(load: &Load, metric: &ResolvedMetric, end: i64, target: &Target) -> Option<f64> {
    let period = period_secs(metric) as f64;
    let step = (period / 100.0).min(1.0);
    let steps = (period / step).round() as i64;
    let from = end as f64 - period;
    let mut sum = 0.0;
    let mut counted = 0u32;
    for k in 0..steps {
        let t = from + (k as f64 + 0.5) * step;
        let total = users(load, t) * load.conns_per_user;
        match load.per {
            Per::Pool => {
                sum += total;
                counted += 1;
            }
            Per::Member => {
                let members = target.ready_at(t);
                if members > 0 {
                    sum += total / f64::from(members);
                    counted += 1;
                }
            }
        }
    }
    (counted > 0).then(|| sum / f64::from(counted))
}

/// Users connected at `t` (seconds from the start): spawning at `spawnRate` from `startAt` up to
/// `maxUsers`, all gone at `stopAt`.
fn users(load: &Load, t: f64) -> f64 {
    let since = t - load.start_at as f64;
    if since < 0.0 || load.stop_at.is_some_and(|s| t >= s as f64) {
        0.0
    } else {
        (load.spawn_rate * since).min(load.max_users)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(max_users: f64) -> Load {
        Load {
            spawn_rate: 5.0,
            max_users,
            start_at: 0,
            stop_at: Some(1320),
            conns_per_user: 1.0,
            per: Per::Pool,
        }
    }

    fn metric(realtime: bool) -> ResolvedMetric {
        ResolvedMetric {
            entity: api::EntityRef {
                kind: EntityType::Pool,
                name: Some("p".into()),
                uuid: None,
            },
            metric_id: "l4_server.avg_open_conns".into(),
            aggregation: Some(api::Aggregation::Sum),
            realtime,
            target: api::Target::AverageValue(200.0),
        }
    }

    fn steady_target(n: i32) -> Target {
        Target::new(
            Initial {
                spec: n,
                status: n,
                ready: n,
            },
            0,
        )
    }

    #[test]
    fn the_seed_buckets_average_the_ramp() {
        let t = steady_target(1);
        let avg = |end| bucket_average(&load(1000.0), &metric(false), end, &t).unwrap();
        // Ramp to 1000 over 200 s, then 100 s at 1000: (200 × 500 + 100 × 1000) / 300.
        assert!((avg(300) - 666.666_666).abs() < 1e-3, "{}", avg(300));
        assert_eq!(avg(600), 1000.0);
        // Stopped at 1320: 120 s of 1000 in [1200, 1500).
        assert!((avg(1500) - 400.0).abs() < 1e-9);
        assert_eq!(avg(1800), 0.0);
        assert_eq!(avg(0), 0.0);
    }

    #[test]
    fn realtime_buckets_are_five_seconds() {
        let t = steady_target(1);
        let avg = bucket_average(&load(1000.0), &metric(true), 10, &t).unwrap();
        // Users 25 → 50 over [5, 10): mean 37.5.
        assert!((avg - 37.5).abs() < 1e-9, "{avg}");
    }

    #[test]
    fn per_member_divides_by_the_ready_members() {
        let mut l = load(1000.0);
        l.per = Per::Member;
        let t = steady_target(4);
        assert_eq!(bucket_average(&l, &metric(false), 600, &t), Some(250.0));
    }

    #[test]
    fn new_pods_become_ready_after_the_delay_and_unready_ones_go_first() {
        let mut t = Target::new(
            Initial {
                spec: 2,
                status: 2,
                ready: 2,
            },
            30,
        );
        t.spec = 4;
        t.reconcile(100);
        let s = t.state(115, true);
        assert_eq!(
            (s.spec_replicas, s.status_replicas, s.ready_replicas),
            (4, 4, Some(2))
        );
        assert_eq!(t.state(130, true).ready_replicas, Some(4));
        t.spec = 3;
        t.reconcile(110);
        // The newest, not-yet-ready pod went.
        assert_eq!(t.state(110, true).status_replicas, 3);
        assert_eq!(t.state(140, true).ready_replicas, Some(3));
        assert_eq!(t.state(140, false).ready_replicas, None);
    }
}
