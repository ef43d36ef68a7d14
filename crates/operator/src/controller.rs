//! The reconcile loop: one AviAutoscaler per call, following the data flow in docs/architecture.md.
//!
//! gather inputs (connection, samples, the target's scale) → `scaling::decide` → PATCH `/scale`
//! only when the count changes → apply `/status` only when it changed → Events → requeue at the
//! next polling tick.
//!
//! Ticks are aligned to wall-clock multiples of `pollingIntervalSeconds`, so autoscalers with
//! the same interval poll in the same moment and the Avi poller batches them into one request
//! per controller, tenant and entity type. Failures that are not about Avi (the API server
//! refused a write) back off exponentially per object up to [`MAX_BACKOFF`] and reset on success.
//!
//! Every write is fenced: right before it, the lease is confirmed again
//! ([`Leadership::fence`]); a replica that cannot confirm it abandons the reconcile without
//! writing (result `not_leader`). The `/scale` write carries the resourceVersion the decision
//! was made from, so a change made in between (by a person, another controller) is never
//! overwritten: the 409 leaves the target alone until the next tick re-reads it, and a second
//! conflict in a row is reported with a `ScaleConflict` Event.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use api::{AviAutoscaler, ResolvedSpec, k8s::jiff::Timestamp};
use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{controller::Action, reflector::ObjectRef},
};
use serde_json::json;
use tracing::{debug, info, instrument, warn};

use crate::{
    connection::{Connections, SecretOrigin},
    events::Events,
    history::{StatusMemory, Write},
    inline::InlinePolicy,
    leader::{Fenced, Leadership},
    target::{ReadSource, Targets},
    telemetry::{Metrics, ObjectLabels, ReconcileResult},
};

/// The field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = "avi-autoscaler";
/// The first retry after a failed reconcile…
pub const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// …doubling up to this cap.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A reconcile turned away because enough others already wait on the same Avi controller
/// (see `avi::PollerSettings::max_waiting_per_connection`) tries again after this long: by
/// then the answer it asked for is usually cached.
pub const DEFERRED_RETRY: Duration = Duration::from_millis(250);
/// An object another shard's older Lease still claims (while the shard count changes) is looked
/// at again after this long, so it is taken over within about a second of that Lease's release
/// or expiry.
pub const SHARD_WAIT_RECHECK: Duration = Duration::from_secs(1);
/// An invalid spec is looked at again after this long even without a change (the schema may
/// have been bypassed by a stored object that a newer operator version reads differently).
pub const INVALID_SPEC_RECHECK: Duration = Duration::from_secs(600);

/// Everything a reconcile needs; one per process.
pub struct Context {
    /// Kubernetes client.
    pub client: kube::Client,
    /// The Avi poller (batched, cached per tick).
    pub poller: avi::Poller,
    /// Connections built from Secrets.
    pub connections: Connections,
    /// What inline connections may do.
    pub inline: InlinePolicy,
    /// Scale targets.
    pub targets: Targets,
    /// Event publisher.
    pub events: Events,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Whether this replica may write.
    pub leadership: Leadership,
    /// The shard this process manages (`--shard-index` of `--shard-count`).
    pub shard: crate::shard::Shard,
    /// The AviController and Namespace caches `spec.controllerRef` is resolved from.
    pub controller_refs: crate::controller_ref::ControllerRefs,
    /// The namespace the Secrets of AviControllers are read from.
    pub cluster_namespace: String,
    /// The caches that tell whether another autoscaler manages the same target.
    pub owners: crate::ownership::Owners,
    /// Consecutive failures per object, for the backoff.
    pub failures: Mutex<HashMap<ObjectRef<AviAutoscaler>, u32>>,
    /// Consecutive reconciles per object whose `/scale` write met a 409.
    pub scale_conflicts: Mutex<HashMap<ObjectRef<AviAutoscaler>, u32>>,
    /// Statuses decided that the cached objects do not show yet.
    pub statuses: StatusMemory,
}

