//! kube-rs against the stand-in: typed round trips, the scale subresource, watchers that
//! recover from dropped watches and expired resourceVersions, the event recorder, and leader
//! election with kube-lease-manager.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent, Namespace, Secret};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use support::{DEADLINE, aas, deployment, install_crd, kube_client, start, start_with};
use testkit::{Config, Fault, ObjectRef, WorkloadSim};

fn aas_api(client: &Client, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("autoscaling.avi.dev", "v1alpha1", "AviAutoscaler");
    Api::namespaced_with(client.clone(), ns, &ApiResource::from_gvk(&gvk))
}

#[tokio::test]
async fn typed_round_trips() {
    let s = start().await;
    let c = kube_client(&s, None).await;
    let namespaces: Api<Namespace> = Api::all(c.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "apps"}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    assert!(
        namespaces
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .any(|n| n.name_any() == "apps")
    );

    let deployments: Api<Deployment> = Api::namespaced(c.clone(), "apps");
    let d: Deployment = serde_json::from_value(deployment("apps", "web", 1)).unwrap();
    let created = deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.metadata.uid.is_some());
    let err = deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "AlreadyExists"),
        "{err:?}"
    );

    // Replace with the current resourceVersion works; with a stale one it conflicts.
    let mut current = deployments.get("web").await.unwrap();
    current
        .metadata
        .labels
        .get_or_insert_default()
        .insert("tier".into(), "front".into());
    let replaced = deployments
        .replace("web", &PostParams::default(), &current)
        .await
        .unwrap();
    let err = deployments
        .replace("web", &PostParams::default(), &current)
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "Conflict"),
        "{err:?}"
    );

    // Every patch type.
    let merged = deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"a": "1"}}})),
        )
        .await
        .unwrap();
    assert!(merged.resource_version() > replaced.resource_version());
    let strategic = deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "example/app:2"}]}}}})))
        .await
        .unwrap();
    assert_eq!(
        strategic.spec.unwrap().template.spec.unwrap().containers[0]
            .image
            .as_deref(),
        Some("example/app:2")
    );
    let applied = deployments
        .patch("web", &PatchParams::apply("test").force(), &Patch::Apply(json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"minReadySeconds": 5}})))
        .await
        .unwrap();
    assert_eq!(applied.spec.unwrap().min_ready_seconds, Some(5));

    // The scale subresource, as the operator reads and writes it.
    let scale = deployments.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(1));
    assert_eq!(scale.status.unwrap().selector.as_deref(), Some("app=web"));
    let scaled = deployments
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(3));
    let d = deployments.get("web").await.unwrap();
    assert_eq!(d.spec.unwrap().replicas, Some(3));

    let secrets: Api<Secret> = Api::namespaced(c.clone(), "apps");
    let sec: Secret = serde_json::from_value(
        json!({"metadata": {"name": "avi"}, "stringData": {"username": "u", "password": "p"}}),
    )
    .unwrap();
    secrets.create(&PostParams::default(), &sec).await.unwrap();
    let got = secrets.get("avi").await.unwrap();
    assert_eq!(got.data.unwrap()["password"].0, b"p");

    let gone = deployments
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    assert!(gone.is_left());
    let err = deployments.get("web").await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404 && s.message == "deployments.apps \"web\" not found"),
        "{err:?}"
    );
}

