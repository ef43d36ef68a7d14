//! [`decide`]: one poll, from inputs to a complete decision.
//!
//! The order is the HorizontalPodAutoscaler's `reconcileAutoscaler` (`horizontal.go`): read the
//! scale, seed the recommendation history, the prechecks (replicas 0, above max, below min),
//! one proposal per metric and their combination (`computeReplicasForMetrics`), normalization,
//! the scale, the status. The Avi-specific steps slot in where they belong: sample validation
//! and the failure streak before the proposals, the freshness hold on each proposal, the
//! fallback in place of failed metrics, `paused` before the prechecks.

use api::{
    AviAutoscalerStatus, BasisSample, Behavior, ConditionType, EventReason, FreshnessRecord,
    InvalidSpec, MetricStatus, Mode, Reason, ResolvedFallback, ResolvedMetric, ResolvedSpec,
    ScaleDirection, Target,
};

use crate::{
    clock::{Seconds, secs_of, time_at},
    conditions::{self, ConditionSet},
    decision::{Decision, Event, MetricProposal, rescale},
    freshness,
    history::{Recommendations, ScaleEvents},
    inputs::{Failure, HeldInputs, Inputs, InvalidInputs, Sample, TargetState},
    normalize::normalize,
    replicas::propose,
};

/// Decides what to do on one poll. Pure: the same inputs always give the same decision, and the
/// only memory is `inputs.status`.
///
/// Every outcome is a [`Decision`]: an unreadable target or failed metrics give a decision
/// that holds the replica count and says why in its conditions (and, when the `Ready`
/// condition changes reason, in an event).
pub fn decide(inputs: &Inputs<'_>) -> Decision {
    let previous = inputs.status.cloned().unwrap_or_default();
    let mut draft = Draft::new(&previous, inputs.generation, secs_of(inputs.now));
    draft.status.warnings = warnings(inputs.spec);
    draft.dry_run = inputs.spec.dry_run;
    draft.status.mode = Some(if inputs.spec.paused {
        Mode::Paused
    } else if inputs.spec.dry_run {
        Mode::DryRun
    } else {
        Mode::Active
    });
    match &inputs.target {
        Err(failure) => draft.failed_get_scale(failure),
        Ok(target) => draft.reconcile(inputs.spec, target, &inputs.samples),
    }
    draft.finish()
}

/// Decides on a poll of an object whose spec cannot be used (it breaks a rule of the CRD, or
/// has no typed form): hold the replica count, `ScalingActive` and `Ready` False with reason
/// `InvalidSpec` and a message naming each field, and an `InvalidSpec` event when `Ready`
/// changes reason. Pure, like [`decide`].
pub fn decide_invalid(inputs: &InvalidInputs<'_>) -> Decision {
    let previous = inputs.status.cloned().unwrap_or_default();
    let mut draft = Draft::new(&previous, inputs.generation, secs_of(inputs.now));
    draft.invalid_spec(inputs.invalid, inputs.target.as_ref().ok());
    draft.finish()
}

/// Decides on a poll of an autoscaler that must not scale for now, whatever its metrics say
/// (another object manages the same target): hold the replica count, `AbleToScale` and `Ready`
/// False with the hold's reason and message, and that reason's event when `Ready` changes
/// reason. Reads no metric and never scales. Pure, like [`decide`].
pub fn decide_held(inputs: &HeldInputs<'_>) -> Decision {
    let previous = inputs.status.cloned().unwrap_or_default();
    let mut draft = Draft::new(&previous, inputs.generation, secs_of(inputs.now));
    draft.held(inputs.hold, inputs.target.as_ref().ok());
    draft.finish()
}

/// Configuration that works but probably does not do what was meant, for `status.warnings`.
fn warnings(spec: &ResolvedSpec) -> Vec<String> {
    spec.metrics
        .iter()
        .enumerate()
        .filter(|(_, m)| m.is_value_on_sum())
        .map(|(i, m)| {
            let v = format_number(m.target.amount());
            format!(
                "spec.metrics[{i}]: a Value target on a pool Sum runs away to maxReplicas: the pool total does not fall when replicas are added, so each scale-up multiplies it again; use type AverageValue with averageValue {v} (the total divided among the replicas), or aggregation Average"
            )
        })
        .collect()
}

/// Whether the autoscaler works, for the `Ready` condition.
#[derive(Clone, Debug)]
enum Health {
    Active,
    Problem(Reason, String),
}

/// A scale the decision makes, kept for the event and for [`Decision::scale_failed`].
#[derive(Clone, Debug)]
struct Scale {
    reason: String,
    events_before: Vec<api::ScaleEvent>,
}

/// What one poll brought, for the steps after the proposals.
struct Poll<'a> {
    spec: &'a ResolvedSpec,
    current: i32,
    readings: &'a [Result<Sample, Failure>],
    stale: &'a [bool],
    has_new_information: bool,
    fallback: Option<ResolvedFallback>,
}

/// What a scale was based on, for the freshness record.
struct Basis<'a> {
    readings: &'a [Result<Sample, Failure>],
    /// Which readings were stale (`None`: the min/max prechecks, which read no metric).
    stale: Option<&'a [bool]>,
    has_new_information: bool,
    /// The recommendation before stabilization and rate limits.
    recommendation: i32,
}