impl Context {
    /// Drops what the process keeps about a deleted AviAutoscaler: its metric series, its
    /// Event series and its backoff entry. (A periodic sweep in `run` catches deletions a
    /// watch missed; cached Secrets are shared, so only that sweep drops them.)
    pub fn forget(&self, obj: &AviAutoscaler) {
        let namespace = obj.namespace().unwrap_or_default();
        let name = obj.name_any();
        self.metrics
            .retain_objects(|ns, n| !(ns == namespace && n == name));
        if let Some(uid) = obj.uid() {
            self.events.retain_objects(|u| u != uid);
        }
        self.failures
            .lock()
            .expect("backoff lock poisoned")
            .remove(&ObjectRef::from(obj));
        self.scale_conflicts
            .lock()
            .expect("conflict lock poisoned")
            .remove(&ObjectRef::from(obj));
        self.statuses.forget(obj);
    }

    /// Counts one more `/scale` conflict of `obj` in a row (or resets the count after a
    /// write without one) and returns the count.
    fn count_scale_conflict(&self, obj: &AviAutoscaler, conflict: bool) -> u32 {
        let mut conflicts = self.scale_conflicts.lock().expect("conflict lock poisoned");
        let key = ObjectRef::from(obj);
        if conflict {
            let n = conflicts.entry(key).or_default();
            *n += 1;
            *n
        } else {
            conflicts.remove(&key);
            0
        }
    }
}

/// Abandons a reconcile whose lease cannot be confirmed before a write: nothing is written,
/// the next tick tries again (by then on whichever replica holds the lease).
fn fenced(
    spec: &Result<ResolvedSpec, api::InvalidSpec>,
    why: &Fenced,
    write: &str,
) -> (Action, ReconcileResult) {
    warn!(
        error = why as &dyn std::error::Error,
        write, "lease not confirmed: abandoning the reconcile without writing"
    );
    (next_poll(spec), ReconcileResult::NotLeader)
}

/// A reconcile that could not complete.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object has no namespace (impossible for a namespaced kind; kept for safety).
    #[error("AviAutoscaler {0} has no namespace")]
    NoNamespace(String),
    /// Writing status failed.
    #[error("updating the status of AviAutoscaler {namespace}/{name}")]
    PatchStatus {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Writing the target's scale failed (the status says so too).
    #[error("updating the scale of the target of AviAutoscaler {namespace}/{name}")]
    PatchScale {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The cause.
        #[source]
        source: crate::target::TargetError,
    },
}

impl Error {
    /// Whether the write met a 409: the object changed after the version it was made from.
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            Error::PatchStatus {
                source: kube::Error::Api(status),
                ..
            } if status.code == 409
        )
    }

    /// A fixed, low-cardinality name for metrics and logs.
    pub fn category(&self) -> &'static str {
        match self {
            Error::NoNamespace(_) => "no_namespace",
            Error::PatchStatus { .. } => "patch_status",
            Error::PatchScale { .. } => "patch_scale",
        }
    }
}

/// The delay until the next tick: the next wall-clock multiple of `interval`.
pub fn until_next_tick(now: Timestamp, interval: Duration) -> Duration {
    let interval_ms = interval.as_millis().max(1) as i128;
    let now_ms = now.as_millisecond() as i128;
    let next = (now_ms / interval_ms + 1) * interval_ms;
    Duration::from_millis((next - now_ms).clamp(1, i128::from(u32::MAX)) as u64)
}

/// How long ago the current tick began (the last wall-clock multiple of `interval`).
pub fn since_tick_start(now: Timestamp, interval: Duration) -> Duration {
    interval.saturating_sub(until_next_tick(now, interval))
}

fn queries(spec: &ResolvedSpec) -> Vec<avi::MetricQuery> {
    spec.metrics
        .iter()
        .map(avi::MetricQuery::from_metric)
        .collect()
}

