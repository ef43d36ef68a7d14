//! Decoding watched AviAutoscalers one by one, so that one object the operator cannot read
//! does not stop the others.
//!
//! kube-runtime's typed watcher decodes a whole list at once: a single stored object that does
//! not fit the Rust types (an API server before 1.36 stores `maxReplicas: 2147483648` although
//! the schema says int32) fails every list, and nothing in scope is reconciled any more. So the
//! operator watches raw objects ([`DynamicObject`]) and decodes each here. An object that does
//! not decode is logged, reported on itself (conditions `Ready` and `ScalingActive` False with
//! reason `InvalidSpec`, written as a raw JSON merge patch to `/status`, which needs no typed
//! object, and an `InvalidSpec` Event), and left out; if an earlier version of it was decoded,
//! that version is withdrawn, so a stale spec is not acted on. It is reported once per
//! generation, so the status write (which the watch sees again) causes no loop.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use api::{AviAutoscaler, ConditionType, EventReason, Reason, k8s::jiff::Timestamp};
use kube::{
    Api, Resource, ResourceExt,
    api::{ApiResource, DynamicObject, Patch, PatchParams},
    runtime::{reflector::ObjectRef, reflector::Store, watcher},
};
use serde_json::json;
use tracing::{debug, warn};

use crate::controller::{Context, FIELD_MANAGER};

/// The API resource of AviAutoscalers, for raw watches and patches.
pub fn api_resource() -> ApiResource {
    ApiResource::erase::<AviAutoscaler>(&())
}

/// What one raw object decoded to.
enum Decoded {
    /// The typed object.
    Object(AviAutoscaler),
    /// It does not decode (already reported); the version decoded before, if any.
    Undecodable { previous: Option<AviAutoscaler> },
}

/// Decodes the events of one raw watch into typed ones.
pub struct Decoder {
    ctx: Arc<Context>,
    /// The typed objects decoded so far (the watch's cache), to withdraw one that stopped
    /// decoding.
    store: Store<AviAutoscaler>,
    /// The generation reported as undecodable, by uid.
    reported: Mutex<HashMap<String, Option<i64>>>,
}

impl Decoder {
    /// A decoder whose typed objects end up in `store`.
    pub fn new(ctx: Arc<Context>, store: Store<AviAutoscaler>) -> Self {
        Decoder {
            ctx,
            store,
            reported: Mutex::default(),
        }
    }

    /// The typed event for `event`, or `None` when it carries an object that does not decode
    /// and that was never decoded before.
    pub fn event(
        &self,
        event: watcher::Event<DynamicObject>,
    ) -> Option<watcher::Event<AviAutoscaler>> {
        use watcher::Event as E;
        match event {
            E::Init => Some(E::Init),
            E::InitDone => Some(E::InitDone),
            E::InitApply(obj) => match self.decode(obj) {
                Decoded::Object(typed) => Some(E::InitApply(typed)),
                Decoded::Undecodable { .. } => None,
            },
            E::Apply(obj) => match self.decode(obj) {
                Decoded::Object(typed) => Some(E::Apply(typed)),
                Decoded::Undecodable { previous } => previous.map(E::Delete),
            },
            E::Delete(obj) => {
                if let Some(uid) = obj.uid() {
                    self.reported
                        .lock()
                        .expect("decoder lock poisoned")
                        .remove(&uid);
                }
                let previous = self.previous(&obj);
                let deleted = match obj.try_parse::<AviAutoscaler>() {
                    Ok(typed) => Some(typed),
                    Err(_) => previous,
                };
                if let Some(deleted) = &deleted {
                    self.ctx.forget(deleted);
                }
                deleted.map(E::Delete)
            }
        }
    }

