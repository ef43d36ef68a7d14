//! `spec.controllerRef`: which AviController an AviAutoscaler uses, and whether it may.
//!
//! Everything is answered from watch caches (AviControllers, and Namespaces' metadata for the
//! `namespaceSelector`), never with a GET per reconcile. An AviAutoscaler holds its replica
//! count with `ControllerNotFound`, `ControllerNotAllowed` or `ControllerNotReady` until the
//! AviController exists, selects its namespace and is Ready.

use std::sync::Arc;

use api::AviController;
use k8s_openapi::api::core::v1::Namespace;
use kube::{
    ResourceExt,
    core::{PartialObjectMeta, Selector, SelectorExt},
    runtime::reflector::{ObjectRef, Store},
};

/// The watch caches a `controllerRef` is resolved from.
#[derive(Clone)]
pub struct ControllerRefs {
    /// Every AviController.
    pub controllers: Store<AviController>,
    /// The metadata of every Namespace (for the labels a `namespaceSelector` reads).
    pub namespaces: Store<PartialObjectMeta<Namespace>>,
}

impl ControllerRefs {
    /// The AviController `name` if it exists, allows `namespace` and is Ready; otherwise why
    /// not, as the failure every metric of the autoscaler reports.
    pub fn resolve(
        &self,
        name: &str,
        namespace: &str,
    ) -> Result<Arc<AviController>, scaling::Failure> {
        let Some(controller) = self.controllers.get(&ObjectRef::new(name)) else {
            return Err(scaling::Failure {
                reason: api::Reason::ControllerNotFound,
                message: format!(
                    "AviController {name} does not exist: create it (kubectl get avic lists \
                     those there are) or fix spec.controllerRef"
                ),
            });
        };
        let labels = self
            .namespaces
            .get(&ObjectRef::new(namespace))
            .map(|ns| ns.labels().clone())
            .unwrap_or_default();
        allows(&controller, &labels).map_err(|message| scaling::Failure {
            reason: api::Reason::ControllerNotAllowed,
            message,
        })?;
        not_ready(&controller).map_or(Ok(controller), |(reason, message)| {
            Err(scaling::Failure {
                reason: api::Reason::ControllerNotReady,
                message: format!(
                    "AviController {name} is not Ready ({reason}: {message}); see kubectl \
                     describe avic {name}"
                ),
            })
        })
    }

    /// How many AviAutoscalers among `autoscalers` reference `controller` and may use it.
    pub fn count_allowed<'a>(
        &self,
        controller: &AviController,
        autoscalers: impl Iterator<Item = &'a api::AviAutoscaler>,
    ) -> usize {
        let name = controller.name_any();
        autoscalers
            .filter(|a| {
                a.spec
                    .controller_ref
                    .as_ref()
                    .is_some_and(|r| r.name == name)
            })
            .filter(|a| {
                let labels = self
                    .namespaces
                    .get(&ObjectRef::new(&a.namespace().unwrap_or_default()))
                    .map(|ns| ns.labels().clone())
                    .unwrap_or_default();
                allows(controller, &labels).is_ok()
            })
            .count()
    }
}

/// Whether `controller`'s `namespaceSelector` selects a namespace labelled `labels`; otherwise
/// a message saying what to change.
pub fn allows(
    controller: &AviController,
    labels: &std::collections::BTreeMap<String, String>,
) -> Result<(), String> {
    let name = controller.name_any();
    let Some(selector) = &controller.spec.namespace_selector else {
        return Ok(());
    };
    let selector = Selector::try_from(selector.clone()).map_err(|e| {
        format!("the namespaceSelector of AviController {name} cannot be used: {e}")
    })?;
    if selector.matches(labels) {
        Ok(())
    } else {
        Err(format!(
            "AviController {name} does not allow this namespace: label it to match the \
             AviController's namespaceSelector ({selector}), or ask its administrators"
        ))
    }
}

/// The reason and message of `controller`'s Ready condition when it is not True (a
/// controller never probed yet is not Ready).
pub fn not_ready(controller: &AviController) -> Option<(String, String)> {
    let ready = controller
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
    match ready {
        Some(c) if c.status == "True" => None,
        Some(c) => Some((c.reason.clone(), c.message.clone())),
        None => Some((
            "NotProbed".to_owned(),
            "the operator has not probed it yet".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};

    use super::*;

    fn controller(selector: Option<LabelSelector>, ready: Option<(&str, &str)>) -> AviController {
        let spec: api::AviControllerSpec = serde_json::from_value(serde_json::json!({
            "endpoints": ["https://avi.example.com"],
            "credentialsSecretRef": {"name": "avi"},
        }))
        .expect("a minimal AviController spec");
        let mut c = AviController::new(
            "avi",
            api::AviControllerSpec {
                namespace_selector: selector,
                ..spec
            },
        );
        c.status = ready.map(|(status, reason)| api::AviControllerStatus {
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: status.into(),
                reason: reason.into(),
                message: "login refused".into(),
                last_transition_time: Time(api::k8s::jiff::Timestamp::UNIX_EPOCH),
                observed_generation: None,
            }],
            ..Default::default()
        });
        c
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn no_selector_allows_every_namespace() {
        assert_eq!(allows(&controller(None, None), &labels(&[])), Ok(()));
    }

    #[test]
    fn the_selector_decides() {
        let selector = LabelSelector {
            match_labels: Some(BTreeMap::from([("avi".to_owned(), "yes".to_owned())])),
            ..Default::default()
        };
        let c = controller(Some(selector), None);
        assert_eq!(allows(&c, &labels(&[("avi", "yes")])), Ok(()));
        let refused = allows(&c, &labels(&[("avi", "no")])).unwrap_err();
        assert!(
            refused.contains("does not allow this namespace"),
            "{refused}"
        );
        assert!(refused.contains("avi=yes"), "{refused}");
    }

    #[test]
    fn readiness_comes_from_the_ready_condition() {
        assert_eq!(
            not_ready(&controller(None, None)).map(|(r, _)| r),
            Some("NotProbed".to_owned())
        );
        assert_eq!(
            not_ready(&controller(None, Some(("False", "AviAuthFailed")))),
            Some(("AviAuthFailed".to_owned(), "login refused".to_owned()))
        );
        assert_eq!(
            not_ready(&controller(None, Some(("True", "Connected")))),
            None
        );
    }
}