/// Reads the metrics of `spec`: one result per metric, or `None` when the Avi controller
/// already has its share of waiting reconciles (try again in [`DEFERRED_RETRY`]).
async fn fetch_samples(
    ctx: &Context,
    namespace: &str,
    spec: &ResolvedSpec,
) -> Option<Vec<Result<scaling::Sample, scaling::Failure>>> {
    let n = spec.metrics.len();
    // An AviController's Secrets live in the cluster-resource namespace, an inline
    // connection's in the autoscaler's own.
    let referenced;
    let (secret_namespace, controller, origin) = match &spec.connection {
        api::ConnectionSource::Inline(c) => (namespace, c, SecretOrigin::Inline),
        api::ConnectionSource::Reference(name) => {
            match ctx.controller_refs.resolve(name, namespace) {
                Ok(c) => referenced = c,
                Err(failure) => return Some(vec![Err(failure); n]),
            }
            (
                ctx.cluster_namespace.as_str(),
                &referenced.spec.connection,
                SecretOrigin::AviController,
            )
        }
    };
    // For an inline connection the policy comes first: a refused one reads no Secret and
    // calls no endpoint. An AviController is the administrators' own and is not restricted.
    let pinned = match &spec.connection {
        api::ConnectionSource::Reference(_) => Default::default(),
        api::ConnectionSource::Inline(inline) => match ctx.inline.check(inline).await {
            Ok(pinned) => pinned,
            Err(e) => {
                let failure = scaling::Failure {
                    reason: e.reason(),
                    message: e.to_string(),
                };
                return Some(vec![Err(failure); n]);
            }
        },
    };
    let conn = match ctx
        .connections
        .build(secret_namespace, controller, origin)
        .await
    {
        Ok(mut c) => {
            // The connection goes to the addresses the policy checked, whatever DNS says later.
            c.pinned_addresses = pinned;
            c
        }
        Err(e) => {
            let failure = scaling::Failure {
                reason: e.reason(),
                message: present::error_chain(&e),
            };
            return Some(vec![Err(failure); n]);
        }
    };
    // Only an answer fetched since this tick began (ticks are aligned, so the previous poll
    // was in an earlier tick), and never one older than half the interval (a timer that fires
    // a moment before its tick): never an answer that was already there at the previous poll,
    // while every reconcile in the first half of the tick shares the tick's one batch. The
    // whole fetch ends within the interval, so the next poll is never late for it.
    let max_age =
        since_tick_start(Timestamp::now(), spec.polling_interval).min(spec.polling_interval / 2);
    let results = ctx
        .poller
        .fetch_within_deadline(&conn, &queries(spec), max_age, spec.polling_interval)
        .await;
    if results
        .iter()
        .any(|r| r.as_ref().is_err_and(avi::Error::is_busy))
    {
        return None;
    }
    if results
        .iter()
        .any(|r| r.as_ref().is_err_and(avi::Error::is_unauthorized))
    {
        // The Secret may have been fixed since it was cached.
        ctx.connections.forget_for(secret_namespace, controller);
    }
    let samples = results
        .into_iter()
        .map(|r| match r {
            Ok(s) => Ok(scaling::Sample {
                value: s.value,
                series: s.series,
                read_at: s.read_at,
            }),
            Err(e) => Err(scaling::Failure {
                reason: e.reason(),
                message: present::error_chain(&e),
            }),
        })
        .collect();
    Some(samples)
}

/// Reconciles one AviAutoscaler.
#[instrument(skip_all, fields(namespace = obj.namespace().unwrap_or_default(), name = obj.name_any()))]
pub async fn reconcile(obj: Arc<AviAutoscaler>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let in_flight = ctx.metrics.reconcile_started();
    let result = reconcile_inner(&obj, &ctx).await;
    drop(in_flight);
    let outcome = match &result {
        Ok((_, outcome)) => *outcome,
        Err(_) => ReconcileResult::Error,
    };
    ctx.metrics
        .reconciled(outcome, started.elapsed().as_secs_f64());
    let (action, _) = result?;
    ctx.failures
        .lock()
        .expect("backoff lock poisoned")
        .remove(&ObjectRef::from(obj.as_ref()));
    Ok(action)
}