#[tokio::test]
async fn custom_resources_through_discovery_and_status_apply() {
    let s = start().await;
    install_crd(&s);
    let c = kube_client(&s, None).await;
    let t0 = Instant::now();
    let discovery = kube::Discovery::new(c.clone()).run().await.unwrap();
    eprintln!("discovery {:?}", t0.elapsed());
    let (ar, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk(
            "autoscaling.avi.dev",
            "v1alpha1",
            "AviAutoscaler",
        ))
        .expect("discovery finds the CRD's kind");
    assert_eq!(ar.plural, "aviautoscalers");
    assert!(
        caps.subresources
            .iter()
            .any(|(sub, _)| sub.plural == "status")
    );
    let scale_ar = discovery
        .resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"))
        .unwrap()
        .1
        .subresources
        .into_iter()
        .find(|(sub, _)| sub.plural == "scale");
    assert!(scale_ar.is_some());

    let api = aas_api(&c, "default");
    let obj: DynamicObject = serde_json::from_value(aas("default", "kuard")).unwrap();
    let created = api.create(&PostParams::default(), &obj).await.unwrap();
    eprintln!("created {:?}", t0.elapsed());
    assert_eq!(
        created.data["spec"]["minReplicas"], 1,
        "schema defaults are applied"
    );
    let status = json!({
        "apiVersion": "autoscaling.avi.dev/v1alpha1", "kind": "AviAutoscaler",
        "status": {"observedGeneration": 1, "currentReplicas": 2, "desiredReplicas": 3, "conditions": [
            {"type": "Ready", "status": "True", "reason": "ScaledToTarget", "message": "ok", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    });
    let patched = api
        .patch_status(
            "kuard",
            &PatchParams::apply("avi-autoscaler").force(),
            &Patch::Apply(&status),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["status"]["desiredReplicas"], 3);
    assert_eq!(patched.metadata.generation, Some(1));
    let merged = api
        .patch_status(
            "kuard",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"currentReplicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(merged.data["status"]["currentReplicas"], 3);
    let invalid = api
        .patch(
            "kuard",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"minReplicas": 9}})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(invalid, kube::Error::Api(ref s) if s.code == 422),
        "{invalid:?}"
    );
}

/// Counts the list and watch requests made for a path.
fn count(s: &testkit::KubeStandin, path: &str, watch: bool) -> usize {
    s.requests()
        .iter()
        .filter(|r| r.path == path && r.method == "GET" && r.watch == watch)
        .count()
}

#[tokio::test]
async fn a_watcher_recovers_from_dropped_watches_and_from_410_by_relisting() {
    let s = start_with(Config {
        watch_history: 5,
        ..Config::default()
    })
    .await;
    let c = kube_client(&s, None).await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let (store, writer) = reflector::store();
    let stream = watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    let task = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while stream.next().await.is_some() {}
    });
    let has = |name: &'static str| {
        let store = store.clone();
        move |_: &testkit::Store| store.state().iter().any(|cm| cm.name_any() == name)
    };
    let cm = |name: &str| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
    };
    api.create(&PostParams::default(), &cm("one"))
        .await
        .unwrap();
    s.wait_for(has("one"), DEADLINE)
        .await
        .expect("the watcher sees the first object");
    let path = "/api/v1/namespaces/default/configmaps";
    let lists = count(&s, path, false);
    let watches = count(&s, path, true);

    // A dropped watch: the watcher watches again from its resourceVersion, without a relist.
    assert!(s.drop_watches() >= 1);
    api.create(&PostParams::default(), &cm("two"))
        .await
        .unwrap();
    s.wait_for(has("two"), DEADLINE)
        .await
        .expect("the watcher recovers from a dropped watch");
    assert!(count(&s, path, true) > watches);
    assert_eq!(
        count(&s, path, false),
        lists,
        "no relist after a dropped watch"
    );

    // An expired resourceVersion: while the watcher cannot watch, a change happens and the
    // history is compacted; its next watch gets 410 and it relists.
    let blocked = s.inject(Fault::status(500).path(path).watches());
    s.drop_watches();
    s.wait_for_request(|r| r.path == path && r.watch && r.injected, DEADLINE)
        .await
        .expect("the watcher tries again and is refused");
    api.create(&PostParams::default(), &cm("three"))
        .await
        .unwrap();
    s.store().compact();
    assert!(s.remove_fault(blocked));
    s.wait_for(has("three"), DEADLINE)
        .await
        .expect("the watcher relists after 410");
    assert!(count(&s, path, false) > lists, "a relist happened");
    task.abort();
}

