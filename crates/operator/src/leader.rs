//! Leader election with a coordination.k8s.io Lease (kube-lease-manager).
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
//! With shards (`crate::shard`), each shard has a Lease of its own; the holder writes its shard
//! count on it, and every replica keeps a cache of the shard Leases. A write for an object also
//! needs that no older shard Lease claims the object ([`Leadership::claim`]), so processes with
//! different shard counts never act on one object at the same time.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
use k8s_openapi::{api::coordination::v1::Lease, jiff::Timestamp};
use kube::{
    Api, Client, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{WatchStreamExt, reflector, reflector::Store, watcher},
};
use kube_lease_manager::{LeaseManagerBuilder, LeaseParams};
use serde_json::json;
use tokio::{sync::watch, task::JoinHandle};
use tracing::{debug, info, warn};

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

impl Election {
    /// Starts campaigning for the lease.
    pub async fn start(
        client: Client,
        settings: LeaseSettings,
        metrics: Arc<Metrics>,
    ) -> Result<Self, kube_lease_manager::LeaseManagerError> {
        let client_for_leases = client.clone();
        let check = LeaseCheck {
            api: Api::namespaced(client.clone(), &settings.namespace),
            name: settings.name.clone(),
            identity: settings.identity.clone(),
            margin: fence_margin(settings.grace),
        };
        let shard_lease = settings.shard.clone();
        let manager = LeaseManagerBuilder::new(client, &settings.name)
            .with_namespace(&settings.namespace)
            .with_parameters(
                LeaseParams::new(
                    settings.identity.clone(),
                    settings.duration.as_secs().max(2),
                    settings
                        .grace
                        .as_secs()
                        .clamp(1, settings.duration.as_secs().max(2) - 1),
                )
                .with_field_manager("avi-autoscaler-leader-election"),
            )
            .build()
            .await?;
        let (leases, leases_task) = watch_shard_leases(
            Api::namespaced(client_for_leases, &settings.namespace),
            settings.shard.clone(),
        );
        let flag = Arc::new(AtomicBool::new(false));
        let (stop, mut stopped) = watch::channel(false);
        let leading = flag.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = manager.changed() => match changed {
                        Ok(is_leader) => {
                            if is_leader != leading.swap(is_leader, Ordering::AcqRel) {
                                info!(leader = is_leader, lease = %settings.name, "leadership changed");
                            }
                            metrics.set_leader(is_leader);
                        }
                        Err(e) => {
                            // Lost contact with the API server: stop writing until the lease
                            // is confirmed again.
                            leading.store(false, Ordering::Release);
                            metrics.set_leader(false);
                            warn!(error = &e as &dyn std::error::Error, "lease renewal failed");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    },
                    _ = stopped.changed() => {
                        leading.store(false, Ordering::Release);
                        metrics.set_leader(false);
                        leases_task.abort();
                        if let Err(e) = manager.release().await {
                            warn!(error = &e as &dyn std::error::Error, "releasing the lease failed");
                        } else {
                            info!(lease = %settings.name, "lease released");
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

/// Keeps a cache of the Leases in the lease namespace (the shard Leases are among them) and,
/// whenever this replica's own shard Lease names it without its shard count, writes the count
/// on it. The write carries the resourceVersion it was decided on, so it never lands on a Lease
/// that changed holder in between.
fn watch_shard_leases(api: Api<Lease>, shard: ShardLease) -> (Store<Lease>, JoinHandle<()>) {
    let (reader, writer) = reflector::store();
    let count = shard.shard.count.to_string();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(
            watcher(api.clone(), watcher::Config::default().any_semantic())
                .default_backoff()
                .reflect(writer)
                .applied_objects()
        );
        while let Some(event) = stream.next().await {
            let lease = match event {
                Ok(lease) => lease,
                Err(e) => {
                    warn!(
                        error = &e as &dyn std::error::Error,
                        "watching the leases (needs list and watch on leases): writes wait until it works"
                    );
                    continue;
                }
            };
            let is_own = lease.name_any() == shard.name
                && lease
                    .spec
                    .as_ref()
                    .and_then(|s| s.holder_identity.as_deref())
                    == Some(shard.identity.as_str());
            if !is_own || lease.annotations().get(SHARD_COUNT_ANNOTATION) == Some(&count) {
                continue;
            }
            let patch = json!({"metadata": {
                "resourceVersion": lease.resource_version(),
                "annotations": {SHARD_COUNT_ANNOTATION: count},
            }});
            let params = PatchParams {
                field_manager: Some("avi-autoscaler-shard".to_owned()),
                ..PatchParams::default()
            };
            match api.patch(&shard.name, &params, &Patch::Merge(&patch)).await {
                Ok(_) => {
                    info!(lease = %shard.name, shard = %shard.shard, "shard count written on the lease")
                }
                // A conflict means the Lease changed: its next event decides again.
                Err(e) => debug!(
                    error = &e as &dyn std::error::Error,
                    "writing the shard count on the lease"
                ),
            }
        }
    });
    (reader, task)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::{
        api::coordination::v1::LeaseSpec, apimachinery::pkg::apis::meta::v1::MicroTime,
    };

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
    fn the_margin_stays_under_the_renew_grace() {
        assert_eq!(fence_margin(Duration::from_secs(5)), WRITE_MARGIN);
        assert_eq!(
            fence_margin(Duration::from_secs(1)),
            Duration::from_millis(500)
        );
    }
}
