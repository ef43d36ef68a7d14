//! A local stand-in for the Kubernetes API server, for tests and the demo.
//!
//! [`KubeStandin`] serves the REST and watch protocol over HTTP on 127.0.0.1 and enforces the
//! API server's rules: one global increasing `resourceVersion`, `409 Conflict` on stale
//! updates, `410 Gone` for expired watches, bookmarks, status and scale subresources,
//! `metadata.generation`, merge / JSON / strategic-merge patches and server-side apply with
//! field ownership, CRD-driven serving with schema validation ([`schema`]), Table responses
//! for `kubectl get`, and core/v1 and events.k8s.io/v1 Events as two views of one store.
//!
//! Around it, tests get a [`RequestRecord`] log, [`Fault`] injection, restarts, direct
//! [`Store`] access with [`Store::wait_for`], and a simulated Deployment/StatefulSet
//! controller ([`WorkloadSim`]). The `kube-standin` binary serves the same for other
//! processes, with admin endpoints under `/_testkit/`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use testkit::{Config, Fault, KubeStandin, ObjectRef};
//!
//! let standin = KubeStandin::start(Config::default()).await?;
//! standin.write_kubeconfig(std::path::Path::new("/tmp/kubeconfig"))?;
//! standin.inject(Fault::status(429).method("PATCH").path("*/scale").times(2));
//! let web = ObjectRef::namespaced("apps/v1", "Deployment", "default", "web");
//! standin
//!     .wait_for(|s| s.get(&web).is_some(), Duration::from_secs(30))
//!     .await?;
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod api;
mod clock;
mod direct;
mod discovery;
mod error;
mod events;
mod faults;
mod fields;
mod jsonpath;
mod kubeconfig;
mod openapi;
mod patch;
mod protobuf;
mod resources;
mod selectors;
mod server;
mod store;
mod table;
mod workloads;

/// Validation against a CRD's structural schema and CEL rules (the `crd-schema` crate, which the
/// operator uses too).
pub use crd_schema as schema;
pub use direct::{ObjectRef, STORE_FIELD_MANAGER, Satisfied, Store, WaitTimeout};
pub use error::ApiError;
pub use faults::{Fault, FaultId, RequestRecord};
pub use kubeconfig::{CONTEXT, kubeconfig_yaml};
pub use patch::Patch;
pub use server::{Config, KubeStandin, Restart};
pub use workloads::WorkloadSim;

#[cfg(test)]
mod tests {
    /// Tests share a stand-in across tasks (in an `Arc`) and move store handles into them.
    #[test]
    fn handles_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<super::KubeStandin>();
        assert_send_sync::<super::Store>();
        assert_send_sync::<super::RequestRecord>();
    }
}