/// The decision while it is being made.
struct Draft<'p> {
    previous: &'p AviAutoscalerStatus,
    now: Seconds,
    status: AviAutoscalerStatus,
    conditions: ConditionSet,
    health: Health,
    desired: i32,
    scale: Option<Scale>,
    proposals: Vec<MetricProposal>,
    events: Vec<Event>,
    /// `spec.dryRun`: scales are published, never written.
    dry_run: bool,
}

impl<'p> Draft<'p> {
    fn new(previous: &'p AviAutoscalerStatus, generation: Option<i64>, now: Seconds) -> Self {
        let mut status = previous.clone();
        status.observed_generation = generation;
        Self {
            previous,
            now,
            conditions: ConditionSet::new(&previous.conditions, generation, time_at(now)),
            status,
            health: Health::Active,
            desired: previous.desired_replicas,
            scale: None,
            proposals: Vec::new(),
            events: Vec::new(),
            dry_run: false,
        }
    }

    /// The spec breaks a rule: hold, and say which field.
    fn invalid_spec(&mut self, invalid: &InvalidSpec, target: Option<&TargetState>) {
        let message = conditions::invalid_spec(&invalid.to_string());
        self.conditions.set(
            ConditionType::ScalingActive,
            false,
            Reason::InvalidSpec,
            &message,
        );
        self.health = Health::Problem(Reason::InvalidSpec, message);
        self.status.warnings.clear();
        if let Some(t) = target {
            self.status.current_replicas = t.spec_replicas;
            self.desired = t.spec_replicas;
        }
    }

    /// Something outside the spec forbids scaling: hold the count the target has, and say why.
    fn held(&mut self, hold: &Failure, target: Option<&TargetState>) {
        self.conditions.set(
            ConditionType::AbleToScale,
            false,
            hold.reason,
            &hold.message,
        );
        self.health = Health::Problem(hold.reason, hold.message.clone());
        if let Some(t) = target {
            self.status.current_replicas = t.spec_replicas;
            self.status.desired_replicas = t.spec_replicas;
            self.desired = t.spec_replicas;
        }
    }

    /// The target's scale could not be read: nothing else can be known, so only the condition
    /// changes (`FailedGetScale`).
    fn failed_get_scale(&mut self, failure: &Failure) {
        let message = conditions::failed_get_scale(&failure.message);
        self.conditions.set(
            ConditionType::AbleToScale,
            false,
            Reason::FailedGetScale,
            &message,
        );
        self.health = Health::Problem(Reason::FailedGetScale, failure.message.clone());
    }