#[tokio::test]
async fn recorded_events_show_through_core_v1_field_selectors() {
    let s = start().await;
    install_crd(&s);
    let c = kube_client(&s, None).await;
    let api = aas_api(&c, "default");
    let obj: DynamicObject = serde_json::from_value(aas("default", "kuard")).unwrap();
    let created = api.create(&PostParams::default(), &obj).await.unwrap();
    let reference = created.object_ref(&ApiResource::from_gvk(&GroupVersionKind::gvk(
        "autoscaling.avi.dev",
        "v1alpha1",
        "AviAutoscaler",
    )));
    let recorder = Recorder::new(
        c.clone(),
        Reporter {
            controller: "avi-autoscaler".into(),
            instance: Some("pod-0".into()),
        },
    );
    let ev = Event {
        type_: EventType::Normal,
        reason: "SuccessfulRescale".into(),
        note: Some("New size: 3; reason: metric above target".into()),
        action: "Scale".into(),
        secondary: None,
    };
    recorder.publish(&ev, &reference).await.unwrap();
    recorder.publish(&ev, &reference).await.unwrap();

    let core: Api<CoreEvent> = Api::namespaced(c.clone(), "default");
    let uid = created.uid().unwrap();
    let lp = ListParams::default().fields(&format!(
        "involvedObject.name=kuard,involvedObject.namespace=default,involvedObject.kind=AviAutoscaler,involvedObject.uid={uid}"
    ));
    let events = core.list(&lp).await.unwrap().items;
    assert_eq!(events.len(), 1, "a repeat is the same event with a series");
    let e = &events[0];
    assert_eq!(e.reason.as_deref(), Some("SuccessfulRescale"));
    assert_eq!(
        e.message.as_deref(),
        Some("New size: 3; reason: metric above target")
    );
    assert_eq!(e.reporting_component.as_deref(), Some("avi-autoscaler"));
    assert_eq!(e.series.as_ref().and_then(|s| s.count), Some(2));
}

#[tokio::test]
async fn only_one_lease_manager_leads() {
    let s = start().await;
    let c = kube_client(&s, None).await;
    let manager = |id: &str| {
        kube_lease_manager::LeaseManagerBuilder::new(c.clone(), "avi-autoscaler")
            .with_namespace("default")
            .with_identity(id)
            .with_duration(3)
            .with_grace(1)
            .build()
    };
    let (mut a, _ta) = manager("a").await.unwrap().watch().await;
    let (mut b, _tb) = manager("b").await.unwrap().watch().await;
    let both = Arc::new(AtomicBool::new(false));
    let watch_both = |mut rx: tokio::sync::watch::Receiver<bool>,
                      other: tokio::sync::watch::Receiver<bool>,
                      flag: Arc<AtomicBool>| {
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                if *rx.borrow() && *other.borrow() {
                    flag.store(true, Ordering::SeqCst);
                }
            }
        })
    };
    let ga = watch_both(a.clone(), b.clone(), both.clone());
    let gb = watch_both(b.clone(), a.clone(), both.clone());
    let lease_ref = ObjectRef::namespaced(
        "coordination.k8s.io/v1",
        "Lease",
        "default",
        "avi-autoscaler",
    );
    let holder = s
        .wait_for(
            |st| {
                st.get(&lease_ref)
                    .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_owned))
            },
            DEADLINE,
        )
        .await
        .expect("someone holds the lease");
    let (leader, follower) = if holder == "a" {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    tokio::time::timeout(DEADLINE, leader.wait_for(|v| *v))
        .await
        .unwrap()
        .unwrap();
    // Let the leader renew a few times while the other keeps trying.
    let renewed = |st: &testkit::Store| st.get(&lease_ref).map(|l| l["spec"]["renewTime"].clone());
    let first = renewed(&s.store());
    s.wait_for(|st| renewed(st) != first, DEADLINE)
        .await
        .expect("the leader renews");
    assert!(!*follower.borrow(), "the other manager is not a leader");
    assert!(!both.load(Ordering::SeqCst), "never two leaders at once");
    let leases: Api<Lease> = Api::namespaced(c, "default");
    let lease = leases.get("avi-autoscaler").await.unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some(holder.as_str())
    );
    ga.abort();
    gb.abort();
}

