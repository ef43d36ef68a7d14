//! Leader election with a coordination.k8s.io Lease.
//!
//! Leadership gates work, not watches: every replica keeps its AviAutoscaler cache warm, only
//! the lease holder polls Avi and writes scale and status; the others count the reconciles they
//! skip. A replica that loses the lease stops writing at once; a standby takes over within the
//! lease duration. On shutdown the holder releases the lease so a standby need not wait.
//!
//! The flag alone is not enough for a write that comes after minutes of Avi calls: the lease
//! manager learns of a lost lease only at its next renewal. So every write is fenced
//! ([`Leadership::fence`]): the Lease is read again and the write goes ahead only if it still
//! names this replica and stays valid for longer than the write can take.
//!
//! Every Lease write is conditional: it carries the resourceVersion of the Lease it was decided
//! on, so a renewal can never land on a Lease another replica took in between (the API server
//! answers 409 and this replica reads the Lease again). A replica renews only a Lease that
//! names it, takes only one that nobody holds or whose holder let it expire, and releases only
//! its own.
//!
//! With shards (`crate::shard`), each shard has a Lease of its own; the holder writes its shard
//! count on it with every acquire and renewal, and every replica keeps a cache of the shard
//! Leases. A write for an object also needs that no older shard Lease claims the object
//! ([`Leadership::claim`]), so processes with different shard counts never act on one object at
//! the same time.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    jiff::Timestamp,
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
    runtime::{WatchStreamExt, reflector, reflector::Store, watcher},
};
use serde_json::{Value, json};
use tokio::{sync::watch, task::JoinHandle};
use tracing::{info, warn};

use crate::{
    shard::{SHARD_COUNT_ANNOTATION, ShardLease, Wait},
    telemetry::Metrics,
};

/// Whether this replica may write.
#[derive(Clone)]
pub struct Leadership {
    flag: Arc<AtomicBool>,
    /// Where to confirm the lease before a write; `None` when leader election is off.
    lease: Option<Arc<LeaseCheck>>,
    /// The shard Leases, to know whether another shard's older Lease claims an object; `None`
    /// when leader election is off.
    shards: Option<Arc<ShardView>>,
}

/// This process's shard Lease and the cache of every Lease in its namespace.
struct ShardView {
    lease: ShardLease,
    leases: Store<Lease>,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("leader", &self.is_leader())
            .field("fenced", &self.lease.is_some())
            .finish()
    }
}

/// What a fence needs to read the Lease again.
struct LeaseCheck {
    api: Api<Lease>,
    name: String,
    identity: String,
    /// How long the lease must still be valid for a write to start: the time a write may take.
    margin: Duration,
}

/// Why a write was not made: this replica cannot be sure it still holds the lease.
#[derive(Debug, thiserror::Error)]
pub enum Fenced {
    /// The lease manager says this replica is not the leader.
    #[error("this replica is not the leader")]
    NotLeader,
    /// The Lease names another holder (or none).
    #[error("the lease is held by {holder:?}, not by this replica")]
    HeldByOther {
        /// The holder the Lease names.
        holder: Option<String>,
    },
    /// The Lease expires before the write could complete.
    #[error("the lease is valid for only {remaining:?} more, less than a write may take")]
    Expiring {
        /// How long the lease stays valid (zero when already expired).
        remaining: Duration,
    },
    /// The Lease could not be read, so it cannot be confirmed.
    #[error("reading the lease")]
    Unreadable(#[source] kube::Error),
    /// Another shard's older Lease claims the object, or this replica's own shard Lease is not
    /// confirmed yet.
    #[error("waiting for the object's shard")]
    Shard(#[source] Wait),
}

/// How long the lease in `spec` stays valid for `identity` after `now`, or why it does not.
///
/// Valid means: held by `identity`, with a renew (or acquire) time and a duration, ending after
/// `now + margin`. A lease without a renew time or duration cannot be confirmed, so it counts
/// as expired.
pub fn remaining_validity(
    spec: Option<&k8s_openapi::api::coordination::v1::LeaseSpec>,
    identity: &str,
    now: Timestamp,
    margin: Duration,
) -> Result<Duration, Fenced> {
    let holder = spec.and_then(|s| s.holder_identity.clone());
    if holder.as_deref() != Some(identity) {
        return Err(Fenced::HeldByOther { holder });
    }
    let spec = spec.expect("a holder implies a spec");
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0);
    let (Some(renewed), Some(seconds)) = (renewed, spec.lease_duration_seconds) else {
        return Err(Fenced::Expiring {
            remaining: Duration::ZERO,
        });
    };
    let expires = renewed
        .as_millisecond()
        .saturating_add(i64::from(seconds.max(0)).saturating_mul(1000));
    let remaining =
        Duration::from_millis(u64::try_from(expires - now.as_millisecond()).unwrap_or(0));
    if remaining > margin {
        Ok(remaining)
    } else {
        Err(Fenced::Expiring { remaining })
    }
}

/// The fence margin for a lease renewed `grace` before its expiry: the time a write may take,
/// kept under the grace so that a holder whose renewals succeed is never fenced.
pub fn fence_margin(grace: Duration) -> Duration {
    WRITE_MARGIN.min(grace / 2)
}

/// The longest a single API write is expected to take; a lease must outlast it.
pub const WRITE_MARGIN: Duration = Duration::from_secs(2);

impl Leadership {
    /// Always leading (leader election off).
    pub fn always() -> Self {
        Leadership {
            flag: Arc::new(AtomicBool::new(true)),
            lease: None,
            shards: None,
        }
    }