    /// The full decision for a valid spec and a readable target.
    fn reconcile(
        &mut self,
        spec: &ResolvedSpec,
        target: &TargetState,
        samples: &[Result<Sample, Failure>],
    ) {
        let now = self.now;
        self.conditions.set(
            ConditionType::AbleToScale,
            true,
            Reason::SucceededGetScale,
            conditions::SUCCEEDED_GET_SCALE,
        );
        self.status.current_replicas = target.spec_replicas;
        // A dry run goes on from the count it would have set, as if it had been written, so
        // that its histories and decisions follow the path an active run would take.
        let would_be = (spec.dry_run && self.previous.mode == Some(Mode::DryRun))
            .then_some(self.previous.desired_replicas)
            .filter(|&n| n != target.spec_replicas);
        let target = &match would_be {
            Some(n) => TargetState {
                spec_replicas: n,
                status_replicas: n,
                ready_replicas: target.ready_replicas.map(|_| n),
            },
            None => *target,
        };
        let current = target.spec_replicas;
        self.desired = current;

        let readings: Vec<Result<Sample, Failure>> = (0..spec.metrics.len())
            .map(|i| validate(samples.get(i)))
            .collect();
        let failed = readings.iter().filter(|r| r.is_err()).count();
        self.status.consecutive_failures = failure_streak(
            self.previous.consecutive_failures,
            failed > 0,
            spec.fallback.as_ref(),
        );
        let fallback = spec
            .fallback
            .filter(|f| failed > 0 && self.status.consecutive_failures >= f.failure_threshold);

        self.status.current_metrics = spec
            .metrics
            .iter()
            .zip(&readings)
            .map(|(m, r)| metric_status(m, r, target, self.previous))
            .collect();
        self.status.metric_summary = metric_summary(spec, &self.status.current_metrics);
        // Which samples are the ones the last scale was based on (see the freshness module).
        let stale: Vec<bool> = spec
            .metrics
            .iter()
            .zip(&readings)
            .map(|(m, r)| match (&self.previous.freshness, r) {
                (Some(f), Ok(s)) => freshness::is_stale(f, m, s),
                _ => false,
            })
            .collect();
        // A fresh sample, or a fallback taking the place of a failed one, is new information.
        let has_new_information = readings.iter().zip(&stale).any(|(r, &s)| r.is_ok() && !s)
            || (fallback.is_some() && failed > 0);
        self.proposals = spec
            .metrics
            .iter()
            .zip(&readings)
            .zip(&stale)
            .map(|((m, r), &s)| self.proposal(spec, m, r, s, target, fallback))
            .collect();
        let combined = combine(&self.proposals, current);
        let active = active_metrics(spec, &readings, &stale);
        let cooled_down = self.track_activity(spec, current, &readings, &active);
        // Between zero and the cooldown, the HorizontalPodAutoscaler's arithmetic with a floor
        // of one replica: only the cooldown takes the target to zero.
        let floored;
        let spec = if spec.min_replicas == 0 {
            floored = ResolvedSpec {
                min_replicas: 1.min(spec.max_replicas),
                ..spec.clone()
            };
            &floored
        } else {
            spec
        };

        let mut recommendations = Recommendations::from_status(&self.previous.recommendations);
        recommendations.seed(current, now);
        recommendations.prune(now, spec.behavior.longest_window());
        let mut scale_events = ScaleEvents::from_status(&self.previous.scale_events);
        scale_events.prune(now, spec.behavior.longest_period());

        if spec.paused {
            self.conditions.set(
                ConditionType::ScalingActive,
                false,
                Reason::Paused,
                conditions::PAUSED,
            );
            self.health = Health::Problem(Reason::Paused, conditions::PAUSED.to_owned());
            self.status.desired_replicas = current;
        } else if current == 0 && spec.activates_from_zero() {
            let basis = Basis {
                readings: &readings,
                stale: Some(&stale),
                has_new_information: true,
                recommendation: spec.min_replicas.max(1),
            };
            self.at_zero(spec, &active, &readings, &basis, &mut scale_events);
        } else if cooled_down {
            self.report_metrics(&combined, spec, fallback);
            self.conditions.set(
                ConditionType::ScalingActive,
                false,
                Reason::ScaledToZero,
                conditions::SCALED_TO_ZERO,
            );
            let basis = Basis {
                readings: &readings,
                stale: Some(&stale),
                has_new_information: true,
                recommendation: 0,
            };
            self.conditions.set(
                ConditionType::ScalingLimited,
                false,
                Reason::DesiredWithinRange,
                conditions::limited_message(Reason::DesiredWithinRange),
            );
            let reason = rescale::cooled_down(spec.scale_to_zero_cooldown.as_secs());
            self.scale_to(spec, current, 0, reason, &basis, &mut scale_events);
        } else if current == 0 {
            // Implicit maintenance mode: someone scaled the target to 0 by hand.
            self.conditions.set(
                ConditionType::ScalingActive,
                false,
                Reason::ScalingDisabled,
                conditions::SCALING_DISABLED,
            );
            self.health = Health::Problem(
                Reason::ScalingDisabled,
                conditions::SCALING_DISABLED.to_owned(),
            );
            self.status.desired_replicas = 0;
        } else if current > spec.max_replicas || current < spec.min_replicas {
            // The prechecks skip metrics, stabilization and rate limits entirely. The metrics
            // are still reported (the HorizontalPodAutoscaler would leave ScalingActive as it
            // was, which could show a state that no longer holds).
            self.report_metrics(&combined, spec, fallback);
            let (replicas, reason) = if current > spec.max_replicas {
                (spec.max_replicas, rescale::ABOVE_MAX)
            } else {
                (spec.min_replicas, rescale::BELOW_MIN)
            };
            let basis = Basis {
                readings: &readings,
                stale: None,
                has_new_information: true,
                recommendation: replicas,
            };
            self.scale_to(
                spec,
                current,
                replicas,
                reason.to_owned(),
                &basis,
                &mut scale_events,
            );
        } else {
            self.report_metrics(&combined, spec, fallback);
            match combined {
                Combined::Hold => {
                    // computeReplicasForMetrics failed: no write, desiredReplicas as it was.
                }
                Combined::Replicas {
                    replicas,
                    unheld,
                    winner,
                } => {
                    let poll = Poll {
                        spec,
                        current,
                        readings: &readings,
                        stale: &stale,
                        has_new_information,
                        fallback,
                    };
                    self.normalize_and_scale(
                        &poll,
                        (replicas, unheld, winner),
                        &mut recommendations,
                        &mut scale_events,
                    );
                }
            }
        }
        self.status.recommendations = recommendations.to_status();
        self.status.scale_events = scale_events.to_status();
    }

