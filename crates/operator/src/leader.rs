//! Leader election with a coordination.k8s.io Lease (kube-lease-manager).
//!
//! Leadership gates work, not watches: every replica keeps its AviAutoscaler cache warm, only
//! the lease holder polls Avi and writes scale and status; the others count the reconciles they
//! skip. A replica that loses the lease stops writing at once; a standby takes over within the
//! lease duration. On shutdown the holder releases the lease so a standby need not wait.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseParams};
use tokio::{sync::watch, task::JoinHandle};
use tracing::{info, warn};

use crate::telemetry::Metrics;

/// Whether this replica may write.
#[derive(Clone, Debug)]
pub struct Leadership(Arc<AtomicBool>);

impl Leadership {
    /// Always leading (leader election off).
    pub fn always() -> Self {
        Leadership(Arc::new(AtomicBool::new(true)))
    }

    /// Whether this replica holds the lease now.
    pub fn is_leader(&self) -> bool {
        self.0.load(Ordering::Acquire)
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
            leadership: Leadership(flag),
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