/// When to look at an object again: at the next polling tick, or after
/// [`INVALID_SPEC_RECHECK`] when its spec cannot be used.
fn next_poll(spec: &Result<ResolvedSpec, api::InvalidSpec>) -> Action {
    match spec {
        Ok(spec) => Action::requeue(until_next_tick(Timestamp::now(), spec.polling_interval)),
        Err(_) => Action::requeue(INVALID_SPEC_RECHECK),
    }
}

/// One reconcile: the requeue and whether this replica acted (`NotLeader`) or not.
async fn reconcile_inner(
    obj: &AviAutoscaler,
    ctx: &Context,
) -> Result<(Action, ReconcileResult), Error> {
    // Checked against the CRD and resolved once; nothing below reads the raw spec.
    let spec = crate::validation::resolve(obj);
    if !ctx.leadership.is_leader() {
        debug!("not the leader: skipping");
        return Ok((next_poll(&spec), ReconcileResult::NotLeader));
    }
    let namespace = obj
        .namespace()
        .ok_or_else(|| Error::NoNamespace(obj.name_any()))?;
    let name = obj.name_any();
    // This replica's Lease must show it holding its shard; and while the shard count changes, a
    // process with the other count may still hold the object.
    if let Err(wait) = ctx.leadership.claim(&namespace, &name) {
        let result = match wait {
            crate::shard::Wait::NotConfirmed { .. } => {
                warn!(
                    error = &wait as &dyn std::error::Error,
                    "lease not confirmed: skipping the reconcile"
                );
                ReconcileResult::NotLeader
            }
            crate::shard::Wait::ClaimedBy { .. } | crate::shard::Wait::OtherShard { .. } => {
                debug!(
                    error = &wait as &dyn std::error::Error,
                    "waiting for the object's shard"
                );
                ReconcileResult::ShardWait
            }
        };
        return Ok((Action::requeue(SHARD_WAIT_RECHECK), result));
    }
    let labels = ObjectLabels::new(&namespace, &name);

    // Another autoscaler on the same target: hold, so the two never fight over /scale.
    let hold = match &spec {
        Ok(_) => match ctx.owners.conflict(obj) {
            Ok(conflict) => conflict.map(|c| c.hold()),
            Err(e) => {
                debug!(error = %e, "whether the target is shared is not known yet: deferring");
                return Ok((Action::requeue(DEFERRED_RETRY), ReconcileResult::Deferred));
            }
        },
        Err(_) => None,
    };

    // Gather the inputs: samples, then the target's scale (read last, so the decision sees the
    // freshest replica count). A spec that cannot be used, or one that holds, reads no metric;
    // its target is still read, so status shows the replica count that is held.
    let samples = match &spec {
        Ok(_) if hold.is_some() => Vec::new(),
        Ok(spec) => match fetch_samples(ctx, &namespace, spec).await {
            Some(samples) => samples,
            None => {
                debug!("the Avi controller is busy with other reconciles: deferring");
                return Ok((Action::requeue(DEFERRED_RETRY), ReconcileResult::Deferred));
            }
        },
        Err(_) => Vec::new(),
    };
    let target_ref = match &spec {
        Ok(spec) => &spec.scale_target_ref,
        Err(_) => &obj.spec.scale_target_ref,
    };
    let read = ctx.targets.read(&namespace, target_ref).await;
    // A read from the watch of the target's kind made no request.
    if !matches!(&read, Ok(r) if r.source == ReadSource::Watch) {
        ctx.metrics.kube_request("get", "scale", read.is_ok());
    }
    let resource_version = read.as_ref().ok().and_then(|r| r.resource_version.clone());
    let target = read
        .map(|r| scaling::TargetState {
            spec_replicas: r.replicas.spec,
            status_replicas: r.replicas.status,
            ready_replicas: r.replicas.ready,
        })
        .map_err(|e| scaling::Failure {
            reason: api::Reason::FailedGetScale,
            message: e.message(),
        });
    if let Ok(t) = &target {
        ctx.metrics.set_ready_replicas(&labels, t.ready());
    }

    // The status history: the cached one, or a newer one this replica decided and the cache
    // does not show yet (a scale whose status write failed, a write the watch has not brought).
    let history = ctx.statuses.history(obj);
    if history.remembered {
        debug!(
            stored = history.stored,
            "deciding from a status the cached object does not show yet"
        );
    }
    let now = Timestamp::now();
    let mut decision = match &spec {
        Ok(_) if let Some(hold) = &hold => {
            debug!(reason = %hold.reason, message = %hold.message, "another autoscaler manages the target: holding");
            scaling::decide_held(&scaling::HeldInputs {
                hold,
                generation: obj.metadata.generation,
                status: history.status.as_ref(),
                target,
                now,
            })
        }
        Ok(spec) => scaling::decide(&scaling::Inputs {
            spec,
            generation: obj.metadata.generation,
            status: history.status.as_ref(),
            target,
            samples,
            now,
        }),
        Err(invalid) => {
            warn!(error = %invalid, "the spec cannot be used");
            scaling::decide_invalid(&scaling::InvalidInputs {
                invalid,
                generation: obj.metadata.generation,
                status: history.status.as_ref(),
                target,
                now,
            })
        }
    };

    let mut scale_error = None;
    let mut scaled = false;
    // A dry run publishes its decisions and never writes /scale; the engine already returns
    // none to write, and the write path says it once more, since this is the promise a dry run
    // makes next to another autoscaler.
    let dry_run = spec.as_ref().is_ok_and(|s| s.dry_run);
    if decision.scale && !dry_run {
        let from = decision.status.current_replicas;
        if let Err(why) = ctx.leadership.fence(&namespace, &name).await {
            return Ok(fenced(&spec, &why, "scale"));
        }
        match ctx
            .targets
            .patch_scale(
                &namespace,
                target_ref,
                decision.desired_replicas,
                resource_version.as_deref(),
            )
            .await
        {
            Ok(()) => {
                scaled = true;
                ctx.count_scale_conflict(obj, false);
                ctx.metrics.kube_request("patch", "scale", true);
                ctx.metrics.scaled(&labels, from, decision.desired_replicas);
                info!(from, to = decision.desired_replicas, "scaled");
            }
            Err(e @ crate::target::TargetError::Conflict { .. }) => {
                // Someone changed the target after it was read: this decision was made on a
                // replica count that is no longer there. Nothing is written (not even status,
                // which would record a scale that did not happen); the next tick re-reads.
                ctx.metrics.kube_request("patch", "scale", false);
                let in_a_row = ctx.count_scale_conflict(obj, true);
                info!(
                    error = &e as &dyn std::error::Error,
                    in_a_row, "the target changed since it was read: not overwriting it"
                );
                if in_a_row >= 2 {
                    let event = scaling::Event::new(
                        api::EventReason::ScaleConflict,
                        format!(
                            "{} (again: {in_a_row} reconciles in a row); left as it is, read again at the next tick",
                            e.message()
                        ),
                    );
                    if let Err(why) = publish_events(ctx, obj, &[event]).await {
                        return Ok(fenced(&spec, &why, "event"));
                    }
                }
                return Ok((next_poll(&spec), ReconcileResult::Success));
            }
            Err(e) => {
                ctx.metrics.kube_request("patch", "scale", false);
                warn!(error = &e as &dyn std::error::Error, "scale update failed");
                decision = decision.scale_failed(&e.message(), Timestamp::now());
                scale_error = Some(e);
            }
        }
    } else {
        // A reconcile that has nothing to write breaks a run of conflicts.
        ctx.count_scale_conflict(obj, false);
    }

    // The status says which shard manages the object; a process that took it over (from a
    // shard count before) rewrites it.
    decision.status.shard = Some(ctx.shard.status_index());
    // Metrics first: whoever sees the new status also finds /metrics up to date.
    record_metrics(ctx, &labels, &decision);
    if let Ok(spec) = &spec {
        for m in &spec.metrics {
            ctx.metrics.set_metric_target(
                &labels,
                &api::resolved::describe_entity(&m.entity),
                &m.metric_id,
                m.target,
            );
        }
    }
    // A status this decision must not lose: its scale happened, or it carries one that did.
    let must_keep = scaled || history.remembered;
    let written = if !history.stored || history.status.as_ref() != Some(&decision.status) {
        if let Err(why) = ctx.leadership.fence(&namespace, &name).await {
            if must_keep {
                ctx.statuses
                    .remember(obj, &history, &decision.status, Write::Lost);
            }
            return Ok(fenced(&spec, &why, "status"));
        }
        patch_status(
            ctx,
            obj,
            &decision.status,
            history.resource_version.as_deref(),
        )
        .await
        .map(Some)
    } else {
        Ok(None)
    };
    match &written {
        Ok(Some(resource_version)) => ctx.statuses.remember(
            obj,
            &history,
            &decision.status,
            Write::Stored {
                resource_version: resource_version.clone(),
            },
        ),
        Ok(None) => {}
        Err(_) if must_keep => ctx
            .statuses
            .remember(obj, &history, &decision.status, Write::Lost),
        Err(_) => {}
    }
    if let Err(e) = &written
        && e.is_conflict()
    {
        // The object changed after the version this decision was made from (its spec, or a
        // status written elsewhere): decide again on the new version. A scale this decision
        // made is remembered above, and its Events are facts already.
        ctx.statuses.conflicted(obj);
        info!(
            scaled,
            "the AviAutoscaler changed since it was read: deciding again"
        );
        if scaled && let Err(why) = publish_events(ctx, obj, &decision.events).await {
            return Ok(fenced(&spec, &why, "event"));
        }
        return Ok((Action::requeue(DEFERRED_RETRY), ReconcileResult::Deferred));
    }
    let mut events = decision.events.clone();
    if let Err(e) = &written {
        events.push(scaling::Event::new(
            api::EventReason::FailedUpdateStatus,
            present::error_chain(e),
        ));
    }
    if let Err(why) = publish_events(ctx, obj, &events).await {
        return Ok(fenced(&spec, &why, "event"));
    }
    written?;

    if let Some(source) = scale_error {
        return Err(Error::PatchScale {
            namespace,
            name,
            source,
        });
    }
    Ok((next_poll(&spec), ReconcileResult::Success))
}