    /// Normalises the combined proposal, records it, sets AbleToScale and ScalingLimited, and
    /// scales if the count changes.
    fn normalize_and_scale(
        &mut self,
        poll: &Poll<'_>,
        (replicas, unheld, winner): (i32, i32, Winner),
        recommendations: &mut Recommendations,
        scale_events: &mut ScaleEvents,
    ) {
        let (spec, current, now) = (poll.spec, poll.current, self.now);
        let n = normalize(spec, current, replicas, recommendations, scale_events, now);
        // The proposals are held per metric; the legacy window can still carry an older, higher
        // recommendation forward. Without a fresh sample no step goes further in the direction
        // of the last scale, whatever carries it.
        let step_on_stale_data = !poll.has_new_information
            && self.previous.freshness.as_ref().is_some_and(|f| {
                let limit = freshness::limit(f.direction, current, f.recommendation);
                goes(f.direction, limit, n.replicas)
            });
        let decided = if step_on_stale_data {
            current
        } else {
            n.replicas
        };
        let held_back = step_on_stale_data
            || (unheld != replicas
                && normalize(spec, current, unheld, recommendations, scale_events, now).replicas
                    != decided);
        // A proposal the freshness rule changed is not recorded: a stale value is no new evidence
        // (re-evaluated with the new replica count it only multiplies an old ratio), and the
        // recommendation made when it was fresh stays the one in force. Recording the held value
        // instead would keep a scale-up window closed after the next bucket arrives; recording
        // the unheld one would let the windows act on the stale value.
        if unheld == replicas {
            recommendations.record(replicas, now);
        }
        let (able, able_message) = if held_back {
            (
                Reason::WaitingForFreshSample,
                self.waiting_message(spec, poll.stale),
            )
        } else {
            (n.able_to_scale.0, n.able_to_scale.1.to_owned())
        };
        self.conditions
            .set(ConditionType::AbleToScale, true, able, &able_message);
        let (limited, limit_reason) = n.limited;
        self.conditions.set(
            ConditionType::ScalingLimited,
            limited,
            limit_reason,
            conditions::limited_message(limit_reason),
        );
        self.status.desired_replicas = current;
        if decided != current {
            let reason =
                self.rescale_reason(spec, current, replicas, decided, winner, poll.fallback);
            let basis = Basis {
                readings: poll.readings,
                stale: Some(poll.stale),
                has_new_information: poll.has_new_information,
                recommendation: unheld,
            };
            self.scale_to(spec, current, decided, reason, &basis, scale_events);
        }
    }

    /// What one metric proposes, with the freshness hold and the fallback applied.
    fn proposal(
        &self,
        spec: &ResolvedSpec,
        metric: &ResolvedMetric,
        reading: &Result<Sample, Failure>,
        stale: bool,
        target: &TargetState,
        fallback: Option<ResolvedFallback>,
    ) -> MetricProposal {
        let description = metric.describe();
        match reading {
            Ok(sample) => {
                let proposed = propose(
                    metric.target,
                    sample.value,
                    target,
                    spec.behavior.tolerance_up(),
                    spec.behavior.tolerance_down(),
                );
                let held = self
                    .previous
                    .freshness
                    .as_ref()
                    .filter(|_| stale)
                    .map(|f| {
                        freshness::hold(
                            f.direction,
                            proposed,
                            target.spec_replicas,
                            freshness::basis_replicas(f, metric),
                        )
                    })
                    .filter(|&h| h != proposed);
                MetricProposal {
                    metric: description,
                    value: Ok(sample.value),
                    replicas: Some(held.unwrap_or(proposed)),
                    held_from: held.map(|_| proposed),
                    fallback: false,
                }
            }
            Err(failure) => MetricProposal {
                metric: description,
                value: Err(failure.clone()),
                replicas: fallback.map(|f| f.replicas),
                held_from: None,
                fallback: fallback.is_some(),
            },
        }
    }

    /// Sets ScalingActive (and the health behind Ready) from the metrics.
    fn report_metrics(
        &mut self,
        combined: &Combined,
        spec: &ResolvedSpec,
        fallback: Option<ResolvedFallback>,
    ) {
        let total = self.proposals.len();
        let failures: Vec<(&MetricProposal, &Failure)> = self
            .proposals
            .iter()
            .filter_map(|p| p.value.as_ref().err().map(|f| (p, f)))
            .collect();
        let first = failures
            .first()
            .map(|(p, f)| (f.reason, format!("{}: {}", p.metric, f.message)));
        match (combined, fallback, first) {
            (_, Some(fb), Some((_, first_error))) => {
                let message =
                    conditions::fallback_active(fb.failure_threshold, fb.replicas, &first_error);
                self.conditions.set(
                    ConditionType::ScalingActive,
                    false,
                    Reason::FallbackActive,
                    &message,
                );
                self.health = Health::Problem(Reason::FallbackActive, message);
            }
            (Combined::Hold, _, Some((reason, first_error))) => {
                self.conditions.set(
                    ConditionType::ScalingActive,
                    false,
                    reason,
                    &conditions::unable_to_compute(&first_error),
                );
                self.health = Health::Problem(
                    reason,
                    conditions::invalid_metrics(failures.len(), total, &first_error),
                );
            }
            (Combined::Replicas { winner, .. }, _, first) => {
                let metric = match winner {
                    Winner::Metric(i) => spec.metrics[*i].describe(),
                    Winner::Fallback(i) => spec.metrics[*i].describe(),
                };
                self.conditions.set(
                    ConditionType::ScalingActive,
                    true,
                    Reason::ValidMetricFound,
                    &conditions::valid_metric_found(&metric),
                );
                // Some metrics failed, but the others could still scale up (the
                // HorizontalPodAutoscaler's rule): working, but not as configured.
                self.health = match first {
                    Some((reason, first_error)) => Health::Problem(
                        reason,
                        conditions::invalid_metrics(failures.len(), total, &first_error),
                    ),
                    None => Health::Active,
                };
            }
            (Combined::Hold, _, None) => {
                // Unreachable: a hold needs a failed metric. Say so rather than panic.
                self.health = Health::Problem(
                    Reason::FailedGetAviMetric,
                    conditions::NO_METRIC_EVALUATED.to_owned(),
                );
            }
        }
    }