    /// Whether this replica's shard may act on the object `namespace/name` now, as the Lease
    /// cache shows the shard Leases (no request). Without leader election every object may be
    /// acted on.
    pub fn claim(&self, namespace: &str, name: &str) -> Result<(), Wait> {
        let Some(view) = &self.shards else {
            return Ok(());
        };
        let leases = view.leases.state();
        view.lease.may_act(
            leases.iter().map(AsRef::as_ref),
            namespace,
            name,
            Timestamp::now(),
        )
    }

    /// Whether this replica holds the lease now, as the lease manager last saw it.
    pub fn is_leader(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// Checks, immediately before a write about the object `namespace/name`, that this replica
    /// still holds a lease that will not expire before the write completes, and that no older
    /// shard Lease claims the object. Without leader election every write may go.
    pub async fn fence(&self, namespace: &str, name: &str) -> Result<(), Fenced> {
        if !self.is_leader() {
            return Err(Fenced::NotLeader);
        }
        self.claim(namespace, name).map_err(Fenced::Shard)?;
        let Some(check) = &self.lease else {
            return Ok(());
        };
        let lease = check
            .api
            .get(&check.name)
            .await
            .map_err(Fenced::Unreadable)?;
        remaining_validity(
            lease.spec.as_ref(),
            &check.identity,
            Timestamp::now(),
            check.margin,
        )
        .map(|_| ())
    }
}

/// Settings of the lease.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    /// Namespace of the Lease (the operator's own).
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// How long a lease lasts without renewal.
    pub duration: Duration,
    /// How long before expiry the holder renews.
    pub grace: Duration,
    /// The shard this replica campaigns for, and the Lease names of all shards.
    pub shard: ShardLease,
}

/// A running election: its leadership flag and the task that keeps it.
pub struct Election {
    /// The flag the reconciler reads.
    pub leadership: Leadership,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The field manager of every Lease write.
const FIELD_MANAGER: &str = "avi-autoscaler-leader-election";

/// How long to wait after a failed Lease read or write (or a lost race for it) before reading
/// it again.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(1);

/// What this replica does with the Lease it has just read.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// The Lease names this replica: renew it.
    Renew,
    /// Nobody holds the Lease, or its holder let it expire: take it.
    Acquire,
    /// Another identity holds a valid lease for `remaining` more.
    Follow {
        /// The holder.
        holder: String,
        /// How long its lease stays valid.
        remaining: Duration,
    },
}

/// Decides what to do with a Lease read at `now`: renew only a Lease that names `identity`,
/// take one only when it has no holder or its holder's lease has expired (a lease without a
/// renew time or a duration counts as expired), and otherwise follow.
pub fn next_step(spec: Option<&LeaseSpec>, identity: &str, now: Timestamp) -> Step {
    let Some(holder) = spec.and_then(|s| s.holder_identity.clone()) else {
        return Step::Acquire;
    };
    if holder == identity {
        return Step::Renew;
    }
    match remaining_validity(spec, &holder, now, Duration::ZERO) {
        Ok(remaining) => Step::Follow { holder, remaining },
        Err(_) => Step::Acquire,
    }
}

/// The merge patch that makes `step` happen, conditional on the Lease's `resource_version`, with
/// the holder's `shard_count` on it; `None` for [`Step::Follow`].
fn lease_patch(
    step: &Step,
    spec: Option<&LeaseSpec>,
    resource_version: &str,
    identity: &str,
    shard_count: u32,
    duration: Duration,
    now: Timestamp,
) -> Option<Value> {
    let seconds = i32::try_from(duration.as_secs()).unwrap_or(i32::MAX);
    let now = json!(MicroTime(now));
    let spec = match step {
        Step::Renew => json!({
            "holderIdentity": identity,
            "renewTime": now,
            "leaseDurationSeconds": seconds,
        }),
        Step::Acquire => json!({
            "holderIdentity": identity,
            "acquireTime": now,
            "renewTime": now,
            "leaseDurationSeconds": seconds,
            "leaseTransitions": spec.and_then(|s| s.lease_transitions).unwrap_or(0).saturating_add(1),
        }),
        Step::Follow { .. } => return None,
    };
    Some(json!({
        "metadata": {
            "resourceVersion": resource_version,
            "annotations": {SHARD_COUNT_ANNOTATION: shard_count.to_string()},
        },
        "spec": spec,
    }))
}

/// The merge patch that releases a Lease this replica holds, conditional on its
/// `resource_version`.
fn release_patch(resource_version: &str) -> Value {
    json!({
        "metadata": {"resourceVersion": resource_version},
        "spec": {"holderIdentity": null, "acquireTime": null, "renewTime": null, "leaseDurationSeconds": null},
    })
}

/// How one round of the election ended.
enum Round {
    /// This replica holds the lease, renewed just now.
    Leading,
    /// Another replica holds it for `remaining` more, or the race for it was lost.
    Following { remaining: Duration },
}

/// The Lease, its settings and where to find it.
struct Campaign {
    api: Api<Lease>,
    settings: LeaseSettings,
}

impl Campaign {
    /// Creates the Lease, empty, if it does not exist.
    async fn ensure_lease(&self) -> Result<(), kube::Error> {
        match self.api.get_opt(&self.settings.name).await? {
            Some(_) => Ok(()),
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.settings.name.clone()),
                        namespace: Some(self.settings.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(LeaseSpec::default()),
                };
                let params = PostParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..PostParams::default()
                };
                match self.api.create(&params, &lease).await {
                    Ok(_) => Ok(()),
                    // Another replica created it first.
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Reads the Lease and renews, takes or follows it.
    async fn round(&self) -> Result<Round, kube::Error> {
        let Some(lease) = self.api.get_opt(&self.settings.name).await? else {
            self.ensure_lease().await?;
            return Ok(Round::Following {
                remaining: Duration::ZERO,
            });
        };
        let now = Timestamp::now();
        let step = next_step(lease.spec.as_ref(), &self.settings.identity, now);
        let rv = lease.metadata.resource_version.clone().unwrap_or_default();
        let Some(patch) = lease_patch(
            &step,
            lease.spec.as_ref(),
            &rv,
            &self.settings.identity,
            self.settings.shard.shard.count,
            self.settings.duration,
            now,
        ) else {
            let Step::Follow { remaining, .. } = step else {
                unreachable!("only following writes nothing")
            };
            return Ok(Round::Following { remaining });
        };
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        match self
            .api
            .patch(&self.settings.name, &params, &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(Round::Leading),
            // The Lease changed since it was read: read it again.
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(Round::Following {
                remaining: Duration::ZERO,
            }),
            Err(e) => Err(e),
        }
    }

    /// Releases the Lease if it still names this replica.
    async fn release(&self) -> Result<bool, kube::Error> {
        let Some(lease) = self.api.get_opt(&self.settings.name).await? else {
            return Ok(false);
        };
        let holder = lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref());
        if holder != Some(self.settings.identity.as_str()) {
            return Ok(false);
        }
        let rv = lease.metadata.resource_version.unwrap_or_default();
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        self.api
            .patch(
                &self.settings.name,
                &params,
                &Patch::Merge(&release_patch(&rv)),
            )
            .await?;
        Ok(true)
    }
}

impl Election {
    /// Starts campaigning for the lease; creates the Lease first if it does not exist.
    pub async fn start(
        client: Client,
        settings: LeaseSettings,
        metrics: Arc<Metrics>,
    ) -> Result<Self, kube::Error> {
        let api: Api<Lease> = Api::namespaced(client, &settings.namespace);
        let shard_lease = settings.shard.clone();
        let check = LeaseCheck {
            api: api.clone(),
            name: settings.name.clone(),
            identity: settings.identity.clone(),
            margin: fence_margin(settings.grace),
        };
        let duration = settings.duration.max(Duration::from_secs(2));
        let grace = settings
            .grace
            .clamp(Duration::from_secs(1), duration - Duration::from_secs(1));
        let campaign = Campaign {
            api,
            settings: LeaseSettings {
                duration,
                grace,
                ..settings
            },
        };
        campaign.ensure_lease().await?;
        let (leases, leases_task) = watch_leases(campaign.api.clone());
        let flag = Arc::new(AtomicBool::new(false));
        let (stop, mut stopped) = watch::channel(false);
        let leading = flag.clone();
        let task = tokio::spawn(async move {
            let name = campaign.settings.name.clone();
            loop {
                let (is_leader, wait) = match campaign.round().await {
                    // Renew `grace` before the lease written just now expires.
                    Ok(Round::Leading) => (true, duration - grace),
                    // Look again when the holder's lease ends, and at least every `grace`,
                    // so a released Lease is taken soon.
                    Ok(Round::Following { remaining }) => {
                        (false, remaining.min(grace).max(Duration::from_millis(100)))
                    }
                    Err(e) => {
                        // Lost contact with the API server: stop writing until the lease is
                        // confirmed again.
                        warn!(error = &e as &dyn std::error::Error, "lease renewal failed");
                        (false, RETRY_AFTER_ERROR)
                    }
                };
                if is_leader != leading.swap(is_leader, Ordering::AcqRel) {
                    info!(leader = is_leader, lease = %name, "leadership changed");
                }
                metrics.set_leader(is_leader);
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    _ = stopped.changed() => {
                        leading.store(false, Ordering::Release);
                        metrics.set_leader(false);
                        leases_task.abort();
                        match campaign.release().await {
                            Ok(true) => info!(lease = %name, "lease released"),
                            Ok(false) => {}
                            Err(e) => warn!(error = &e as &dyn std::error::Error, "releasing the lease failed"),
                        }
                        return;
                    }
                }
            }
        });
        Ok(Election {
            leadership: Leadership {
                flag,
                lease: Some(Arc::new(check)),
                shards: Some(Arc::new(ShardView {
                    lease: shard_lease,
                    leases,
                })),
            },
            stop,
            task,
        })
    }

