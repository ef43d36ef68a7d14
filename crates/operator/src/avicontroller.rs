//! The AviController controller: probes each shared controller connection and writes what it
//! found to the AviController's status.
//!
//! A probe logs in and reads the controller's version through the same poller (connection
//! pool, session) the AviAutoscalers' metric reads use, at most once per [`PROBE_INTERVAL`]
//! and on every spec change. Secrets are read from the cluster-resource namespace only. A
//! change of `Ready` publishes an Event on the AviController.

use std::{sync::Arc, time::Duration};

use api::{AviAutoscaler, AviController, AviControllerStatus, k8s::jiff::Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{controller::Action, reflector::Store},
};
use serde_json::json;
use tracing::{debug, info, instrument, warn};

use crate::{
    connection::SecretOrigin,
    controller::{Context, FIELD_MANAGER},
    controller_ref::ControllerRefs,
};

/// How often each AviController is probed (and how long a fixed Secret takes to show).
pub const PROBE_INTERVAL: Duration = Duration::from_secs(30);

/// What the AviController controller needs besides the AviAutoscalers' [`Context`].
pub struct ProbeContext {
    /// The shared reconcile context (poller, connections, events, leadership).
    pub ctx: Arc<Context>,
    /// The namespace AviController Secrets are read from.
    pub namespace: String,
    /// The AviController and Namespace caches.
    pub refs: ControllerRefs,
    /// The AviAutoscaler caches (to count the autoscalers of each AviController).
    pub autoscalers: Vec<Store<AviAutoscaler>>,
}