    /// The AbleToScale message while the freshness rule holds a step back.
    fn waiting_message(&self, spec: &ResolvedSpec, stale: &[bool]) -> String {
        let Some(record) = &self.previous.freshness else {
            return String::new();
        };
        let held: Vec<String> = spec
            .metrics
            .iter()
            .zip(&self.proposals)
            .zip(stale)
            .filter(|(_, s)| **s)
            .map(|((m, p), _)| {
                let value = p
                    .value
                    .as_ref()
                    .map_or_else(|_| "?".to_owned(), |v| format_number(*v));
                let from = time_at(freshness::fresh_from(record, m)).0;
                conditions::still_stale(&p.metric, &value, from)
            })
            .collect();
        conditions::waiting_for_fresh_sample(record.direction, record.time.0, &held)
    }

    /// The event's "reason: …", as the HorizontalPodAutoscaler words it.
    fn rescale_reason(
        &self,
        spec: &ResolvedSpec,
        current: i32,
        desired: i32,
        normalized: i32,
        winner: Winner,
        fallback: Option<ResolvedFallback>,
    ) -> String {
        if let (Winner::Fallback(_), Some(fb)) = (winner, fallback) {
            return rescale::fallback(fb.failure_threshold);
        }
        if desired > current {
            let metric = match winner {
                Winner::Metric(i) | Winner::Fallback(i) => spec.metrics[i].describe(),
            };
            rescale::above_target(&metric)
        } else if desired < current {
            rescale::ALL_BELOW_TARGET.to_owned()
        } else if normalized > current {
            rescale::HIGHER_IN_WINDOW.to_owned()
        } else {
            rescale::LOWER_IN_WINDOW.to_owned()
        }
    }

    /// Scales to `replicas`: the event, the conditions, lastScaleTime, the scale event (with
    /// `behavior`) and the freshness record.
    fn scale_to(
        &mut self,
        spec: &ResolvedSpec,
        current: i32,
        replicas: i32,
        reason: String,
        basis: &Basis<'_>,
        scale_events: &mut ScaleEvents,
    ) {
        let now = self.now;
        let events_before = scale_events.to_status();
        // storeScaleEvent: without behavior the events would never be read.
        if let Behavior::Rules { .. } = spec.behavior {
            scale_events.record(current, replicas, now);
        }
        self.desired = replicas;
        self.status.desired_replicas = replicas;
        self.status.last_scale_time = Some(time_at(now));
        let direction = if replicas > current {
            ScaleDirection::Up
        } else {
            ScaleDirection::Down
        };
        self.status.freshness = Some(self.freshness_record(spec, direction, basis));
        self.conditions.set(
            ConditionType::AbleToScale,
            true,
            Reason::SucceededRescale,
            &conditions::succeeded_rescale(replicas),
        );
        if self.dry_run {
            // Nothing is written, so nothing can fail and there is nothing to roll back.
            self.events
                .push(Event::dry_run_rescale(current, replicas, &reason));
            return;
        }
        self.events
            .push(Event::successful_rescale(replicas, &reason));
        self.scale = Some(Scale {
            reason,
            events_before,
        });
    }

    /// Keeps `status.lastActiveTime` (with `minReplicas: 0`) and says whether the target at
    /// `current` replicas has been idle for the cooldown: no metric above its activation value
    /// on a fresh sample for `scaleToZeroCooldownSeconds`, and every activation metric read and
    /// at or below its activation value on this poll (a failed read says nothing about the
    /// traffic).
    fn track_activity(
        &mut self,
        spec: &ResolvedSpec,
        current: i32,
        readings: &[Result<Sample, Failure>],
        active: &[(usize, f64)],
    ) -> bool {
        if spec.min_replicas != 0 {
            self.status.last_active_time = None;
            return false;
        }
        if !active.is_empty() || (current > 0 && self.status.last_active_time.is_none()) {
            // Without an earlier active sample the cooldown counts from the first poll that
            // sees the target running.
            self.status.last_active_time = Some(time_at(self.now));
        }
        // Every activation metric read, and none above its activation value: a re-read of an
        // active sample is not new evidence for lastActiveTime, but the traffic is still there.
        let all_idle = spec.metrics.iter().zip(readings).all(|(m, r)| {
            m.activation_value
                .is_none_or(|a| r.as_ref().is_ok_and(|s| s.value <= a))
        });
        let idle_since = self
            .status
            .last_active_time
            .as_ref()
            .map_or(self.now, |t| secs_of(t.0));
        let cooldown = i64::try_from(spec.scale_to_zero_cooldown.as_secs()).unwrap_or(i64::MAX);
        current > 0
            && current <= spec.max_replicas
            && all_idle
            && self.now.saturating_sub(idle_since) >= cooldown
    }

