//! The scaling engine of avi-autoscaler: a pure function from what the operator observed to
//! what it should do.
//!
//! [`decide`] takes the resolved spec ([`api::ResolvedSpec`], after the operator has checked
//! the object against the CRD), the previous status (the engine's only memory), the target's
//! replica counts, one metric sample per `spec.metrics` entry and the current time, and returns
//! a [`Decision`]: the replica count, whether to write it, per-metric proposals, the complete new
//! status (conditions, histories, metrics) and the events to record. No I/O, no async, no clock:
//! the same inputs always give the same decision, so every rule can be tested exhaustively and a
//! scenario replayed offline (`avi-autoscaler simulate`).
//!
//! ```
//! # use api::{AviAutoscalerSpec, k8s::jiff::Timestamp};
//! # use scaling::{Inputs, Sample, TargetState, decide};
//! # let spec: AviAutoscalerSpec = serde_json::from_value(serde_json::json!({
//! #   "scaleTargetRef": {"name": "kuard"}, "maxReplicas": 5,
//! #   "controller": {"endpoints": ["https://avi.example.com"], "credentialsSecretRef": {"name": "avi"}},
//! #   "metrics": [{"entity": {"type": "pool", "name": "kuard"}, "metricId": "l4_server.avg_open_conns",
//! #                "target": {"type": "AverageValue", "averageValue": 200}}]})).unwrap();
//! let spec = spec.resolve().unwrap();
//! let now: Timestamp = "2026-11-27T15:08:45Z".parse().unwrap();
//! let decision = decide(&Inputs {
//!     spec: &spec,
//!     generation: Some(1),
//!     status: None,
//!     target: Ok(TargetState { spec_replicas: 1, status_replicas: 1, ready_replicas: Some(1) }),
//!     samples: vec![Ok(Sample { value: 1000.0, series: 1, read_at: now })],
//!     now,
//! });
//! assert!(decision.scale);
//! assert_eq!(decision.desired_replicas, 4); // 1000 / 200 = 5, but one step may at most reach max(2 × 1, 4)
//! assert_eq!(decision.events[0].message, "New size: 4; reason: pool/kuard l4_server.avg_open_conns above target");
//! ```
//!
//! # What it decides, in order
//!
//! The HorizontalPodAutoscaler's `reconcileAutoscaler` (kubernetes/kubernetes
//! `pkg/controller/podautoscaler/horizontal.go`), with the Avi-specific steps in between:
//!
//! 1. **Spec.** A spec that cannot be used never reaches [`decide`]: [`decide_invalid`] holds,
//!    with `ScalingActive=False/InvalidSpec` naming each field as the API server would.
//! 2. **Target.** An unreadable `scale` holds: `AbleToScale=False/FailedGetScale`.
//! 3. **Samples.** A failed read, or a value that is NaN, infinite or negative, or a pool with no
//!    members, is a failed metric: bad data is never a reason to scale. A poll with a failed
//!    metric extends `status.consecutiveFailures`; a poll where all metrics read resets it.
//! 4. **Proposals** (`replica_calculator.go`): `Value` → `ceil(value / target × ready
//!    replicas)`, keeping spec replicas inside the tolerance band; `AverageValue` →
//!    `ceil(value / averageValue)`, keeping status replicas inside the band. The band is
//!    inclusive, `1 - scaleDown.tolerance <= ratio <= 1 + scaleUp.tolerance`.
//! 5. **Freshness** (ours): after a scale, a metric still reading the value that scale was based
//!    on, less than one Avi aggregation period (300 s, 5 s realtime) after it, cannot push
//!    further in the same direction (`AbleToScale=True/WaitingForFreshSample`). See below.
//! 6. **Fallback** (ours): once `spec.fallback.failureThreshold` polls in a row had a failed
//!    metric, each failed metric proposes `spec.fallback.replicas` (kept within min/max;
//!    `ScalingActive=False/FallbackActive`). Before that, failures hold as in the
//!    HorizontalPodAutoscaler.
//! 7. **Paused** (ours): `spec.paused` reads and reports but holds
//!    (`ScalingActive=False/Paused`).
//! 8. **Prechecks**: target at 0 replicas → `ScalingActive=False/ScalingDisabled`, no scaling
//!    until someone scales it up by hand; above `maxReplicas` or below `minReplicas` → straight
//!    to the limit.
//! 9. **Combination**: the largest proposal wins. If every metric failed, or some failed and the
//!    rest want fewer replicas, hold (`ScalingActive=False` with the first failure's reason);
//!    otherwise a partial reading may still scale up.
//! 10. **Normalization**: without `spec.behavior`, the legacy path (`max` over a 300 s
//!     scale-down window; a step up to at most `max(2 × current, 4)`; min/max). With it, the
//!     scale-up window keeps the lowest and the scale-down window the highest recommendation,
//!     then the `Pods`/`Percent` policies over their `periodSeconds` (`selectPolicy` `Max`,
//!     `Min` or `Disabled`), then min or max in the direction of movement. Conditions
//!     `AbleToScale` (`ReadyForNewScale`, `ScaleUpStabilized`, `ScaleDownStabilized`) and
//!     `ScalingLimited` (`DesiredWithinRange`, `TooManyReplicas`, `TooFewReplicas`,
//!     `ScaleUpLimit`, `ScaleDownLimit`) say what happened.
//! 11. **Scale**: `AbleToScale=True/SucceededRescale`, a `SuccessfulRescale` event
//!     `New size: N; reason: …`, `lastScaleTime`, a scale event (with `behavior`) and the
//!     freshness record.
//!
//! `Ready` summarises: `True/Active` when the metrics are read and the target managed,
//! otherwise `False` with the reason of what is wrong (`InvalidSpec`, `FailedGetScale`, a metric
//! failure, `FallbackActive`, `Paused`, `ScalingDisabled`, `FailedUpdateScale`). Events are
//! recorded on a scale and when `Ready` changes reason, never on every poll.
//!
//! # Status churn
//!
//! The operator writes status only when it changed, so nothing in it moves on every poll:
//! conditions keep `lastTransitionTime` unless their status flips; `currentMetrics[].sampleTime`
//! is when a value was *first* read; the recommendation history changes only when the
//! recommendation does (one entry per distinct value: the current one with the time it was first
//! made, the others with the time they were last replaced; exactly equivalent to a per-poll list
//! in which an entry counts until the poll that replaced it); `consecutiveFailures` stops
//! counting at the fallback threshold. A
//! decision on unchanged inputs returns a status equal to the previous one. Times are whole
//! seconds, as status stores them.
//!
//! # Freshness gating
//!
//! Never two steps in the same direction on one Avi aggregation bucket.
//!
//! Avi's metric values are averages over 300-second buckets (5 seconds for realtime metrics),
//! and its Prometheus endpoint gives them without a timestamp, so every poll until the next
//! bucket reads the same value again. For a `Value` target that is a trap: the proposal is
//! `ceil(ratio × ready replicas)`, so after a scale-up the same, stale ratio is multiplied by the
//! new, larger replica count and the next poll scales up again on no new information (and the
//! same on the way down).
//!
//! The rule: after a scale, a metric whose value is the one the scale was based on, read less
//! than one aggregation period after the scale, is *stale*, and a stale metric cannot push the
//! replica count further in the direction of that scale than it proposed when the scale was
//! made: its proposal is held at the larger (scaling up; the smaller scaling down) of the
//! current count and that recorded proposal. So a `Value` target cannot multiply an old ratio by
//! the new replica count, while a step that a rate policy cut short still completes on the next
//! poll (an `AverageValue` proposal on the same value is the same): 1000 connections with an
//! AverageValue of 200 go 1 → 4 → 5 on one bucket, as with the HorizontalPodAutoscaler.
//! Without any fresh sample no step goes further in that direction than the recommendation the scale was made for (the
//! legacy path's window could otherwise carry an older, higher recommendation forward; the
//! engine checks this after normalization). Stale metrics still count in the other direction. A
//! metric becomes fresh when its value differs from the recorded one, or when it is read a full
//! aggregation period after the scale (a new bucket that happens to have the same value).
//!
//! What the rule needs is `status.freshness`: the time and direction of the last scale, the
//! values it was based on with what each proposed, and the recommendation they gave. A further
//! scale on the same stale values keeps that record (time included), so the period is counted
//! from the scale that first read them. An object without it (new, or from before the rule) is
//! not held back; a record without proposals (from an older version) holds at the current count.
//!
//! Limits:
//! * Without timestamps a new bucket with exactly the same value is recognised only by time,
//!   one full period after the scale, even if the bucket changed sooner.
//! * With several metrics, a step in the held direction is driven only by fresh metrics.
//! * A poll whose combined proposal the rule changed records no recommendation, so the
//!   stabilization windows see the value as it was first evaluated, not its stale re-readings
//!   (recording the held count would keep a scale-up window closed after the next bucket arrives;
//!   recording the unheld one would let the windows act on the stale value).
//!
//! # Restarts
//!
//! Everything the engine remembers is in status: the recommendations (stabilization), the
//! scale events (rate policies), the freshness record and the failure streak. After a restart
//! the current recommendation read back counts as recommended until the first new poll, which
//! holds a scale-down for one window rather than risk an early one, like the
//! HorizontalPodAutoscaler re-seeding its in-memory history with the current size.
//!
//! # Differences from the HorizontalPodAutoscaler, on purpose
//!
//! * A superseded recommendation counts until the poll that replaced it, not until the last
//!   poll that made it: at most one polling interval longer (see above).
//! * Scale events are pruned after the longest policy period of either direction, and every
//!   event younger than a policy's period counts (the HorizontalPodAutoscaler may overwrite an
//!   outdated event that a longer period of the other direction would still have counted).
//! * A `Value` metric on a target without pods proposes the current count instead of failing.
//! * Condition messages say "the autoscaler" where the HorizontalPodAutoscaler says "the HPA".
//! * The min/max precheck path sets `ScalingActive` from the metrics rather than leaving it.
#![warn(missing_docs)]

mod clock;
mod conditions;
mod decision;
mod engine;
mod freshness;
mod history;
mod inputs;
mod normalize;
mod replicas;

pub use api::EventType;
pub use decision::{Decision, Event, MetricProposal};
pub use engine::{decide, decide_held, decide_invalid};
pub use inputs::{Failure, HeldInputs, Inputs, InvalidInputs, Sample, TargetState};