    /// Stops writing and releases the lease.
    pub async fn release(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Keeps a cache of the Leases in the lease namespace; the shard Leases are among them.
fn watch_leases(api: Api<Lease>) -> (Store<Lease>, JoinHandle<()>) {
    let (reader, writer) = reflector::store();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(
            watcher(api, watcher::Config::default().any_semantic())
                .default_backoff()
                .reflect(writer)
                .applied_objects()
        );
        while let Some(event) = stream.next().await {
            if let Err(e) = event {
                warn!(
                    error = &e as &dyn std::error::Error,
                    "watching the leases (needs list and watch on leases): writes wait until it works"
                );
            }
        }
    });
    (reader, task)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    fn lease(holder: &str, renewed: i64, duration: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            renew_time: Some(MicroTime(at(renewed))),
            lease_duration_seconds: Some(duration),
            ..LeaseSpec::default()
        }
    }

    const MARGIN: Duration = Duration::from_secs(2);

    #[test]
    fn a_lease_is_valid_until_renew_time_plus_duration() {
        let spec = lease("a", 0, 15);
        assert_eq!(
            remaining_validity(Some(&spec), "a", at(5), MARGIN).unwrap(),
            Duration::from_secs(10)
        );
        assert_eq!(
            remaining_validity(Some(&spec), "a", at(12), MARGIN).unwrap(),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn a_lease_ending_within_the_margin_or_past_fences_the_write() {
        let spec = lease("a", 0, 15);
        for now in [13, 15, 40] {
            assert!(
                matches!(
                    remaining_validity(Some(&spec), "a", at(now), MARGIN),
                    Err(Fenced::Expiring { .. })
                ),
                "{now}"
            );
        }
        assert!(matches!(
            remaining_validity(Some(&spec), "a", at(20), MARGIN),
            Err(Fenced::Expiring { remaining }) if remaining == Duration::ZERO
        ));
    }

    #[test]
    fn a_lease_held_by_another_identity_or_nobody_fences_the_write() {
        let spec = lease("b", 0, 15);
        assert!(matches!(
            remaining_validity(Some(&spec), "a", at(1), MARGIN),
            Err(Fenced::HeldByOther { holder: Some(h) }) if h == "b"
        ));
        assert!(matches!(
            remaining_validity(Some(&LeaseSpec::default()), "a", at(1), MARGIN),
            Err(Fenced::HeldByOther { holder: None })
        ));
        assert!(matches!(
            remaining_validity(None, "a", at(1), MARGIN),
            Err(Fenced::HeldByOther { holder: None })
        ));
    }

    #[test]
    fn a_lease_without_renew_time_or_duration_cannot_be_confirmed() {
        let mut spec = lease("a", 0, 15);
        spec.lease_duration_seconds = None;
        assert!(remaining_validity(Some(&spec), "a", at(1), MARGIN).is_err());
        let mut spec = lease("a", 0, 15);
        spec.renew_time = None;
        assert!(remaining_validity(Some(&spec), "a", at(1), MARGIN).is_err());
        spec.acquire_time = Some(MicroTime(at(0)));
        assert!(remaining_validity(Some(&spec), "a", at(1), MARGIN).is_ok());
    }

    #[test]
    fn a_replica_renews_only_its_own_lease() {
        let mine = lease("a", 0, 15);
        assert_eq!(next_step(Some(&mine), "a", at(5)), Step::Renew);
        // Another holder's valid lease is followed, never renewed or taken, even by a replica
        // that held it a moment ago.
        let theirs = lease("b", 0, 15);
        assert_eq!(
            next_step(Some(&theirs), "a", at(5)),
            Step::Follow {
                holder: "b".into(),
                remaining: Duration::from_secs(10)
            }
        );
        assert_eq!(
            lease_patch(
                &next_step(Some(&theirs), "a", at(5)),
                Some(&theirs),
                "7",
                "a",
                2,
                Duration::from_secs(15),
                at(5)
            ),
            None
        );
    }

    #[test]
    fn an_expired_or_free_lease_is_taken() {
        assert_eq!(
            next_step(Some(&lease("b", 0, 15)), "a", at(16)),
            Step::Acquire
        );
        assert_eq!(
            next_step(Some(&LeaseSpec::default()), "a", at(0)),
            Step::Acquire
        );
        assert_eq!(next_step(None, "a", at(0)), Step::Acquire);
        let mut no_duration = lease("b", 0, 15);
        no_duration.lease_duration_seconds = None;
        assert_eq!(next_step(Some(&no_duration), "a", at(1)), Step::Acquire);
    }

    #[test]
    fn every_lease_write_is_conditional_on_the_lease_read() {
        let mut spec = lease("b", 0, 15);
        spec.lease_transitions = Some(3);
        let take = lease_patch(
            &Step::Acquire,
            Some(&spec),
            "42",
            "a",
            2,
            Duration::from_secs(15),
            at(20),
        )
        .unwrap();
        assert_eq!(take["metadata"]["resourceVersion"], "42");
        assert_eq!(take["spec"]["holderIdentity"], "a");
        assert_eq!(take["spec"]["leaseTransitions"], 4);
        assert_eq!(take["spec"]["leaseDurationSeconds"], 15);
        assert_eq!(take["metadata"]["annotations"][SHARD_COUNT_ANNOTATION], "2");
        let renew = lease_patch(
            &Step::Renew,
            Some(&lease("a", 0, 15)),
            "43",
            "a",
            2,
            Duration::from_secs(15),
            at(10),
        )
        .unwrap();
        assert_eq!(renew["metadata"]["resourceVersion"], "43");
        assert_eq!(renew["spec"]["holderIdentity"], "a");
        assert!(renew["spec"].get("acquireTime").is_none());
        assert_eq!(
            renew["metadata"]["annotations"][SHARD_COUNT_ANNOTATION],
            "2"
        );
        assert_eq!(release_patch("44")["metadata"]["resourceVersion"], "44");
        assert!(release_patch("44")["spec"]["holderIdentity"].is_null());
    }

    #[test]
    fn the_margin_stays_under_the_renew_grace() {
        assert_eq!(fence_margin(Duration::from_secs(5)), WRITE_MARGIN);
        assert_eq!(
            fence_margin(Duration::from_secs(1)),
            Duration::from_millis(500)
        );
    }
}