    /// A target at zero with activation metrics: wake it on a fresh active sample, or stay.
    fn at_zero(
        &mut self,
        spec: &ResolvedSpec,
        active: &[(usize, f64)],
        readings: &[Result<Sample, Failure>],
        basis: &Basis<'_>,
        scale_events: &mut ScaleEvents,
    ) {
        self.status.desired_replicas = 0;
        // Zero is where the autoscaler means the target to be, not a limit it hit.
        self.conditions.set(
            ConditionType::ScalingLimited,
            false,
            Reason::DesiredWithinRange,
            conditions::limited_message(Reason::DesiredWithinRange),
        );
        if let Some(&(i, value)) = active.first() {
            let metric = spec.metrics[i].describe();
            let replicas = spec.min_replicas.max(1).min(spec.max_replicas.max(1));
            let shown = format_number(value);
            let activation = format_number(spec.metrics[i].activation_value.unwrap_or(0.0));
            self.conditions.set(
                ConditionType::ScalingActive,
                true,
                Reason::ValidMetricFound,
                &conditions::valid_metric_found(&metric),
            );
            self.events
                .push(Event::activated(&metric, &shown, &activation, replicas));
            let reason = rescale::activated(&metric, &shown);
            self.scale_to(spec, 0, replicas, reason, basis, scale_events);
            return;
        }
        self.conditions.set(
            ConditionType::ScalingActive,
            false,
            Reason::ScaledToZero,
            conditions::SCALED_TO_ZERO,
        );
        // Pool metrics fail at zero (a pool without members reports nothing); only the
        // activation metrics must be readable.
        let failed = spec
            .metrics
            .iter()
            .zip(readings)
            .find_map(|(m, r)| match r {
                Err(f) if m.activation_value.is_some() => Some((m.describe(), f)),
                _ => None,
            });
        if let Some((metric, f)) = failed {
            self.health = Health::Problem(f.reason, format!("{metric}: {}", f.message));
        }
    }

    /// What the freshness rule remembers of a scale in `direction` made on `basis`. A scale on
    /// no new information continues the previous one: it keeps that record, whose time starts
    /// the period after which the same values count as a new bucket.
    fn freshness_record(
        &self,
        spec: &ResolvedSpec,
        direction: ScaleDirection,
        basis: &Basis<'_>,
    ) -> FreshnessRecord {
        let previous = self
            .previous
            .freshness
            .as_ref()
            .filter(|f| f.direction == direction);
        if let Some(previous) = previous.filter(|_| !basis.has_new_information) {
            return previous.clone();
        }
        let samples = spec
            .metrics
            .iter()
            .zip(basis.readings)
            .enumerate()
            .filter_map(|(i, (m, r))| {
                let sample = r.as_ref().ok()?;
                let stale = basis.stale.is_some_and(|s| s[i]);
                if let Some(kept) = previous
                    .filter(|_| stale)
                    .and_then(|f| freshness::basis(f, m))
                {
                    // A stale reading is the value an earlier scale recorded: keep what it
                    // proposed then, not its re-evaluation with the new replica count.
                    return Some(kept.clone());
                }
                let proposal = self.proposals.get(i);
                Some(BasisSample {
                    entity: m.entity.clone(),
                    metric_id: m.metric_id.clone(),
                    value: sample.value,
                    replicas: proposal.and_then(|p| p.held_from.or(p.replicas)),
                })
            })
            .collect();
        FreshnessRecord {
            time: time_at(self.now),
            direction,
            samples,
            recommendation: Some(basis.recommendation),
        }
    }

    /// Sets Ready from the health, adds the events of a Ready transition, and assembles the
    /// decision.
    fn finish(mut self) -> Decision {
        let (ok, reason, message) = match &self.health {
            Health::Active if self.dry_run => {
                (true, Reason::DryRun, conditions::DRY_RUN.to_owned())
            }
            Health::Active => (true, Reason::Active, conditions::ACTIVE.to_owned()),
            Health::Problem(reason, message) => (false, *reason, message.clone()),
        };
        let before = conditions::find(&self.previous.conditions, ConditionType::Ready)
            .map(|c| (c.status == "True", Reason::parse(&c.reason)));
        if before != Some((ok, Some(reason))) {
            let before = before.and_then(|(_, r)| r);
            let mut transition = transition_events(before, ok, reason, &message);
            transition.append(&mut self.events);
            self.events = transition;
        }
        self.conditions
            .set(ConditionType::Ready, ok, reason, &message);
        self.status.conditions = self.conditions.to_conditions();
        let decision = Decision::new(
            self.desired,
            self.scale.is_some(),
            self.proposals,
            self.status,
            self.events,
        );
        match self.scale {
            Some(scale) => decision.with_rollback(
                self.previous,
                self.conditions,
                scale.events_before,
                scale.reason,
            ),
            None => decision,
        }
    }
}

/// The metrics above their activation value on a fresh sample, with their values, in spec
/// order. A stale sample is one an earlier decision already acted on.
fn active_metrics(
    spec: &ResolvedSpec,
    readings: &[Result<Sample, Failure>],
    stale: &[bool],
) -> Vec<(usize, f64)> {
    spec.metrics
        .iter()
        .zip(readings)
        .zip(stale)
        .enumerate()
        .filter_map(|(i, ((m, r), &s))| {
            let value = r.as_ref().ok()?.value;
            (!s && m.activation_value.is_some_and(|a| value > a)).then_some((i, value))
        })
        .collect()
}

