//! Decisions per second, with the largest status an object can carry: ten metrics, a
//! recommendation history full of distinct values inside an hour-long window, and scale events
//! across a 30-minute policy period.

use std::hint::black_box;

use api::{
    AviAutoscalerSpec, AviAutoscalerStatus, BasisSample, FreshnessRecord, Recommendation,
    ResolvedSpec, ScaleDirection, ScaleEvent,
    k8s::{Time, jiff::Timestamp},
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use scaling::{Inputs, Sample, TargetState, decide};
use serde_json::json;

const NOW: i64 = 1_767_225_600;

fn at(offset: i64) -> Timestamp {
    Timestamp::from_second(NOW + offset).expect("a valid time")
}

fn spec(metrics: usize) -> ResolvedSpec {
    let metrics: Vec<_> = (0..metrics)
        .map(|i| {
            json!({
                "entity": {"type": "pool", "name": format!("pool-{i}")},
                "metricId": "l4_server.avg_open_conns",
                "target": {"type": "AverageValue", "averageValue": 200},
            })
        })
        .collect();
    let spec: AviAutoscalerSpec = serde_json::from_value(json!({
        "scaleTargetRef": {"name": "kuard"},
        "minReplicas": 1,
        "maxReplicas": 200,
        "controller": {"endpoints": ["https://avi.example.com"], "credentialsSecretRef": {"name": "avi"}},
        "metrics": metrics,
        "behavior": {
            "scaleUp": {"stabilizationWindowSeconds": 600, "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 60},
                {"type": "Percent", "value": 50, "periodSeconds": 1800}]},
            "scaleDown": {"stabilizationWindowSeconds": 3600, "policies": [
                {"type": "Percent", "value": 10, "periodSeconds": 1800}]}
        },
        "fallback": {"failureThreshold": 3, "replicas": 10}
    }))
    .expect("the bench spec deserializes");
    spec.resolve().expect("the bench spec resolves")
}

/// A status with 150 distinct recommendations over the last hour and a scale event every
/// 15 seconds of the last 30 minutes.
fn full_status(spec: &ResolvedSpec) -> AviAutoscalerStatus {
    let recommendations = (0..150)
        .map(|i| Recommendation {
            time: Time(at(-3590 + i * 24)),
            replicas: 1 + i as i32,
        })
        .collect();
    let scale_events = (0..120)
        .map(|i| ScaleEvent {
            time: Time(at(-1795 + i * 15)),
            from: 50 + (i as i32 % 3),
            to: 50 + ((i as i32 + 1) % 3),
        })
        .collect();
    let freshness = FreshnessRecord {
        time: Time(at(-30)),
        direction: ScaleDirection::Up,
        samples: spec
            .metrics
            .iter()
            .map(|m| BasisSample {
                entity: m.entity.clone(),
                metric_id: m.metric_id.clone(),
                value: 9000.0,
                replicas: Some(50),
            })
            .collect(),
        recommendation: Some(50),
    };
    AviAutoscalerStatus {
        recommendations,
        scale_events,
        freshness: Some(freshness),
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("decide");
    group.throughput(Throughput::Elements(1));
    for metrics in [1, 10] {
        let spec = spec(metrics);
        // One decision first, so that the status also carries conditions and current metrics.
        let seed = full_status(&spec);
        let target = TargetState {
            spec_replicas: 50,
            status_replicas: 50,
            ready_replicas: Some(48),
        };
        let samples = |v: f64| -> Vec<_> {
            (0..metrics)
                .map(|_| {
                    Ok(Sample {
                        value: v,
                        series: 50,
                        read_at: at(0),
                    })
                })
                .collect()
        };
        let status = decide(&Inputs {
            spec: &spec,
            generation: Some(1),
            status: Some(&seed),
            target: Ok(target),
            samples: samples(9000.0),
            now: at(0),
        })
        .status;
        group.bench_function(format!("full_history_{metrics}_metrics"), |b| {
            b.iter(|| {
                decide(black_box(&Inputs {
                    spec: &spec,
                    generation: Some(1),
                    status: Some(&status),
                    target: Ok(target),
                    samples: samples(9000.0),
                    now: at(15),
                }))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
