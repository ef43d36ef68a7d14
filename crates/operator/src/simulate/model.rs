//! The virtual world a scenario runs in: a target whose pods become ready after a delay, and an
//! Avi controller that reports bucket averages of the load, computed by the load model avi-sim
//! uses too ([`load_model`]), with the target's ready pods as the pool's members.

use std::{collections::HashMap, net::Ipv4Addr};

use api::{Aggregation, EntityType, Reason, ResolvedMetric, k8s::jiff::SignedDuration};
use load_model::{Bucket, Membership, client_conns, closed_bucket};
use scaling::{Decision, Failure, Inputs, Sample, TargetState, decide};

use super::scenario::{Initial, Load, MetricModel, Point, Scenario};

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

    /// The pool's members over time: each pod from when it is ready until it is removed.
    fn members(&self) -> Membership {
        let lifetimes = self.pods.iter().map(|p| {
            let from = if p.ready_at == i64::MIN {
                f64::NEG_INFINITY
            } else {
                p.ready_at as f64
            };
            (from, p.removed_at.map_or(f64::INFINITY, |r| r as f64))
        });
        // The addresses are never shown: a scenario's pool has no real members.
        Membership::from_lifetimes(lifetimes, Ipv4Addr::UNSPECIFIED, 0)
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
        let start = self.scenario.start.as_second();
        let (_, end) = closed_bucket((start + t) as f64, period_secs(metric), 0.0);
        end as i64 - start
    }
}

fn period_secs(metric: &ResolvedMetric) -> f64 {
    metric.aggregation_period().as_secs_f64()
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

/// What Avi reports for the load's metric over the bucket `[end - period, end)`: a pool's
/// member lines combined as the metric's aggregation combines them (the scenario's `per` was
/// checked against it), or one series for other entities. `None` when no pool member had samples in the bucket (Avi answers no line).
fn bucket_average(load: &Load, metric: &ResolvedMetric, end: i64, target: &Target) -> Option<f64> {
    let (start, end) = (end as f64 - period_secs(metric), end as f64);
    let Some(aggregation) = metric.aggregation else {
        return Some(client_conns(&load.users, &load.traffic, start, end));
    };
    let bucket = Bucket::of_pool(&load.users, &load.traffic, &target.members(), start, end);
    if bucket.members.is_empty() {
        return None;
    }
    let lines = bucket.member_conns();
    Some(match aggregation {
        Aggregation::Sum => bucket.pool_conns(),
        Aggregation::Average => lines.sum::<f64>() / bucket.members.len() as f64,
        Aggregation::Max => lines.fold(f64::NEG_INFINITY, f64::max),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed_load() -> Load {
        let spec = load_model::LoadSpec::seed();
        Load {
            users: spec.users(),
            traffic: spec.traffic(),
        }
    }

    fn metric(kind: EntityType, aggregation: Option<Aggregation>) -> ResolvedMetric {
        ResolvedMetric {
            entity: api::EntityRef {
                kind,
                name: Some("p".into()),
                uuid: None,
            },
            metric_id: "l4_server.avg_open_conns".into(),
            aggregation,
            realtime: false,
            target: api::Target::AverageValue(200.0),
            activation_value: None,
        }
    }

    #[test]
    fn member_lines_follow_the_ready_pods_and_combine_as_the_aggregation_says() {
        let mut t = Target::new(
            Initial {
                spec: 4,
                status: 4,
                ready: 4,
            },
            30,
        );
        // A fifth pod, ready at 450: half-way through the bucket [300, 600).
        t.spec = 5;
        t.reconcile(420);
        let read = |kind, aggregation| {
            bucket_average(&seed_load(), &metric(kind, aggregation), 600, &t).unwrap()
        };
        // Four lines of (250 × 150 + 200 × 150) / 300 and one of 200 × 150 / 300.
        assert_eq!(read(EntityType::Pool, Some(Aggregation::Max)), 225.0);
        assert_eq!(read(EntityType::Pool, Some(Aggregation::Average)), 200.0);
        assert_eq!(read(EntityType::Pool, Some(Aggregation::Sum)), 1000.0);
        assert_eq!(read(EntityType::VirtualService, None), 1000.0);
        // No pod was ready during [0, 300) of a target that starts with none.
        let idle = Target::new(
            Initial {
                spec: 1,
                status: 1,
                ready: 0,
            },
            300,
        );
        let m = metric(EntityType::Pool, Some(Aggregation::Sum));
        assert_eq!(bucket_average(&seed_load(), &m, 300, &idle), None);
        assert_eq!(bucket_average(&seed_load(), &m, 600, &idle), Some(1000.0));
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