/// Whether going from `current` to `replicas` is a step in `direction`.
fn goes(direction: ScaleDirection, current: i32, replicas: i32) -> bool {
    match direction {
        ScaleDirection::Up => replicas > current,
        ScaleDirection::Down => replicas < current,
    }
}

/// The events for a change of the Ready condition from `before` to (`ok`, `reason`).
fn transition_events(
    before: Option<Reason>,
    ok: bool,
    reason: Reason,
    message: &str,
) -> Vec<Event> {
    let mut events = Vec::new();
    if before == Some(Reason::Paused) && reason != Reason::Paused {
        events.push(Event::resumed());
    }
    if before == Some(Reason::FallbackActive) && ok {
        events.push(Event::fallback_cleared());
    }
    if !ok && let Some(reason) = problem_event(reason) {
        events.push(Event::new(reason, message));
    }
    events
}

/// The event recorded when `Ready` turns False with `reason`, if any.
fn problem_event(reason: Reason) -> Option<EventReason> {
    match reason {
        Reason::Paused => Some(EventReason::Paused),
        // Not a fault; the HorizontalPodAutoscaler records no event for it either.
        Reason::ScalingDisabled => None,
        // Decision::scale_failed records FailedRescale.
        Reason::FailedUpdateScale => None,
        Reason::FailedGetScale => Some(EventReason::FailedGetScale),
        Reason::InvalidSpec => Some(EventReason::InvalidSpec),
        Reason::FallbackActive => Some(EventReason::FallbackActive),
        Reason::FailedGetAviMetric => Some(EventReason::FailedGetAviMetric),
        Reason::AviAuthFailed => Some(EventReason::AviAuthFailed),
        Reason::AviUnreachable => Some(EventReason::AviUnreachable),
        Reason::SecretNotFound => Some(EventReason::SecretNotFound),
        Reason::SecretForbidden => Some(EventReason::SecretForbidden),
        Reason::ControllerNotFound => Some(EventReason::ControllerNotFound),
        Reason::ControllerNotAllowed => Some(EventReason::ControllerNotAllowed),
        Reason::ControllerNotReady => Some(EventReason::ControllerNotReady),
        Reason::InlineControllerNotAllowed => Some(EventReason::InlineControllerNotAllowed),
        Reason::SecretNotAllowed => Some(EventReason::SecretNotAllowed),
        Reason::EndpointNotAllowed => Some(EventReason::EndpointNotAllowed),
        Reason::AviResponseTooLarge => Some(EventReason::AviResponseTooLarge),
        Reason::AviTLSError => Some(EventReason::AviTLSError),
        Reason::AmbiguousTarget => Some(EventReason::AmbiguousTarget),
        Reason::ConflictingHorizontalPodAutoscaler => {
            Some(EventReason::ConflictingHorizontalPodAutoscaler)
        }
        // Not faults: dry run and scaled to zero are states the user asked for; Connected is an
        // AviController's reason.
        Reason::DryRun | Reason::ScaledToZero | Reason::Connected => None,
        // Reasons that name no fault of their own (a metric failure may carry any reason):
        // the HorizontalPodAutoscaler's generic warning.
        Reason::SucceededGetScale
        | Reason::ReadyForNewScale
        | Reason::ScaleUpStabilized
        | Reason::ScaleDownStabilized
        | Reason::SucceededRescale
        | Reason::ValidMetricFound
        | Reason::DesiredWithinRange
        | Reason::TooManyReplicas
        | Reason::TooFewReplicas
        | Reason::ScaleUpLimit
        | Reason::ScaleDownLimit
        | Reason::WaitingForFreshSample
        | Reason::Active => Some(EventReason::FailedComputeMetricsReplicas),
    }
}

/// A sample as the engine accepts it: bad data is a failed read, never a reason to scale.
fn validate(sample: Option<&Result<Sample, Failure>>) -> Result<Sample, Failure> {
    match sample {
        None => Err(Failure::new(
            Reason::FailedGetAviMetric,
            conditions::NO_SAMPLE,
        )),
        Some(Err(failure)) => Err(failure.clone()),
        Some(Ok(s)) if !(s.value.is_finite() && s.value >= 0.0) => Err(Failure::new(
            Reason::FailedGetAviMetric,
            conditions::not_a_finite_count(s.value),
        )),
        Some(Ok(s)) if s.series == 0 => Err(Failure::new(
            Reason::FailedGetAviMetric,
            conditions::NO_SERIES,
        )),
        Some(Ok(s)) => Ok(*s),
    }
}

/// `status.consecutiveFailures`: polls in a row with a failed metric, counted only as far as
/// the fallback threshold (1 without a fallback), so that an outage does not rewrite the status
/// on every poll. The Ready condition's lastTransitionTime says when the failures began.
fn failure_streak(previous: i32, failed: bool, fallback: Option<&ResolvedFallback>) -> i32 {
    if !failed {
        return 0;
    }
    let cap = fallback.map_or(1, |f| f.failure_threshold.max(1));
    previous.max(0).saturating_add(1).min(cap)
}