    /// The decoded object, or (after reporting the failure) the previously decoded version
    /// of it, if any.
    fn decode(&self, obj: DynamicObject) -> Decoded {
        let previous = self.previous(&obj);
        match obj.clone().try_parse::<AviAutoscaler>() {
            Ok(mut typed) => {
                // Nothing reads the field-manager bookkeeping, which the watch cache would
                // otherwise keep for every object (a copy of the shape of its status).
                typed.metadata.managed_fields = None;
                if let Some(uid) = typed.uid() {
                    self.reported
                        .lock()
                        .expect("decoder lock poisoned")
                        .remove(&uid);
                }
                Decoded::Object(typed)
            }
            Err(e) => {
                let message = format!(
                    "the object cannot be read as an AviAutoscaler: {}",
                    present::error_chain(&e)
                );
                self.report(obj, message);
                Decoded::Undecodable { previous }
            }
        }
    }

    fn previous(&self, obj: &DynamicObject) -> Option<AviAutoscaler> {
        let mut key = ObjectRef::<AviAutoscaler>::new(&obj.name_any());
        if let Some(ns) = obj.namespace() {
            key = key.within(&ns);
        }
        self.store.get(&key).map(|o| (*o).clone())
    }

    /// Logs the object once per generation and, on the leader, writes why to its status and
    /// an Event, in the background.
    fn report(&self, obj: DynamicObject, message: String) {
        let uid = obj.uid().unwrap_or_default();
        let generation = obj.metadata.generation;
        {
            let mut reported = self.reported.lock().expect("decoder lock poisoned");
            if reported.get(&uid) == Some(&generation) {
                return;
            }
            reported.insert(uid, generation);
        }
        warn!(
            namespace = obj.namespace().unwrap_or_default(),
            name = obj.name_any(),
            reason = %message,
            "skipping an AviAutoscaler that cannot be decoded"
        );
        // Only the leader of the object's shard reports it.
        if !self.ctx.leadership.is_leader()
            || !self
                .ctx
                .shard
                .owns(&obj.namespace().unwrap_or_default(), &obj.name_any())
        {
            return;
        }
        let ctx = self.ctx.clone();
        tokio::spawn(async move { report_invalid(&ctx, &obj, &message).await });
    }
}

/// Writes `InvalidSpec` conditions to the status of `obj` and publishes an Event.
async fn report_invalid(ctx: &Context, obj: &DynamicObject, message: &str) {
    let ar = api_resource();
    let namespace = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let now = Timestamp::now().to_string();
    let condition = |type_: ConditionType| {
        json!({
            "type": type_.as_str(),
            "status": "False",
            "reason": Reason::InvalidSpec.as_str(),
            "message": message,
            "lastTransitionTime": now,
            "observedGeneration": obj.metadata.generation,
        })
    };
    let patch = json!({"status": {
        "observedGeneration": obj.metadata.generation,
        "conditions": [condition(ConditionType::Ready), condition(ConditionType::ScalingActive)],
    }});
    if let Err(why) = ctx.leadership.fence(&namespace, &name).await {
        warn!(
            namespace,
            name,
            error = &why as &dyn std::error::Error,
            "lease not confirmed: not reporting the undecodable AviAutoscaler"
        );
        return;
    }
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &namespace, &ar);
    let written = api
        .patch_status(
            &name,
            &PatchParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..PatchParams::default()
            },
            &Patch::Merge(&patch),
        )
        .await;
    ctx.metrics
        .kube_request("patch", "aviautoscalers/status", written.is_ok());
    if let Err(e) = written {
        warn!(
            namespace,
            name,
            error = &e as &dyn std::error::Error,
            "reporting an undecodable AviAutoscaler failed"
        );
        return;
    }
    let reference = obj.object_ref(&ar);
    let event = scaling::Event::new(EventReason::InvalidSpec, message);
    if let Err(why) = ctx.leadership.fence(&namespace, &name).await {
        warn!(
            namespace,
            name,
            error = &why as &dyn std::error::Error,
            "lease not confirmed: not publishing the InvalidSpec event"
        );
        return;
    }
    let published = ctx.events.publish(&reference, &event).await;
    ctx.metrics
        .kube_request("create", "events", published.is_ok());
    if let Err(e) = published {
        debug!(
            error = &e as &dyn std::error::Error,
            "publishing an InvalidSpec event failed"
        );
    }
}
