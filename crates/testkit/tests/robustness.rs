//! Bad input gets an error, never a panic: arbitrary bodies as every kind of write.

mod support;

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use support::{aas, deployment};
use testkit::{Config, KubeStandin, ObjectRef, Patch, Store, WorkloadSim};

/// JSON values biased towards the field names the server looks at.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        "[a-z0-9=./-]{0,6}".prop_map(Value::from),
    ];
    let key = prop_oneof![
        Just("spec"),
        Just("status"),
        Just("metadata"),
        Just("replicas"),
        Just("labels"),
        Just("annotations"),
        Just("template"),
        Just("containers"),
        Just("name"),
        Just("image"),
        Just("selector"),
        Just("matchLabels"),
        Just("finalizers"),
        Just("data"),
        Just("stringData"),
        Just("conditions"),
        Just("type"),
        Just("$patch"),
        Just("$retainKeys"),
        Just("$setElementOrder/containers"),
        Just("$deleteFromPrimitiveList/finalizers"),
        Just("apiVersion"),
        Just("kind"),
        Just("resourceVersion"),
        Just("maxReplicas"),
        Just("x"),
    ]
    .prop_map(str::to_owned);
    leaf.prop_recursive(4, 32, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// A JSON patch operation list over plausible paths.
fn json_patch() -> impl Strategy<Value = Value> {
    let op = (
        prop_oneof![
            Just("add"),
            Just("remove"),
            Just("replace"),
            Just("test"),
            Just("move"),
            Just("copy"),
            Just("bogus")
        ],
        prop_oneof![
            Just("/spec/replicas"),
            Just("/metadata/labels"),
            Just("/spec"),
            Just(""),
            Just("/status"),
            Just("/metadata"),
            Just("/a/b")
        ],
        json_value(),
    )
        .prop_map(
            |(op, path, value)| json!({"op": op, "path": path, "from": "/spec", "value": value}),
        );
    prop::collection::vec(op, 0..4).prop_map(Value::Array)
}

struct Fixture {
    _runtime: tokio::runtime::Runtime,
    _standin: KubeStandin,
    store: Store,
}

fn fixture() -> Fixture {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let standin = runtime.block_on(KubeStandin::start(Config {
        workloads: WorkloadSim {
            enabled: false,
            ..WorkloadSim::default()
        },
        ..Config::default()
    }));
    let standin = standin.unwrap();
    let store = standin.store();
    store.create(support::crd()).unwrap();
    Fixture {
        _runtime: runtime,
        _standin: standin,
        store,
    }
}

fn targets(store: &Store) -> Vec<ObjectRef> {
    let objects = [
        deployment("default", "web", 1),
        aas("default", "x"),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"}, "data": {"a": "Yg=="}}),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}}),
    ];
    objects
        .into_iter()
        .map(|o| {
            let r = ObjectRef::of(&o).unwrap();
            if store.get(&r).is_none() {
                store.create(o).unwrap();
            }
            r
        })
        .collect()
}

/// After any write, every object still has the shape the API promises.
fn assert_consistent(store: &Store, targets: &[ObjectRef]) {
    for r in targets {
        if let Some(o) = store.get(r) {
            assert!(o["metadata"]["resourceVersion"].is_string(), "{o}");
            assert_eq!(o["metadata"]["name"], r.name.as_str());
            assert!(o["kind"].is_string());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_writes_are_answered_without_panicking(body in json_value(), ops in json_patch(), force in any::<bool>()) {
        thread_local!(static FIXTURE: Fixture = fixture());
        FIXTURE.with(|f| {
            let store = &f.store;
            let targets = targets(store);
            for r in &targets {
                let _ = store.patch(r, Patch::Merge(body.clone()));
                let _ = store.patch(r, Patch::Strategic(body.clone()));
                let _ = store.patch(r, Patch::Json(ops.clone()));
                let _ = store.patch_status(r, Patch::Merge(body.clone()));
                let mut config = body.clone();
                if let Some(m) = config.as_object_mut() {
                    m.insert("apiVersion".into(), json!(r.api_version));
                    m.insert("kind".into(), json!(r.kind));
                }
                let _ = store.patch(r, Patch::Apply { config: config.clone(), field_manager: "fuzz".into(), force });
                let _ = store.patch_status(r, Patch::Apply { config, field_manager: "fuzz".into(), force });
                let _ = store.set_scale(r, 2);
                if let Some(current) = store.get(r) {
                    let mut replaced = current.clone();
                    if let (Some(m), Some(b)) = (replaced.as_object_mut(), body.as_object()) {
                        for (k, v) in b {
                            if k != "metadata" {
                                m.insert(k.clone(), v.clone());
                            }
                        }
                    }
                    let _ = store.update(replaced);
                }
            }
            let _ = store.create(body.clone());
            assert_consistent(store, &targets);
        });
    }
}