#[tokio::test]
async fn a_thousand_custom_resources_list_and_watch() {
    let s = start_with(Config {
        workloads: WorkloadSim {
            enabled: false,
            ..WorkloadSim::default()
        },
        ..Config::default()
    })
    .await;
    install_crd(&s);
    let store = s.store();
    let t = Instant::now();
    for i in 0..1000 {
        store
            .create(aas("default", &format!("aas-{i:04}")))
            .unwrap();
    }
    eprintln!("created 1000 in {:?}", t.elapsed());
    let c = kube_client(&s, None).await;
    let api = aas_api(&c, "default");
    let started = Instant::now();
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "autoscaling.avi.dev",
        "v1alpha1",
        "AviAutoscaler",
    ));
    let writer = reflector::store::Writer::new(ar);
    let cache = writer.as_reader();
    let stream = watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    let task = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while stream.next().await.is_some() {}
    });
    let reader = cache.clone();
    s.wait_for(move |_| reader.state().len() == 1000, DEADLINE)
        .await
        .expect("the reflector holds all 1000");
    let synced = started.elapsed();
    // kube-rs lists in pages of 500: two pages, then one watch.
    let pages = s
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/aviautoscalers") && !r.watch)
        .count();
    assert_eq!(pages, 2);
    let started = Instant::now();
    let all = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(all.items.len(), 1000);
    eprintln!(
        "1000 AviAutoscalers: reflector synced in {synced:?}, one unpaginated list took {:?}",
        started.elapsed()
    );
    task.abort();
}

#[tokio::test]
async fn metadata_and_streaming_list_watchers_sync() {
    let s = start().await;
    let c = kube_client(&s, None).await;
    let deployments: Api<Deployment> = Api::namespaced(c.clone(), "default");
    for name in ["a", "b"] {
        let d: Deployment = serde_json::from_value(deployment("default", name, 1)).unwrap();
        deployments
            .create(&PostParams::default(), &d)
            .await
            .unwrap();
    }
    let meta = deployments
        .list_metadata(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(meta.items.len(), 2);
    assert!(meta.items.iter().all(|m| m.metadata.uid.is_some()));

    // kube-runtime's metadata watcher and a streaming-list watcher both see everything.
    let (meta_store, meta_writer) = reflector::store();
    let metadata: Api<kube::core::PartialObjectMeta<Deployment>> =
        Api::namespaced(c.clone(), "default");
    let meta_stream = watcher(metadata, watcher::Config::default())
        .default_backoff()
        .reflect(meta_writer)
        .applied_objects();
    let (stream_store, stream_writer) = reflector::store::<Deployment>();
    let streaming = watcher(
        deployments.clone(),
        watcher::Config::default().streaming_lists(),
    )
    .default_backoff()
    .reflect(stream_writer)
    .applied_objects();
    let task = tokio::spawn(async move {
        futures::pin_mut!(meta_stream);
        futures::pin_mut!(streaming);
        loop {
            tokio::select! {
                m = meta_stream.next() => if m.is_none() { break },
                d = streaming.next() => if d.is_none() { break },
            }
        }
    });
    let d: Deployment = serde_json::from_value(deployment("default", "c", 1)).unwrap();
    deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    s.wait_for(
        |_| meta_store.state().len() == 3 && stream_store.state().len() == 3,
        DEADLINE,
    )
    .await
    .expect("both watchers hold all three deployments");
    let initial = s
        .requests()
        .into_iter()
        .find(|r| r.watch && r.query_param("sendInitialEvents").as_deref() == Some("true"))
        .expect("the streaming list asked for initial events");
    assert_eq!(
        initial.query_param("resourceVersionMatch").as_deref(),
        Some("NotOlderThan")
    );
    task.abort();
}
