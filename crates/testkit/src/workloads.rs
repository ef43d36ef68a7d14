//! A stand-in for the Deployment and StatefulSet controllers: after a configurable delay the
//! status follows `spec.replicas` (`replicas`, `updatedReplicas`, `observedGeneration`), and
//! after a further delay the replicas become ready and available. No Pods or ReplicaSets are
//! created.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::clock;
use crate::patch::Patch;
use crate::store::{ChangeType, ObjKey, Shared, Sub, WriteCtx};

/// How the simulated workload controllers behave.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadSim {
    /// Whether the controllers run at all. When off, status stays as clients write it.
    pub enabled: bool,
    /// Delay between a spec change and the status showing the new replica count
    /// (`replicas`, `updatedReplicas`, `observedGeneration`).
    pub status_delay: Duration,
    /// Further delay until the new replicas are ready (`readyReplicas`, `availableReplicas`).
    pub ready_delay: Duration,
}

impl Default for WorkloadSim {
    fn default() -> Self {
        Self {
            enabled: true,
            status_delay: Duration::from_millis(100),
            ready_delay: Duration::from_millis(100),
        }
    }
}

/// The field manager the simulated controllers write status with.
pub(crate) const MANAGER: &str = "kube-controller-manager";

/// Starts the controllers; they stop when the returned handle is aborted.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    settings: Arc<Mutex<WorkloadSim>>,
) -> tokio::task::JoinHandle<()> {
    let mut deployments = shared.with(|s| s.subscribe("apps/deployments"));
    let mut statefulsets = shared.with(|s| s.subscribe("apps/statefulsets"));
    tokio::spawn(async move {
        let mut scheduled: HashMap<(String, ObjKey), (i64, i64)> = HashMap::new();
        loop {
            let (change, kind) = tokio::select! {
                c = deployments.recv() => (c, "Deployment"),
                c = statefulsets.recv() => (c, "StatefulSet"),
            };
            let Some(change) = change else { return };
            let key = (kind.to_owned(), change.key.clone());
            if change.kind == ChangeType::Deleted {
                scheduled.remove(&key);
                continue;
            }
            let current = settings.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if !current.enabled {
                continue;
            }
            let obj = &change.object;
            let generation = obj
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let replicas = obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            if scheduled.get(&key) == Some(&(generation, replicas))
                || settled(obj, generation, replicas)
            {
                continue;
            }
            scheduled.insert(key, (generation, replicas));
            let shared = shared.clone();
            let (ns, name) = change.key.clone();
            tokio::spawn(async move {
                tokio::time::sleep(current.status_delay).await;
                let immediate = current.ready_delay.is_zero();
                if !write_status(&shared, kind, &ns, &name, generation, replicas, immediate)
                    || immediate
                {
                    return;
                }
                tokio::time::sleep(current.ready_delay).await;
                write_status(&shared, kind, &ns, &name, generation, replicas, true);
            });
        }
    })
}

fn int(obj: &Value, p: &str) -> i64 {
    obj.pointer(p).and_then(Value::as_i64).unwrap_or(0)
}

fn settled(obj: &Value, generation: i64, replicas: i64) -> bool {
    int(obj, "/status/observedGeneration") == generation
        && int(obj, "/status/replicas") == replicas
        && int(obj, "/status/readyReplicas") == replicas
        && int(obj, "/status/updatedReplicas") == replicas
}

/// Omits zero counts, as the API server's `omitempty` does.
fn count(n: i64) -> Value {
    if n == 0 { Value::Null } else { json!(n) }
}

/// Writes the status of a workload at `generation`; returns false if the object changed
/// generation (a newer step owns it) or is gone.
fn write_status(
    shared: &Shared,
    kind: &str,
    ns: &str,
    name: &str,
    generation: i64,
    replicas: i64,
    ready: bool,
) -> bool {
    shared.with(|s| {
        let Some(rt) = s.registry.resolve("apps/v1", kind) else {
            return false;
        };
        let Ok(obj) = s.get(&rt, ns, name) else {
            return false;
        };
        if int(&obj, "/metadata/generation") != generation {
            return false;
        }
        let ready_now = if ready {
            replicas
        } else {
            int(&obj, "/status/readyReplicas").min(replicas)
        };
        let now = clock::now_time();
        let mut status = json!({
            "observedGeneration": generation,
            "replicas": count(replicas),
            "updatedReplicas": count(replicas),
            "readyReplicas": count(ready_now),
            "availableReplicas": count(ready_now),
        });
        if kind == "Deployment" {
            let available = ready_now >= replicas;
            let unavailable = replicas - ready_now;
            status["unavailableReplicas"] = count(unavailable);
            status["conditions"] = json!([
                {
                    "type": "Available",
                    "status": if available { "True" } else { "False" },
                    "reason": if available { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
                    "message": if available { "Deployment has minimum availability." } else { "Deployment does not have minimum availability." },
                    "lastUpdateTime": now, "lastTransitionTime": now,
                },
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": if available { "NewReplicaSetAvailable" } else { "ReplicaSetUpdated" },
                    "message": format!("ReplicaSet \"{name}\" {}", if available { "has successfully progressed." } else { "is progressing." }),
                    "lastUpdateTime": now, "lastTransitionTime": now,
                }
            ]);
        } else {
            status["currentReplicas"] = count(replicas);
        }
        let ctx = WriteCtx {
            field_manager: Some(MANAGER.to_owned()),
            ..WriteCtx::default()
        };
        s.patch(&rt, ns, name, Sub::Status, &Patch::Merge(json!({"status": status})), &ctx)
            .is_ok()
    })
}
