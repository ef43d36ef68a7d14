//! core/v1 and events.k8s.io/v1 Events: two views of one stored object.
//!
//! As in kube-apiserver, events.k8s.io/v1 is a renaming of the core/v1 Event's fields
//! (`involvedObject` is `regarding`, `message` is `note`, `source` is `deprecatedSource`, …), so
//! an event an operator records through events.k8s.io/v1 is listed by `kubectl describe`
//! through core/v1 with the `involvedObject.*` field selectors.

use serde_json::{Map, Value};

/// (core/v1 field, events.k8s.io/v1 field).
const RENAMES: [(&str, &str); 7] = [
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
];

fn rename(v: &Value, api_version: &str, to_v1: bool) -> Value {
    let Some(m) = v.as_object() else {
        return v.clone();
    };
    let mut out = Map::with_capacity(m.len());
    for (k, val) in m {
        let renamed = RENAMES.iter().find_map(|(core, v1)| {
            if to_v1 && k == core {
                Some(*v1)
            } else if !to_v1 && k == v1 {
                Some(*core)
            } else {
                None
            }
        });
        out.insert(renamed.unwrap_or(k).to_owned(), val.clone());
    }
    out.insert("apiVersion".into(), Value::String(api_version.to_owned()));
    out.insert("kind".into(), Value::String("Event".into()));
    Value::Object(out)
}

/// The events.k8s.io/v1 view of a stored core/v1 Event.
pub(crate) fn to_v1(core: &Value) -> Value {
    rename(core, "events.k8s.io/v1", true)
}

/// The stored core/v1 form of an events.k8s.io/v1 Event.
pub(crate) fn to_core(v1: &Value) -> Value {
    rename(v1, "v1", false)
}

/// Maps an events.k8s.io/v1 field selector label to its core/v1 name.
pub(crate) fn core_field_label(label: &str) -> String {
    if let Some(rest) = label.strip_prefix("regarding.") {
        return format!("involvedObject.{rest}");
    }
    match label {
        "reportingController" => "reportingComponent".to_owned(),
        "note" => "message".to_owned(),
        other => other.to_owned(),
    }
}

/// The value of a core/v1 Event field selector, as `event.ToSelectableFields` exposes them.
pub(crate) fn selectable_field(core: &Value, label: &str) -> Option<Option<String>> {
    let s = |p: &str| core.pointer(p).and_then(Value::as_str).map(str::to_owned);
    Some(match label {
        "involvedObject.kind" => s("/involvedObject/kind"),
        "involvedObject.namespace" => s("/involvedObject/namespace"),
        "involvedObject.name" => s("/involvedObject/name"),
        "involvedObject.uid" => s("/involvedObject/uid"),
        "involvedObject.apiVersion" => s("/involvedObject/apiVersion"),
        "involvedObject.resourceVersion" => s("/involvedObject/resourceVersion"),
        "involvedObject.fieldPath" => s("/involvedObject/fieldPath"),
        "reason" => s("/reason"),
        "reportingComponent" => s("/reportingComponent"),
        "source" => s("/source/component"),
        "type" => s("/type"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn views_round_trip() {
        let v1 = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "ns"},
            "regarding": {"kind": "AviAutoscaler", "name": "kuard", "uid": "u"},
            "note": "scaled", "reason": "SuccessfulRescale", "type": "Normal",
            "reportingController": "avi-autoscaler", "reportingInstance": "pod-1",
            "eventTime": "2026-01-01T00:00:00.000000Z", "action": "Scale",
            "series": {"count": 2, "lastObservedTime": "2026-01-01T00:01:00.000000Z"}
        });
        let core = to_core(&v1);
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "kuard");
        assert_eq!(core["message"], "scaled");
        assert_eq!(core["reportingComponent"], "avi-autoscaler");
        assert_eq!(core["series"]["count"], 2);
        assert_eq!(to_v1(&core), v1);
        assert_eq!(
            selectable_field(&core, "involvedObject.uid"),
            Some(Some("u".to_owned()))
        );
        assert_eq!(selectable_field(&core, "spec.x"), None);
        assert_eq!(core_field_label("regarding.name"), "involvedObject.name");
    }
}