/// A probe that could not write its result.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing the status failed.
    #[error("updating the status of AviController {name}")]
    PatchStatus {
        /// Name of the AviController.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

/// The outcome of one probe: Ready's status, reason and message, and what was found.
struct Probe {
    ready: bool,
    reason: api::Reason,
    message: String,
    version: Option<String>,
    endpoint: Option<String>,
}

async fn probe(pctx: &ProbeContext, obj: &AviController) -> Probe {
    let failed = |reason, message| Probe {
        ready: false,
        reason,
        message,
        version: None,
        endpoint: None,
    };
    let spec = &obj.spec.connection;
    let conn = match pctx
        .ctx
        .connections
        .build(&pctx.namespace, spec, SecretOrigin::AviController)
        .await
    {
        Ok(c) => c,
        Err(e) => return failed(e.reason(), present::error_chain(&e)),
    };
    match pctx.ctx.poller.probe(&conn).await {
        Ok(info) => Probe {
            ready: true,
            reason: api::Reason::Connected,
            message: format!("logged in to {}, version {}", info.endpoint, info.version),
            version: Some(info.version),
            endpoint: Some(info.endpoint),
        },
        Err(e) => {
            if e.is_unauthorized() || e.is_forbidden() {
                // The Secret may have been fixed since it was cached.
                pctx.ctx.connections.forget_for(&pctx.namespace, spec);
            }
            let reason = if e.is_tls() {
                api::Reason::AviTLSError
            } else {
                e.reason()
            };
            failed(reason, present::error_chain(&e))
        }
    }
}

/// Probes one AviController and writes its status.
#[instrument(skip_all, fields(name = obj.name_any()))]
pub async fn reconcile(obj: Arc<AviController>, pctx: Arc<ProbeContext>) -> Result<Action, Error> {
    let name = obj.name_any();
    if !pctx.ctx.leadership.is_leader() {
        debug!("not the leader: skipping");
        return Ok(Action::requeue(PROBE_INTERVAL));
    }
    // A cluster-scoped object belongs to the shard of "/<name>": one shard probes it.
    if !pctx.ctx.shard.owns("", &name) {
        debug!("another shard probes this AviController: skipping");
        return Ok(Action::requeue(PROBE_INTERVAL));
    }
    let found = probe(&pctx, &obj).await;
    let now = Timestamp::now();
    let previous = obj
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
    let status_str = if found.ready { "True" } else { "False" };
    let flipped = previous.is_none_or(|c| c.status != status_str);
    let last_transition_time = match previous {
        Some(c) if !flipped => c.last_transition_time.clone(),
        _ => Time(now),
    };
    let autoscalers = pctx.refs.count_allowed(
        &obj,
        pctx.autoscalers
            .iter()
            .flat_map(|s| s.state())
            .collect::<Vec<_>>()
            .iter()
            .map(AsRef::as_ref),
    );
    let status = AviControllerStatus {
        conditions: vec![Condition {
            type_: "Ready".to_owned(),
            status: status_str.to_owned(),
            reason: found.reason.to_string(),
            message: found.message.clone(),
            last_transition_time,
            observed_generation: obj.metadata.generation,
        }],
        version: found.version,
        active_endpoint: found.endpoint,
        autoscalers: Some(i32::try_from(autoscalers).unwrap_or(i32::MAX)),
        last_probe_time: Some(Time(now)),
        observed_generation: obj.metadata.generation,
    };
    // The probe may have waited on the network for long: confirm the lease before writing.
    if let Err(why) = pctx.ctx.leadership.fence("", &name).await {
        warn!(
            error = &why as &dyn std::error::Error,
            "lease not confirmed: not writing the AviController's status"
        );
        return Ok(Action::requeue(PROBE_INTERVAL));
    }
    let api: Api<AviController> = Api::all(pctx.ctx.client.clone());
    let body = json!({
        "apiVersion": AviController::api_version(&()),
        "kind": AviController::kind(&()),
        "status": status,
    });
    let written = api
        .patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await;
    pctx.ctx
        .metrics
        .kube_request("patch", "avicontrollers/status", written.is_ok());
    written.map_err(|source| Error::PatchStatus {
        name: name.clone(),
        source,
    })?;
    pctx.ctx.metrics.set_controller_ready(&name, found.ready);
    if flipped {
        info!(ready = found.ready, reason = %found.reason, "AviController readiness changed");
        let reason = if found.ready {
            api::EventReason::Connected
        } else {
            event_reason(found.reason)
        };
        let event = scaling::Event::new(reason, found.message);
        if let Err(why) = pctx.ctx.leadership.fence("", &name).await {
            warn!(
                error = &why as &dyn std::error::Error,
                "lease not confirmed: not publishing the event"
            );
            return Ok(Action::requeue(PROBE_INTERVAL));
        }
        let published = pctx.ctx.events.publish(&obj.object_ref(&()), &event).await;
        pctx.ctx
            .metrics
            .kube_request("create", "events", published.is_ok());
        if let Err(e) = published {
            warn!(
                error = &e as &dyn std::error::Error,
                "publishing an event failed"
            );
        }
    }
    Ok(Action::requeue(PROBE_INTERVAL))
}

/// The status of `controller`'s Ready condition, if it has one.
pub fn ready_status(controller: &AviController) -> Option<String> {
    controller
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.clone())
}

/// The Event reason for a failed probe's condition reason.
fn event_reason(reason: api::Reason) -> api::EventReason {
    match reason {
        api::Reason::AviAuthFailed => api::EventReason::AviAuthFailed,
        api::Reason::AviTLSError => api::EventReason::AviTLSError,
        api::Reason::SecretNotFound => api::EventReason::SecretNotFound,
        api::Reason::SecretForbidden => api::EventReason::SecretForbidden,
        api::Reason::InvalidSpec => api::EventReason::InvalidSpec,
        _ => api::EventReason::AviUnreachable,
    }
}

/// After a failed status write: try again after a probe interval.
pub fn error_policy(obj: Arc<AviController>, error: &Error, pctx: Arc<ProbeContext>) -> Action {
    pctx.ctx
        .metrics
        .reconcile_failed("avicontroller_patch_status");
    warn!(
        name = obj.name_any(),
        error = error as &dyn std::error::Error,
        "probing an AviController failed"
    );
    Action::requeue(PROBE_INTERVAL)
}
