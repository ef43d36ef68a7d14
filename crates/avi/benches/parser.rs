//! Parser throughput (MB/s) on a realistic Avi answer, this crate's parser against
//! `prometheus-parse` in the same run. Both read every sample's name, `name` and `server`
//! labels and value, which is what the poller needs.
//!
//! `cargo bench -p avi-autoscaler-avi --bench parser`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// An answer for `pools` pools with `members` members each and `metrics` metric ids, laid out
/// as Avi lays it out (grouped by entity, `, ` between labels, Python floats).
fn avi_answer(pools: usize, members: usize, metrics: usize) -> String {
    let mut lines = Vec::new();
    for p in 0..pools {
        for m in 0..members {
            for k in 0..metrics {
                lines.push(format!(
                    "avi_l4_server_metric_{k}{{uuid=\"pool-{p:08}-2222-3333-4444-555555555555\", type=\"pool\", tenant=\"admin\", server=\"10.244.{m}.17:8080\", name=\"k8s-03-cluster--app{p}.nsx.example.org_-routing-ns1-app{p}-ingress\"}} {}.{}",
                    p * 7 + m,
                    k * 13 % 1000
                ));
            }
        }
    }
    format!(
        "# Successfully gathered {} metrics for pool\n{}\n",
        lines.len(),
        lines.join("\n")
    )
}

fn ours(text: &str) -> f64 {
    let mut sum = 0.0;
    for line in avi::prometheus::parse(text) {
        if let Ok(avi::prometheus::Line::Sample(s)) = line {
            let name = s.labels.get("name");
            let server = s.labels.get("server");
            black_box((s.name, name, server));
            sum += s.value;
        }
    }
    sum
}

fn theirs(text: &str) -> f64 {
    let scrape =
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parses");
    let mut sum = 0.0;
    for s in &scrape.samples {
        // prometheus-parse keeps the space of Avi's ", " separator in the label names.
        let name = s.labels.get(" name");
        let server = s.labels.get(" server");
        black_box((&s.metric, name, server));
        if let prometheus_parse::Value::Untyped(v) = s.value {
            sum += v;
        }
    }
    sum
}

fn bench(c: &mut Criterion) {
    // 50 pools × 4 members × 10 metrics: one batched request's answer (417 kB).
    let text = avi_answer(50, 4, 10);
    assert_eq!(
        ours(&text),
        theirs(&text),
        "both parsers must read the same values"
    );
    let mut group = c.benchmark_group("prometheus_text");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("avi::prometheus", |b| b.iter(|| ours(black_box(&text))));
    group.bench_function("prometheus-parse 0.2.5", |b| {
        b.iter(|| theirs(black_box(&text)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