/// `status.currentMetrics[i]`. `sampleTime` is when the value was first read: a value read
/// again keeps its time, so re-reading one Avi bucket does not change the status.
fn metric_status(
    metric: &ResolvedMetric,
    reading: &Result<Sample, Failure>,
    target: &TargetState,
    previous: &AviAutoscalerStatus,
) -> MetricStatus {
    let mut status = MetricStatus {
        entity: metric.entity.clone(),
        metric_id: metric.metric_id.clone(),
        value: None,
        average_value: None,
        series: None,
        sample_time: None,
        error: None,
    };
    match reading {
        Ok(s) => {
            let first_read = previous
                .current_metrics
                .iter()
                .find(|p| {
                    p.entity == metric.entity
                        && p.metric_id == metric.metric_id
                        && p.value == Some(s.value)
                })
                .and_then(|p| p.sample_time.clone());
            status.value = Some(s.value);
            status.average_value = match metric.target {
                Target::AverageValue(_) if target.status_replicas > 0 => {
                    Some(s.value / f64::from(target.status_replicas))
                }
                _ => None,
            };
            status.series = Some(i32::try_from(s.series).unwrap_or(i32::MAX));
            status.sample_time = Some(first_read.unwrap_or_else(|| time_at(secs_of(s.read_at))));
        }
        Err(f) => status.error = Some(f.message.clone()),
    }
    status
}

/// `status.metricSummary`, as `kubectl get hpa` prints TARGETS: `cur/tgt` for Value,
/// `avg/tgt (avg)` for AverageValue, `<unknown>` for a failed read, at most two metrics.
fn metric_summary(spec: &ResolvedSpec, statuses: &[MetricStatus]) -> Option<String> {
    let parts: Vec<String> = spec
        .metrics
        .iter()
        .zip(statuses)
        .take(2)
        .map(|(m, s)| match m.target {
            Target::Value(t) => format!("{}/{}", known(s.value), format_number(t)),
            Target::AverageValue(t) => {
                format!("{}/{} (avg)", known(s.average_value), format_number(t))
            }
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    let mut summary = parts.join(", ");
    if spec.metrics.len() > 2 {
        summary.push_str(&format!(" + {} more...", spec.metrics.len() - 2));
    }
    Some(summary)
}

fn known(v: Option<f64>) -> String {
    v.map_or_else(|| "<unknown>".to_owned(), format_number)
}

/// A number for people: integers without a fraction, others with at most two decimals.
pub(crate) fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// Which proposal won the combination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Winner {
    Metric(usize),
    Fallback(usize),
}

/// The proposals combined (`computeReplicasForMetrics`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Combined {
    /// Every metric failed, or some failed and the others want fewer replicas: hold.
    Hold,
    /// The largest valid proposal (with the freshness hold), the same without the hold, and
    /// which proposal won.
    Replicas {
        replicas: i32,
        unheld: i32,
        winner: Winner,
    },
}

/// Takes the largest proposal. Metrics without a proposal are invalid: if all are, or some are
/// and the valid ones would scale down, the decision holds (the HorizontalPodAutoscaler only
/// lets a partial reading scale up).
fn combine(proposals: &[MetricProposal], current: i32) -> Combined {
    let mut replicas = 0;
    let mut unheld = 0;
    let mut winner = None;
    let mut invalid = 0;
    for (i, p) in proposals.iter().enumerate() {
        let Some(r) = p.replicas else {
            invalid += 1;
            continue;
        };
        // `replicas == 0 || proposal > replicas`, as in horizontal.go.
        if winner.is_none() || replicas == 0 || r > replicas {
            replicas = r;
            winner = Some(if p.fallback {
                Winner::Fallback(i)
            } else {
                Winner::Metric(i)
            });
        }
        unheld = unheld.max(p.held_from.unwrap_or(r));
    }
    match winner {
        Some(winner) if !(invalid > 0 && replicas < current) => Combined::Replicas {
            replicas,
            unheld,
            winner,
        },
        _ => Combined::Hold,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(format_number(1000.0), "1000");
        assert_eq!(format_number(666.666_666), "666.67");
        assert_eq!(format_number(0.5), "0.5");
        assert_eq!(format_number(200.10), "200.1");
    }

    fn p(replicas: Option<i32>) -> MetricProposal {
        MetricProposal {
            metric: "m".into(),
            value: replicas
                .map(f64::from)
                .ok_or_else(|| Failure::new(Reason::AviUnreachable, "x")),
            replicas,
            held_from: None,
            fallback: false,
        }
    }

    #[test]
    fn invalid_metrics_combine_like_the_hpa() {
        // All invalid: hold.
        assert_eq!(combine(&[p(None), p(None)], 3), Combined::Hold);
        // Some invalid and the valid ones want fewer: hold.
        assert_eq!(combine(&[p(None), p(Some(2))], 3), Combined::Hold);
        // Some invalid and the valid ones want as many or more: proceed.
        assert_eq!(
            combine(&[p(None), p(Some(3))], 3),
            Combined::Replicas {
                replicas: 3,
                unheld: 3,
                winner: Winner::Metric(1)
            }
        );
        // The largest valid proposal wins; ties go to the first.
        assert_eq!(
            combine(&[p(Some(4)), p(Some(6)), p(Some(6))], 3),
            Combined::Replicas {
                replicas: 6,
                unheld: 6,
                winner: Winner::Metric(1)
            }
        );
    }
}
