//! Fixtures for the engine's tests: specs, samples and a poll loop.
#![allow(dead_code)]

use api::{
    AviAutoscalerSpec, AviAutoscalerStatus, ConditionType, EventReason, ResolvedSpec,
    k8s::{Condition, jiff::Timestamp},
};
use scaling::{Decision, Failure, Inputs, Sample, TargetState, decide};
use serde_json::{Value, json};

/// 2026-01-01T00:00:00Z: every test's time zero.
pub const T0: i64 = 1_767_225_600;

pub fn at(offset: i64) -> Timestamp {
    Timestamp::from_second(T0 + offset).unwrap()
}

/// The seed experiment's AviAutoscaler with an AverageValue target of 200 on the pool total,
/// min 1, max 5, no behavior; `patch` is merged over the spec. Resolved, as the engine takes it.
pub fn spec(patch: Value) -> ResolvedSpec {
    let mut base = json!({
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "kuard"},
        "minReplicas": 1,
        "maxReplicas": 5,
        "controller": {
            "endpoints": ["https://avi.example.com"],
            "credentialsSecretRef": {"name": "avi"}
        },
        "metrics": [metric("AverageValue", 200.0)],
    });
    merge(&mut base, patch);
    let spec: AviAutoscalerSpec = serde_json::from_value(base).expect("the test spec deserializes");
    spec.resolve().expect("the test spec resolves")
}

/// A pool metric on `kuard` with the given target type and amount.
pub fn metric(kind: &str, amount: f64) -> Value {
    let target = if kind == "Value" {
        json!({"type": "Value", "value": amount})
    } else {
        json!({"type": "AverageValue", "averageValue": amount})
    };
    json!({
        "entity": {"type": "pool", "name": "kuard"},
        "metricId": "l4_server.avg_open_conns",
        "aggregation": "Sum",
        "target": target,
    })
}

fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                match b.get_mut(&k) {
                    Some(existing) if v.is_object() => merge(existing, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, p) => *b = p,
    }
}

/// A target whose pods all exist and are ready.
pub fn steady(replicas: i32) -> TargetState {
    TargetState {
        spec_replicas: replicas,
        status_replicas: replicas,
        ready_replicas: Some(replicas),
    }
}

pub fn sample(value: f64, offset: i64) -> Result<Sample, Failure> {
    Ok(Sample {
        value,
        series: 1,
        read_at: at(offset),
    })
}

/// One poll at `T0 + offset`.
pub fn poll(
    spec: &ResolvedSpec,
    status: Option<&AviAutoscalerStatus>,
    target: TargetState,
    samples: Vec<Result<Sample, Failure>>,
    offset: i64,
) -> Decision {
    decide(&Inputs {
        spec,
        generation: Some(1),
        status,
        target: Ok(target),
        samples,
        now: at(offset),
    })
}

/// The status as the API server would hand it back: serialised and parsed again.
pub fn round_trip(status: &AviAutoscalerStatus) -> AviAutoscalerStatus {
    serde_json::from_value(serde_json::to_value(status).unwrap()).unwrap()
}

pub fn condition(d: &Decision, ty: ConditionType) -> &Condition {
    d.status
        .conditions
        .iter()
        .find(|c| c.type_ == ty.as_str())
        .unwrap_or_else(|| panic!("no {ty} condition in {:#?}", d.status.conditions))
}

/// `(status, reason)` of a condition, for compact assertions.
pub fn reason(d: &Decision, ty: ConditionType) -> (String, String) {
    let c = condition(d, ty);
    (c.status.clone(), c.reason.clone())
}

pub fn is(status: &str, reason: &str) -> (String, String) {
    (status.to_owned(), reason.to_owned())
}

pub fn event_reasons(d: &Decision) -> Vec<EventReason> {
    d.events.iter().map(|e| e.reason).collect()
}

/// A little closed loop: the target follows each decision at once, every metric reads `value`.
pub struct Loop {
    pub spec: ResolvedSpec,
    pub status: Option<AviAutoscalerStatus>,
    pub target: TargetState,
}

impl Loop {
    pub fn new(spec: ResolvedSpec, replicas: i32) -> Self {
        Self {
            spec,
            status: None,
            target: steady(replicas),
        }
    }

    /// Polls at `offset` with one sample per metric, applies the decision and returns it.
    pub fn poll(&mut self, samples: Vec<Result<Sample, Failure>>, offset: i64) -> Decision {
        let status = self.status.as_ref().map(round_trip);
        let d = poll(&self.spec, status.as_ref(), self.target, samples, offset);
        if d.scale {
            self.target = steady(d.desired_replicas);
        }
        self.status = Some(d.status.clone());
        d
    }

    pub fn replicas(&self) -> i32 {
        self.target.spec_replicas
    }
}