/// Applies `status` to `obj`, on the condition that the object is still at `resource_version`
/// (a 409 otherwise); returns the resourceVersion the write stored it under.
async fn patch_status(
    ctx: &Context,
    obj: &AviAutoscaler,
    status: &api::AviAutoscalerStatus,
    resource_version: Option<&str>,
) -> Result<Option<String>, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let api: Api<AviAutoscaler> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut body = json!({
        "apiVersion": AviAutoscaler::api_version(&()),
        "kind": AviAutoscaler::kind(&()),
        "status": status,
    });
    if let Some(rv) = resource_version {
        body["metadata"] = json!({"resourceVersion": rv});
    }
    let result = api
        .patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await;
    ctx.metrics
        .kube_request("patch", "aviautoscalers/status", result.is_ok());
    result
        .map(|stored| stored.metadata.resource_version)
        .map_err(|source| Error::PatchStatus {
            namespace,
            name,
            source,
        })
}

/// Publishes `events`, each fenced; stops at the first one the lease cannot be confirmed for.
async fn publish_events(
    ctx: &Context,
    obj: &AviAutoscaler,
    events: &[scaling::Event],
) -> Result<(), Fenced> {
    let reference = obj.object_ref(&());
    let (namespace, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
    for e in events {
        ctx.leadership.fence(&namespace, &name).await?;
        let ok = ctx.events.publish(&reference, e).await;
        ctx.metrics.kube_request("create", "events", ok.is_ok());
        if let Err(err) = ok {
            // An event that cannot be written is not worth failing the reconcile for.
            warn!(error = &err as &dyn std::error::Error, reason = %e.reason, "publishing an event failed");
        }
    }
    Ok(())
}

fn record_metrics(ctx: &Context, labels: &ObjectLabels, decision: &scaling::Decision) {
    ctx.metrics.set_replicas(
        labels,
        decision.status.current_replicas,
        decision.desired_replicas,
    );
    ctx.metrics
        .set_conditions(labels, &decision.status.conditions);
    for status in &decision.status.current_metrics {
        ctx.metrics.set_metric_value(
            labels,
            &api::resolved::describe_entity(&status.entity),
            &status.metric_id,
            status.value,
        );
    }
}

/// After a failed reconcile: retry with exponential backoff per object, capped, with jitter.
pub fn error_policy(obj: Arc<AviAutoscaler>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_failed(error.category());
    warn!(
        namespace = obj.namespace().unwrap_or_default(),
        name = obj.name_any(),
        error = error as &dyn std::error::Error,
        "reconcile failed"
    );
    let attempts = {
        let mut failures = ctx.failures.lock().expect("backoff lock poisoned");
        let n = failures.entry(ObjectRef::from(obj.as_ref())).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    Action::requeue(backoff(attempts, rand::random::<f64>()))
}

/// The delay before retry number `attempts` (1-based): MIN_BACKOFF × 2^(attempts-1), capped at
/// MAX_BACKOFF, with up to 10% jitter (`jitter` in [0, 1)) so failing objects do not retry in
/// lockstep.
pub fn backoff(attempts: u32, jitter: f64) -> Duration {
    let exp = attempts.saturating_sub(1).min(16);
    let base = MIN_BACKOFF.saturating_mul(1 << exp).min(MAX_BACKOFF);
    base.mul_f64(1.0 + 0.1 * jitter.clamp(0.0, 1.0))
        .min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_align_to_multiples_of_the_interval() {
        let t = |s: i64, ms: i64| Timestamp::from_millisecond(s * 1000 + ms).unwrap();
        assert_eq!(
            until_next_tick(t(30, 0), Duration::from_secs(15)),
            Duration::from_secs(15)
        );
        assert_eq!(
            until_next_tick(t(31, 500), Duration::from_secs(15)),
            Duration::from_millis(13_500)
        );
        assert_eq!(
            until_next_tick(t(44, 999), Duration::from_secs(15)),
            Duration::from_millis(1)
        );
        assert_eq!(
            until_next_tick(t(7, 250), Duration::from_secs(1)),
            Duration::from_millis(750)
        );
    }

    #[test]
    fn a_tick_began_at_the_last_multiple_of_the_interval() {
        let t = |s: i64, ms: i64| Timestamp::from_millisecond(s * 1000 + ms).unwrap();
        let interval = Duration::from_secs(15);
        assert_eq!(since_tick_start(t(30, 0), interval), Duration::ZERO);
        assert_eq!(
            since_tick_start(t(37, 250), interval),
            Duration::from_millis(7_250)
        );
        assert_eq!(
            since_tick_start(t(44, 999), interval),
            Duration::from_millis(14_999)
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(1, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(2, 0.0), Duration::from_secs(2));
        assert_eq!(backoff(5, 0.0), Duration::from_secs(16));
        assert_eq!(backoff(20, 0.0), MAX_BACKOFF);
        assert_eq!(backoff(100, 0.99), MAX_BACKOFF);
        assert!(backoff(3, 0.5) > Duration::from_secs(4));
        assert!(backoff(3, 0.5) <= Duration::from_millis(4_400));
    }
}
