//! The API server rules the stand-in enforces, checked over HTTP.

mod support;

use serde_json::{Value, json};
use support::{DEADLINE, RawWatch, aas, client, deployment, install_crd, raw, start, start_with};
use testkit::{Config, Fault, ObjectRef, Patch, Restart};

const AAS: &str = "/apis/autoscaling.avi.dev/v1alpha1/namespaces/default/aviautoscalers";
const DEPLOY: &str = "/apis/apps/v1/namespaces/default/deployments";
const MERGE: &str = "application/merge-patch+json";
const APPLY: &str = "application/apply-patch+yaml";

fn rv(v: &Value) -> String {
    v["metadata"]["resourceVersion"]
        .as_str()
        .expect("objects carry a resourceVersion")
        .to_owned()
}

#[tokio::test]
async fn discovery_serves_builtins_crds_and_subresources() {
    let s = start().await;
    let c = client(&s, None).await;
    let api = raw(&c, "GET", "/api", None, None).await;
    assert_eq!(api.body["versions"], json!(["v1"]));
    let apps = raw(&c, "GET", "/apis/apps/v1", None, None).await.body;
    let scale = apps["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "deployments/scale")
        .unwrap();
    assert_eq!(
        (scale["group"].as_str(), scale["kind"].as_str()),
        (Some("autoscaling"), Some("Scale"))
    );
    let deploy = apps["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "deployments")
        .unwrap();
    assert_eq!(deploy["shortNames"], json!(["deploy"]));
    assert!(
        deploy["verbs"]
            .as_array()
            .unwrap()
            .contains(&json!("watch"))
    );

    assert_eq!(
        raw(&c, "GET", "/apis/autoscaling.avi.dev/v1alpha1", None, None)
            .await
            .status,
        404
    );
    install_crd(&s);
    let gv = raw(&c, "GET", "/apis/autoscaling.avi.dev/v1alpha1", None, None)
        .await
        .body;
    let names: Vec<&str> = gv["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["aviautoscalers", "aviautoscalers/status"]);
    assert_eq!(gv["resources"][0]["shortNames"], json!(["aas"]));
    let groups = raw(&c, "GET", "/apis", None, None).await.body;
    assert!(
        groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "autoscaling.avi.dev")
    );

    // Aggregated discovery, as kubectl asks for it first.
    let req = http::Request::builder()
        .uri("/apis")
        .header(
            "Accept",
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
        )
        .body(kube::client::Body::empty())
        .unwrap();
    let resp = c.send(req).await.unwrap();
    assert_eq!(
        resp.headers()["content-type"],
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
}

#[tokio::test]
async fn errors_are_statuses_with_the_api_servers_codes_and_messages() {
    let s = start().await;
    install_crd(&s);
    let c = client(&s, None).await;

    let missing = raw(&c, "GET", &format!("{AAS}/x"), None, None).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["kind"], "Status");
    assert_eq!(missing.body["reason"], "NotFound");
    assert_eq!(
        missing.body["message"],
        "aviautoscalers.autoscaling.avi.dev \"x\" not found"
    );
    assert_eq!(
        missing.body["details"],
        json!({"name": "x", "group": "autoscaling.avi.dev", "kind": "aviautoscalers"})
    );

    assert_eq!(
        raw(&c, "POST", AAS, None, Some(&aas("default", "x")))
            .await
            .status,
        201
    );
    let again = raw(&c, "POST", AAS, None, Some(&aas("default", "x"))).await;
    assert_eq!(
        (again.status, again.body["reason"].as_str()),
        (409, Some("AlreadyExists"))
    );
    assert_eq!(
        again.body["message"],
        "aviautoscalers.autoscaling.avi.dev \"x\" already exists"
    );

    let mut bad = aas("default", "bad");
    bad["spec"]["maxReplicas"] = json!(0);
    let invalid = raw(&c, "POST", AAS, None, Some(&bad)).await;
    assert_eq!(
        (invalid.status, invalid.body["reason"].as_str()),
        (422, Some("Invalid"))
    );
    assert_eq!(
        invalid.body["message"],
        "AviAutoscaler.autoscaling.avi.dev \"bad\" is invalid: spec.maxReplicas: Invalid value: 0: spec.maxReplicas in body should be greater than or equal to 1"
    );
    assert_eq!(
        invalid.body["details"]["causes"][0]["field"],
        "spec.maxReplicas"
    );
    assert_eq!(invalid.body["details"]["kind"], "AviAutoscaler");

    bad["spec"]["maxReplicas"] = json!(2);
    bad["spec"]["minReplicas"] = json!(3);
    let cel = raw(&c, "POST", AAS, None, Some(&bad)).await;
    assert_eq!(cel.status, 422);
    assert!(
        cel.body["message"]
            .as_str()
            .unwrap()
            .contains("maxReplicas must be greater than or equal to minReplicas"),
        "{}",
        cel.body
    );

    let no_ns = raw(
        &c,
        "POST",
        "/apis/autoscaling.avi.dev/v1alpha1/namespaces/nope/aviautoscalers",
        None,
        Some(&aas("nope", "y")),
    )
    .await;
    assert_eq!(
        (no_ns.status, no_ns.body["message"].as_str()),
        (404, Some("namespaces \"nope\" not found"))
    );

    let smp = raw(
        &c,
        "PATCH",
        &format!("{AAS}/x"),
        Some("application/strategic-merge-patch+json"),
        Some(&json!({})),
    )
    .await;
    assert_eq!(
        (smp.status, smp.body["reason"].as_str()),
        (415, Some("UnsupportedMediaType"))
    );

    let wrong_kind = raw(&c, "POST", DEPLOY, None, Some(&aas("default", "z"))).await;
    assert_eq!(
        (wrong_kind.status, wrong_kind.body["reason"].as_str()),
        (400, Some("BadRequest"))
    );

    let bad_name = raw(
        &c,
        "POST",
        DEPLOY,
        None,
        Some(&deployment("default", "Not_Valid", 1)),
    )
    .await;
    assert_eq!(bad_name.status, 422);
    assert!(bad_name.body["message"].as_str().unwrap().starts_with("Deployment.apps \"Not_Valid\" is invalid: metadata.name: Invalid value: \"Not_Valid\": a lowercase RFC 1123 subdomain"));

    assert_eq!(
        raw(&c, "POST", &format!("{AAS}/x"), None, Some(&json!({})))
            .await
            .status,
        405
    );
    assert_eq!(
        raw(&c, "GET", "/apis/nothing.example.com/v1/things", None, None)
            .await
            .status,
        404
    );
    let strict = {
        let mut o = aas("default", "strict");
        o["spec"]["bogus"] = json!(1);
        raw(
            &c,
            "POST",
            &format!("{AAS}?fieldValidation=Strict"),
            None,
            Some(&o),
        )
        .await
    };
    assert_eq!(strict.status, 400);
    assert!(
        strict.body["message"]
            .as_str()
            .unwrap()
            .ends_with("strict decoding error: unknown field \"spec.bogus\""),
        "{}",
        strict.body
    );
    let warned = {
        let mut o = aas("default", "warned");
        o["spec"]["bogus"] = json!(1);
        raw(&c, "POST", AAS, None, Some(&o)).await
    };
    assert_eq!(warned.status, 201);
    assert_eq!(
        warned.headers["warning"],
        "299 - \"unknown field \\\"spec.bogus\\\"\""
    );
    assert!(
        warned.body["spec"].get("bogus").is_none(),
        "unknown fields are pruned"
    );
}

#[tokio::test]
async fn a_stale_update_gets_409_conflict() {
    let s = start().await;
    install_crd(&s);
    let c = client(&s, None).await;
    let created = raw(
        &c,
        "POST",
        DEPLOY,
        None,
        Some(&deployment("default", "web", 1)),
    )
    .await
    .body;
    let mut first = created.clone();
    first["spec"]["replicas"] = json!(2);
    let updated = raw(&c, "PUT", &format!("{DEPLOY}/web"), None, Some(&first)).await;
    assert_eq!(updated.status, 200);
    assert!(rv(&updated.body).parse::<u64>().unwrap() > rv(&created).parse::<u64>().unwrap());

    let mut stale = created.clone();
    stale["spec"]["replicas"] = json!(3);
    let conflict = raw(&c, "PUT", &format!("{DEPLOY}/web"), None, Some(&stale)).await;
    assert_eq!(
        (conflict.status, conflict.body["reason"].as_str()),
        (409, Some("Conflict"))
    );
    assert_eq!(
        conflict.body["message"],
        "Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified; please apply your changes to the latest version and try again"
    );
    // A merge patch carrying a stale resourceVersion is a precondition too.
    let patch = json!({"metadata": {"resourceVersion": rv(&created)}, "spec": {"replicas": 4}});
    assert_eq!(
        raw(
            &c,
            "PATCH",
            &format!("{DEPLOY}/web"),
            Some(MERGE),
            Some(&patch)
        )
        .await
        .status,
        409
    );

    // Custom resources need a resourceVersion on update.
    let cr = raw(&c, "POST", AAS, None, Some(&aas("default", "x")))
        .await
        .body;
    let mut unconditional = cr.clone();
    unconditional["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    let refused = raw(&c, "PUT", &format!("{AAS}/x"), None, Some(&unconditional)).await;
    assert_eq!(refused.status, 422);
    assert!(
        refused.body["message"].as_str().unwrap().contains(
            "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
        )
    );
}

#[tokio::test]
async fn generation_moves_only_on_spec_changes() {
    let s = start().await;
    install_crd(&s);
    let c = client(&s, None).await;
    let created = raw(&c, "POST", AAS, None, Some(&aas("default", "x")))
        .await
        .body;
    assert_eq!(created["metadata"]["generation"], 1);
    let status = json!({"status": {"currentReplicas": 2}});
    let after_status = raw(
        &c,
        "PATCH",
        &format!("{AAS}/x/status"),
        Some(MERGE),
        Some(&status),
    )
    .await
    .body;
    assert_eq!(after_status["metadata"]["generation"], 1);
    assert_ne!(rv(&after_status), rv(&created), "a status write is a write");
    let labels = json!({"metadata": {"labels": {"team": "a"}}});
    assert_eq!(
        raw(&c, "PATCH", &format!("{AAS}/x"), Some(MERGE), Some(&labels))
            .await
            .body["metadata"]["generation"],
        1
    );
    let spec = json!({"spec": {"maxReplicas": 9}});
    let after_spec = raw(&c, "PATCH", &format!("{AAS}/x"), Some(MERGE), Some(&spec))
        .await
        .body;
    assert_eq!(after_spec["metadata"]["generation"], 2);
    // A write that changes nothing is not a write.
    let same = raw(&c, "PATCH", &format!("{AAS}/x"), Some(MERGE), Some(&spec))
        .await
        .body;
    assert_eq!(rv(&same), rv(&after_spec));
    assert_eq!(same["metadata"]["generation"], 2);
}

#[tokio::test]
async fn status_and_main_resource_writes_are_isolated() {
    let s = start().await;
    install_crd(&s);
    let c = client(&s, None).await;
    let mut with_status = aas("default", "x");
    with_status["status"] = json!({"currentReplicas": 7});
    let created = raw(&c, "POST", AAS, None, Some(&with_status)).await.body;
    assert!(
        created.get("status").is_none(),
        "status is dropped on create: {created}"
    );

    let status = raw(
        &c,
        "PATCH",
        &format!("{AAS}/x/status"),
        Some(MERGE),
        Some(&json!({"spec": {"maxReplicas": 9}, "status": {"currentReplicas": 3}})),
    )
    .await
    .body;
    assert_eq!(
        status["spec"]["maxReplicas"], 5,
        "a status write does not change spec"
    );
    assert_eq!(status["status"]["currentReplicas"], 3);

    let main = raw(
        &c,
        "PATCH",
        &format!("{AAS}/x"),
        Some(MERGE),
        Some(&json!({"spec": {"maxReplicas": 8}, "status": {"currentReplicas": 1}})),
    )
    .await
    .body;
    assert_eq!(main["spec"]["maxReplicas"], 8);
    assert_eq!(
        main["status"]["currentReplicas"], 3,
        "a spec write does not change status"
    );

    // The same rule for a built-in type, through PUT.
    let d = raw(
        &c,
        "POST",
        DEPLOY,
        None,
        Some(&deployment("default", "web", 1)),
    )
    .await
    .body;
    let mut put = d.clone();
    put["status"] = json!({"replicas": 42});
    let after = raw(&c, "PUT", &format!("{DEPLOY}/web"), None, Some(&put))
        .await
        .body;
    assert_ne!(after["status"]["replicas"], 42);
}

#[tokio::test]
async fn server_side_apply_needs_a_field_manager_and_tracks_owners() {
    let s = start().await;
    install_crd(&s);
    let c = client(&s, None).await;
    let url = format!("{AAS}/x");
    let body = aas("default", "x");

    let refused = raw(&c, "PATCH", &url, Some(APPLY), Some(&body)).await;
    assert_eq!(
        (refused.status, refused.body["reason"].as_str()),
        (422, Some("Invalid"))
    );
    assert_eq!(
        refused.body["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );

    let created = raw(
        &c,
        "PATCH",
        &format!("{url}?fieldManager=alice"),
        Some(APPLY),
        Some(&body),
    )
    .await;
    assert_eq!(created.status, 201, "apply creates: {}", created.body);
    let managers: Vec<&str> = created.body["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["manager"].as_str().unwrap())
        .collect();
    assert_eq!(managers, ["alice"]);

    // The same value from another manager: shared ownership, no conflict. (A whole config
    // would conflict: spec.metrics is an atomic list the server defaulted, so applying it
    // without the defaults changes it, as with kube-apiserver.)
    let partial = json!({"apiVersion": "autoscaling.avi.dev/v1alpha1", "kind": "AviAutoscaler", "metadata": {"name": "x"}, "spec": {"maxReplicas": 5}});
    let shared = raw(
        &c,
        "PATCH",
        &format!("{url}?fieldManager=bob"),
        Some(APPLY),
        Some(&partial),
    )
    .await;
    assert_eq!(shared.status, 200, "{}", shared.body);
    let mut changed = partial.clone();
    changed["spec"]["maxReplicas"] = json!(7);
    let conflict = raw(
        &c,
        "PATCH",
        &format!("{url}?fieldManager=carol"),
        Some(APPLY),
        Some(&changed),
    )
    .await;
    assert_eq!(
        (conflict.status, conflict.body["reason"].as_str()),
        (409, Some("Conflict"))
    );
    assert_eq!(
        conflict.body["message"],
        "Apply failed with 2 conflicts: conflicts with \"alice\":\n- .spec.maxReplicas\nconflicts with \"bob\":\n- .spec.maxReplicas"
    );
    let forced = raw(
        &c,
        "PATCH",
        &format!("{url}?fieldManager=carol&force=true"),
        Some(APPLY),
        Some(&changed),
    )
    .await;
    assert_eq!(
        (forced.status, forced.body["spec"]["maxReplicas"].as_i64()),
        (200, Some(7))
    );

    // Status through apply on /status, as the operator writes it; the YAML form works too.
    let yaml = "apiVersion: autoscaling.avi.dev/v1alpha1\nkind: AviAutoscaler\nmetadata:\n  name: x\nstatus:\n  currentReplicas: 4\n  conditions:\n  - type: Ready\n    status: \"True\"\n    reason: ScaledToTarget\n    message: ok\n    lastTransitionTime: \"2026-01-01T00:00:00Z\"\n";
    let req = http::Request::builder()
        .method("PATCH")
        .uri(format!(
            "{url}/status?fieldManager=avi-autoscaler&force=true"
        ))
        .header("Content-Type", APPLY)
        .body(kube::client::Body::from(yaml.as_bytes().to_vec()))
        .unwrap();
    let resp = c.send(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let obj = s
        .store()
        .get(&ObjectRef::namespaced(
            "autoscaling.avi.dev/v1alpha1",
            "AviAutoscaler",
            "default",
            "x",
        ))
        .unwrap();
    assert_eq!(obj["status"]["currentReplicas"], 4);
    assert_eq!(obj["spec"]["maxReplicas"], 7);
    let status_owner = obj["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["manager"] == "avi-autoscaler")
        .unwrap();
    assert_eq!(status_owner["subresource"], "status");
    assert_eq!(status_owner["operation"], "Apply");

    // force is only for apply.
    let not_apply = raw(
        &c,
        "PATCH",
        &format!("{url}?force=true"),
        Some(MERGE),
        Some(&json!({})),
    )
    .await;
    assert_eq!(not_apply.status, 422);
}

#[tokio::test]
async fn an_expired_resource_version_gets_410_gone() {
    let s = start_with(Config {
        watch_history: 3,
        ..Config::default()
    })
    .await;
    let c = client(&s, None).await;
    let first = raw(
        &c,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        None,
        Some(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c0"}})),
    )
    .await
    .body;
    let old = rv(&first);
    for i in 1..6 {
        let cm =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("c{i}")}});
        raw(
            &c,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            None,
            Some(&cm),
        )
        .await;
    }
    // The watch answers 200 and then an ERROR event, as kube-apiserver's watch cache does.
    let (status, mut w) = RawWatch::open(
        &c,
        &format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={old}"),
    )
    .await;
    assert_eq!(status, 200);
    let ev = w
        .expect("an ERROR event")
        .await
        .expect("an event before the end");
    assert_eq!(ev["type"], "ERROR");
    assert_eq!(
        (
            ev["object"]["code"].as_i64(),
            ev["object"]["reason"].as_str()
        ),
        (Some(410), Some("Expired"))
    );
    assert!(
        ev["object"]["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("too old resource version: {old} ("))
    );
    assert!(w.next().await.is_none(), "the stream ends after the error");

    let exact = raw(
        &c,
        "GET",
        &format!(
            "/api/v1/namespaces/default/configmaps?resourceVersion={old}&resourceVersionMatch=Exact"
        ),
        None,
        None,
    )
    .await;
    assert_eq!(
        (exact.status, exact.body["reason"].as_str()),
        (410, Some("Expired"))
    );

    // A recent resourceVersion still replays what happened after it.
    let latest = raw(
        &c,
        "GET",
        "/api/v1/namespaces/default/configmaps",
        None,
        None,
    )
    .await
    .body;
    let list_rv = rv(&latest);
    raw(
        &c,
        "DELETE",
        "/api/v1/namespaces/default/configmaps/c3",
        None,
        None,
    )
    .await;
    let (_, mut w) = RawWatch::open(
        &c,
        &format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={list_rv}"),
    )
    .await;
    let ev = w.expect("the deletion").await.unwrap();
    assert_eq!(
        (
            ev["type"].as_str(),
            ev["object"]["metadata"]["name"].as_str()
        ),
        (Some("DELETED"), Some("c3"))
    );

    // Compaction expires everything older.
    s.store().compact();
    let (_, mut w) = RawWatch::open(
        &c,
        &format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={list_rv}"),
    )
    .await;
    assert_eq!(
        w.expect("an ERROR event").await.unwrap()["object"]["code"],
        410
    );
}

#[tokio::test]
async fn bookmarks_arrive_when_asked_and_only_then() {
    let s = start().await;
    let c = client(&s, None).await;
    let list = raw(
        &c,
        "GET",
        "/api/v1/namespaces/default/configmaps",
        None,
        None,
    )
    .await
    .body;
    let list_rv = rv(&list);
    let (_, mut with) = RawWatch::open(&c, &format!("/api/v1/namespaces/default/configmaps?watch=true&allowWatchBookmarks=true&resourceVersion={list_rv}")).await;
    let (_, mut without) = RawWatch::open(
        &c,
        &format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={list_rv}"),
    )
    .await;
    for _ in 0..2 {
        let ev = with.expect("a bookmark").await.unwrap();
        assert_eq!(ev["type"], "BOOKMARK");
        assert_eq!(ev["object"]["kind"], "ConfigMap");
        assert_eq!(ev["object"]["apiVersion"], "v1");
        assert!(
            ev["object"]["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
                >= list_rv.parse().unwrap()
        );
    }
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "after"}});
    let created = raw(
        &c,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        None,
        Some(&cm),
    )
    .await
    .body;
    // Both watches ran as long as the bookmarked one got two bookmarks; the other got none.
    let ev = without.expect("the ADDED event").await.unwrap();
    assert_eq!(
        (
            ev["type"].as_str(),
            ev["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("after"))
    );
    // Bookmarks never overtake events: after the ADDED one they carry at least its version.
    loop {
        let ev = with.expect("the ADDED event then bookmarks").await.unwrap();
        if ev["type"] == "ADDED" {
            let bm = with.expect("a bookmark after it").await.unwrap();
            assert_eq!(bm["type"], "BOOKMARK");
            assert!(
                bm["object"]["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap()
                    >= rv(&created).parse().unwrap()
            );
            break;
        }
        assert_eq!(ev["type"], "BOOKMARK");
    }
}

#[tokio::test]
async fn watches_stream_initial_events_and_follow_selectors() {
    let s = start().await;
    let c = client(&s, None).await;
    for (name, team) in [("a", "x"), ("b", "y")] {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"team": team}}});
        raw(
            &c,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            None,
            Some(&cm),
        )
        .await;
    }
    // Streaming list: synthetic ADDED events, then a bookmark marking their end.
    let (_, mut w) = RawWatch::open(&c, "/api/v1/namespaces/default/configmaps?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&labelSelector=team%3Dx").await;
    let ev = w.expect("the initial ADDED").await.unwrap();
    assert_eq!(
        (
            ev["type"].as_str(),
            ev["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("a"))
    );
    let end = w.expect("the initial-events-end bookmark").await.unwrap();
    assert_eq!(end["type"], "BOOKMARK");
    assert_eq!(
        end["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );

    // Objects moving out of and into the selection are DELETED and ADDED.
    let base = "/api/v1/namespaces/default/configmaps";
    raw(
        &c,
        "PATCH",
        &format!("{base}/a"),
        Some(MERGE),
        Some(&json!({"metadata": {"labels": {"team": "z"}}})),
    )
    .await;
    raw(
        &c,
        "PATCH",
        &format!("{base}/b"),
        Some(MERGE),
        Some(&json!({"metadata": {"labels": {"team": "x"}}})),
    )
    .await;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let ev = w.expect("selection changes").await.unwrap();
        if ev["type"] != "BOOKMARK" {
            seen.push(format!(
                "{} {}",
                ev["type"].as_str().unwrap(),
                ev["object"]["metadata"]["name"].as_str().unwrap()
            ));
        }
    }
    assert_eq!(seen, ["DELETED a", "ADDED b"]);

    let bad = raw(
        &c,
        "GET",
        &format!("{base}?watch=true&sendInitialEvents=true"),
        None,
        None,
    )
    .await;
    assert_eq!(bad.status, 422);
    let unsupported = raw(
        &c,
        "GET",
        &format!("{base}?fieldSelector=spec.nope%3D1"),
        None,
        None,
    )
    .await;
    assert_eq!(
        (unsupported.status, unsupported.body["message"].as_str()),
        (400, Some("field label not supported: spec.nope"))
    );
}

#[tokio::test]
async fn lists_paginate_consistently_at_one_resource_version() {
    let s = start().await;
    let c = client(&s, None).await;
    let base = "/api/v1/namespaces/default/configmaps";
    for i in 0..25 {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("c{i:02}")}, "data": {"v": "0"}});
        raw(&c, "POST", base, None, Some(&cm)).await;
    }
    let page1 = raw(&c, "GET", &format!("{base}?limit=10"), None, None)
        .await
        .body;
    assert_eq!(page1["items"].as_array().unwrap().len(), 10);
    assert_eq!(page1["metadata"]["remainingItemCount"], 15);
    let token = page1["metadata"]["continue"].as_str().unwrap().to_owned();
    // Changes after the first page do not show in the next pages.
    raw(&c, "DELETE", &format!("{base}/c15"), None, None).await;
    raw(
        &c,
        "PATCH",
        &format!("{base}/c16"),
        Some(MERGE),
        Some(&json!({"data": {"v": "1"}})),
    )
    .await;
    raw(
        &c,
        "POST",
        base,
        None,
        Some(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c99"}})),
    )
    .await;
    let mut names: Vec<String> = page1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    let mut token = Some(token);
    while let Some(t) = token {
        let page = raw(
            &c,
            "GET",
            &format!("{base}?limit=10&continue={t}"),
            None,
            None,
        )
        .await
        .body;
        assert_eq!(
            rv(&page),
            rv(&page1),
            "every page is at the first page's resourceVersion"
        );
        for i in page["items"].as_array().unwrap() {
            if i["metadata"]["name"] == "c16" {
                assert_eq!(
                    i["data"]["v"], "0",
                    "the item as it was at the list's resourceVersion"
                );
            }
            names.push(i["metadata"]["name"].as_str().unwrap().to_owned());
        }
        token = page["metadata"]["continue"].as_str().map(str::to_owned);
    }
    let want: Vec<String> = (0..25).map(|i| format!("c{i:02}")).collect();
    assert_eq!(names, want);
}

#[tokio::test]
async fn events_are_two_views_of_one_store() {
    let s = start().await;
    install_crd(&s);
    let c = client(&s, None).await;
    let obj = raw(&c, "POST", AAS, None, Some(&aas("default", "kuard")))
        .await
        .body;
    let uid = obj["metadata"]["uid"].as_str().unwrap();
    let ev = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "kuard.1", "namespace": "default"},
        "regarding": {"apiVersion": "autoscaling.avi.dev/v1alpha1", "kind": "AviAutoscaler", "name": "kuard", "namespace": "default", "uid": uid},
        "note": "New size: 3", "reason": "SuccessfulRescale", "type": "Normal", "action": "Scale",
        "reportingController": "avi-autoscaler", "reportingInstance": "pod-0", "eventTime": "2026-01-01T00:00:00.000000Z"
    });
    assert_eq!(
        raw(
            &c,
            "POST",
            "/apis/events.k8s.io/v1/namespaces/default/events",
            None,
            Some(&ev)
        )
        .await
        .status,
        201
    );
    let selector = format!(
        "involvedObject.name%3Dkuard%2CinvolvedObject.namespace%3Ddefault%2CinvolvedObject.kind%3DAviAutoscaler%2CinvolvedObject.uid%3D{uid}"
    );
    let core = raw(
        &c,
        "GET",
        &format!("/api/v1/namespaces/default/events?fieldSelector={selector}"),
        None,
        None,
    )
    .await
    .body;
    let items = core["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["apiVersion"], "v1");
    assert_eq!(items[0]["message"], "New size: 3");
    assert_eq!(items[0]["involvedObject"]["uid"], uid);
    assert_eq!(items[0]["reportingComponent"], "avi-autoscaler");
    let other = raw(
        &c,
        "GET",
        "/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dother",
        None,
        None,
    )
    .await
    .body;
    assert_eq!(other["items"].as_array().unwrap().len(), 0);

    // A repeat, as kube-runtime's Recorder sends it: a merge patch of the series.
    let series = json!({"series": {"count": 2, "lastObservedTime": "2026-01-01T00:01:00.000000Z"}});
    raw(
        &c,
        "PATCH",
        "/apis/events.k8s.io/v1/namespaces/default/events/kuard.1",
        Some(MERGE),
        Some(&series),
    )
    .await;
    let core_one = raw(
        &c,
        "GET",
        "/api/v1/namespaces/default/events/kuard.1",
        None,
        None,
    )
    .await
    .body;
    assert_eq!(core_one["series"]["count"], 2);
    let v1 = raw(
        &c,
        "GET",
        "/apis/events.k8s.io/v1/namespaces/default/events?fieldSelector=regarding.name%3Dkuard",
        None,
        None,
    )
    .await
    .body;
    assert_eq!(v1["items"][0]["note"], "New size: 3");
    assert_eq!(v1["items"][0]["regarding"]["kind"], "AviAutoscaler");
}

#[tokio::test]
async fn deployments_scale_through_the_scale_subresource() {
    let s = start().await;
    let c = client(&s, None).await;
    raw(
        &c,
        "POST",
        DEPLOY,
        None,
        Some(&deployment("default", "web", 1)),
    )
    .await;
    let scale = raw(&c, "GET", &format!("{DEPLOY}/web/scale"), None, None)
        .await
        .body;
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["spec"]["replicas"], 1);
    assert_eq!(scale["status"]["selector"], "app=web");

    let patched = raw(
        &c,
        "PATCH",
        &format!("{DEPLOY}/web/scale"),
        Some(MERGE),
        Some(&json!({"spec": {"replicas": 4}})),
    )
    .await;
    assert_eq!(
        (patched.status, patched.body["spec"]["replicas"].as_i64()),
        (200, Some(4))
    );
    let d = raw(&c, "GET", &format!("{DEPLOY}/web"), None, None)
        .await
        .body;
    assert_eq!(d["spec"]["replicas"], 4);
    assert_eq!(d["metadata"]["generation"], 2);

    // The simulated controller catches up.
    let web = ObjectRef::namespaced("apps/v1", "Deployment", "default", "web");
    s.wait_for(
        |st| {
            st.get(&web).is_some_and(|d| {
                d["status"]["readyReplicas"] == 4 && d["status"]["observedGeneration"] == 2
            })
        },
        DEADLINE,
    )
    .await
    .expect("status follows spec.replicas");
    let scale = raw(&c, "GET", &format!("{DEPLOY}/web/scale"), None, None)
        .await
        .body;
    assert_eq!(scale["status"]["replicas"], 4);

    let negative = raw(
        &c,
        "PATCH",
        &format!("{DEPLOY}/web/scale"),
        Some(MERGE),
        Some(&json!({"spec": {"replicas": -1}})),
    )
    .await;
    assert_eq!(negative.status, 422);
    assert_eq!(
        negative.body["message"],
        "Scale.autoscaling \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    );
    let stale = raw(&c, "PUT", &format!("{DEPLOY}/web/scale"), None, Some(&json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web", "resourceVersion": "1"}, "spec": {"replicas": 2}}))).await;
    assert_eq!(stale.status, 409);
    let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"replicas": 1, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "db:1"}]}}}});
    raw(
        &c,
        "POST",
        "/apis/apps/v1/namespaces/default/statefulsets",
        None,
        Some(&sts),
    )
    .await;
    let sts_scale = raw(
        &c,
        "PATCH",
        "/apis/apps/v1/namespaces/default/statefulsets/db/scale",
        Some(MERGE),
        Some(&json!({"spec": {"replicas": 3}})),
    )
    .await;
    assert_eq!(sts_scale.body["spec"]["replicas"], 3);
}

#[tokio::test]
async fn tables_follow_the_crds_printer_columns() {
    let s = start().await;
    install_crd(&s);
    let c = client(&s, None).await;
    raw(&c, "POST", AAS, None, Some(&aas("default", "x"))).await;
    let status = json!({"status": {"currentReplicas": 2, "metricSummary": "300/200 (avg)", "conditions": [
        {"type": "Ready", "status": "True", "reason": "ScaledToTarget", "message": "ok", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
    raw(
        &c,
        "PATCH",
        &format!("{AAS}/x/status"),
        Some(MERGE),
        Some(&status),
    )
    .await;
    let req = http::Request::builder()
        .uri(AAS)
        .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")
        .body(kube::client::Body::empty())
        .unwrap();
    let text = c
        .request_text(http::Request::from_parts(req.into_parts().0, Vec::new()))
        .await
        .unwrap();
    let table: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(table["kind"], "Table");
    let cols: Vec<(&str, i64)> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["priority"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        cols,
        [
            ("Name", 0),
            ("Target", 0),
            ("Metric", 0),
            ("Min", 0),
            ("Max", 0),
            ("Replicas", 0),
            ("Mode", 0),
            ("Ready", 1),
            ("Age", 0)
        ]
    );
    let cells = &table["rows"][0]["cells"];
    assert_eq!(
        &cells.as_array().unwrap()[..6],
        &[
            json!("x"),
            json!("web"),
            json!("300/200 (avg)"),
            json!(1),
            json!(5),
            json!(2),
        ]
    );
    // Mode (cell 6) is unset in this status; Ready follows it.
    assert_eq!(cells[7], json!("True"));
    assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
}

#[tokio::test]
async fn finalizers_delay_deletion_and_namespaces_take_their_objects() {
    let s = start().await;
    let c = client(&s, None).await;
    raw(
        &c,
        "POST",
        "/api/v1/namespaces",
        None,
        Some(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})),
    )
    .await;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "held", "finalizers": ["example.com/hold"]}});
    raw(
        &c,
        "POST",
        "/api/v1/namespaces/team/configmaps",
        None,
        Some(&cm),
    )
    .await;
    let deleted = raw(
        &c,
        "DELETE",
        "/api/v1/namespaces/team/configmaps/held",
        None,
        None,
    )
    .await
    .body;
    assert!(deleted["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(
        raw(
            &c,
            "GET",
            "/api/v1/namespaces/team/configmaps/held",
            None,
            None
        )
        .await
        .status,
        200
    );
    raw(
        &c,
        "PATCH",
        "/api/v1/namespaces/team/configmaps/held",
        Some(MERGE),
        Some(&json!({"metadata": {"finalizers": null}})),
    )
    .await;
    assert_eq!(
        raw(
            &c,
            "GET",
            "/api/v1/namespaces/team/configmaps/held",
            None,
            None
        )
        .await
        .status,
        404
    );

    raw(
        &c,
        "POST",
        "/api/v1/namespaces/team/configmaps",
        None,
        Some(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other"}})),
    )
    .await;
    let pre = raw(
        &c,
        "DELETE",
        "/api/v1/namespaces/team/configmaps/other",
        None,
        Some(&json!({"preconditions": {"uid": "nope"}})),
    )
    .await;
    assert_eq!(pre.status, 409);
    raw(&c, "DELETE", "/api/v1/namespaces/team", None, None).await;
    assert_eq!(
        raw(
            &c,
            "GET",
            "/api/v1/namespaces/team/configmaps/other",
            None,
            None
        )
        .await
        .status,
        404
    );
}

#[tokio::test]
async fn strategic_merge_patches_merge_lists_by_key() {
    let s = start().await;
    let c = client(&s, None).await;
    let mut d = deployment("default", "web", 1);
    d["spec"]["template"]["spec"]["containers"] =
        json!([{"name": "app", "image": "app:1"}, {"name": "side", "image": "side:1"}]);
    raw(&c, "POST", DEPLOY, None, Some(&d)).await;
    let p = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:2"}]}}}});
    let out = raw(
        &c,
        "PATCH",
        &format!("{DEPLOY}/web"),
        Some("application/strategic-merge-patch+json"),
        Some(&p),
    )
    .await
    .body;
    let images: Vec<&str> = out["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["image"].as_str().unwrap())
        .collect();
    assert_eq!(images, ["app:2", "side:1"]);
    let jp = json!([{"op": "replace", "path": "/spec/replicas", "value": 3}]);
    assert_eq!(
        raw(
            &c,
            "PATCH",
            &format!("{DEPLOY}/web"),
            Some("application/json-patch+json"),
            Some(&jp)
        )
        .await
        .body["spec"]["replicas"],
        3
    );
    let failing = json!([{"op": "test", "path": "/spec/replicas", "value": 9}]);
    assert_eq!(
        raw(
            &c,
            "PATCH",
            &format!("{DEPLOY}/web"),
            Some("application/json-patch+json"),
            Some(&failing)
        )
        .await
        .status,
        422
    );
}

#[tokio::test]
async fn deleting_a_crd_stops_serving_its_resource() {
    let s = start().await;
    install_crd(&s);
    let c = client(&s, None).await;
    raw(&c, "POST", AAS, None, Some(&aas("default", "x"))).await;
    let crd = raw(&c, "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/aviautoscalers.autoscaling.avi.dev", None, None).await.body;
    let established = crd["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "Established" && c["status"] == "True");
    assert!(established);
    raw(&c, "DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/aviautoscalers.autoscaling.avi.dev", None, None).await;
    assert_eq!(raw(&c, "GET", AAS, None, None).await.status, 404);
    install_crd(&s);
    assert_eq!(
        raw(&c, "GET", AAS, None, None).await.body["items"],
        json!([]),
        "objects went with their CRD"
    );
}

#[tokio::test]
async fn faults_answer_matching_requests_and_the_log_records_them() {
    let s = start().await;
    let c = client(&s, Some("operator-a")).await;
    raw(
        &c,
        "POST",
        DEPLOY,
        None,
        Some(&deployment("default", "web", 1)),
    )
    .await;
    s.clear_requests();
    s.inject(
        Fault::status(429)
            .method("PATCH")
            .path("/apis/apps/v1/namespaces/*/deployments/*/scale")
            .times(2),
    );
    let body = json!({"spec": {"replicas": 2}});
    let first = raw(
        &c,
        "PATCH",
        &format!("{DEPLOY}/web/scale"),
        Some(MERGE),
        Some(&body),
    )
    .await;
    assert_eq!(
        (first.status, first.body["reason"].as_str()),
        (429, Some("TooManyRequests"))
    );
    assert_eq!(first.headers["retry-after"], "1");
    assert_eq!(
        raw(
            &c,
            "PATCH",
            &format!("{DEPLOY}/web/scale"),
            Some(MERGE),
            Some(&body)
        )
        .await
        .status,
        429
    );
    assert_eq!(
        raw(
            &c,
            "PATCH",
            &format!("{DEPLOY}/web/scale?fieldManager=op"),
            Some(MERGE),
            Some(&body)
        )
        .await
        .status,
        200
    );
    assert!(s.faults().is_empty(), "the fault is used up");

    let log = s.requests();
    let statuses: Vec<u16> = log.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 429, 200]);
    let last = log.last().unwrap();
    assert_eq!(last.method, "PATCH");
    assert_eq!(
        last.path,
        "/apis/apps/v1/namespaces/default/deployments/web/scale"
    );
    assert_eq!(last.query_param("fieldManager").as_deref(), Some("op"));
    assert_eq!(last.content_type.as_deref(), Some(MERGE));
    assert_eq!(last.body_json(), Some(body.clone()));
    assert_eq!(last.client.as_deref(), Some("operator-a"));
    assert!(log[0].injected && !last.injected);

    let id = s.inject(Fault::status(500).path("/api/v1/*"));
    let failed = raw(
        &c,
        "GET",
        "/api/v1/namespaces/default/configmaps",
        None,
        None,
    )
    .await;
    assert_eq!(
        (failed.status, failed.body["reason"].as_str()),
        (500, Some("InternalError"))
    );
    assert!(s.remove_fault(id));
    assert_eq!(
        raw(
            &c,
            "GET",
            "/api/v1/namespaces/default/configmaps",
            None,
            None
        )
        .await
        .status,
        200
    );

    // A reset closes the connection without an answer.
    s.inject(
        Fault::reset()
            .path("/api/v1/namespaces/default/secrets")
            .times(1),
    );
    let req = http::Request::builder()
        .uri("/api/v1/namespaces/default/secrets")
        .body(kube::client::Body::empty())
        .unwrap();
    assert!(c.send(req).await.is_err());
    // Latency only delays.
    s.inject(
        Fault::delay(std::time::Duration::from_millis(20))
            .path("/api/v1/namespaces/default/secrets")
            .times(1),
    );
    assert_eq!(
        raw(&c, "GET", "/api/v1/namespaces/default/secrets", None, None)
            .await
            .status,
        200
    );
    let seen = s
        .wait_for_request(
            |r| r.path == "/api/v1/namespaces/default/secrets" && r.status == 200,
            DEADLINE,
        )
        .await
        .unwrap();
    assert_eq!(seen.client.as_deref(), Some("operator-a"));
}

#[tokio::test]
async fn a_restart_keeps_objects_and_forgets_history() {
    // Without the workload controllers, nothing writes while the test looks at versions.
    let s = start_with(Config {
        workloads: testkit::WorkloadSim {
            enabled: false,
            ..Default::default()
        },
        ..Config::default()
    })
    .await;
    let c = client(&s, None).await;
    raw(
        &c,
        "POST",
        DEPLOY,
        None,
        Some(&deployment("default", "web", 1)),
    )
    .await;
    let list = raw(&c, "GET", DEPLOY, None, None).await.body;
    let (_, mut w) = RawWatch::open(
        &c,
        &format!("{DEPLOY}?watch=true&resourceVersion={}", rv(&list)),
    )
    .await;
    raw(
        &c,
        "PATCH",
        &format!("{DEPLOY}/web"),
        Some(MERGE),
        Some(&json!({"metadata": {"labels": {"x": "w"}}})),
    )
    .await;
    assert_eq!(w.expect("the change").await.unwrap()["type"], "MODIFIED");
    let changed = raw(&c, "GET", DEPLOY, None, None).await.body;
    s.restart(Restart::default()).await.unwrap();
    assert!(w.next().await.is_none(), "open watches are cut");
    let c = client(&s, None).await;
    let after = raw(&c, "GET", DEPLOY, None, None).await.body;
    assert_eq!(after["items"][0]["metadata"]["name"], "web");
    assert_eq!(
        rv(&after),
        rv(&changed),
        "objects and resourceVersion survive"
    );
    raw(
        &c,
        "PATCH",
        &format!("{DEPLOY}/web"),
        Some(MERGE),
        Some(&json!({"metadata": {"labels": {"x": "y"}}})),
    )
    .await;
    let (_, mut w) = RawWatch::open(
        &c,
        &format!("{DEPLOY}?watch=true&resourceVersion={}", rv(&list)),
    )
    .await;
    assert_eq!(
        w.expect("an ERROR").await.unwrap()["object"]["code"],
        410,
        "the history went with the restart"
    );

    let now = raw(&c, "GET", DEPLOY, None, None).await.body;
    s.restart(Restart {
        keep_history: true,
        ..Restart::default()
    })
    .await
    .unwrap();
    let c = client(&s, None).await;
    raw(
        &c,
        "PATCH",
        &format!("{DEPLOY}/web"),
        Some(MERGE),
        Some(&json!({"metadata": {"labels": {"x": "z"}}})),
    )
    .await;
    let (_, mut w) = RawWatch::open(
        &c,
        &format!("{DEPLOY}?watch=true&resourceVersion={}", rv(&now)),
    )
    .await;
    assert_eq!(w.expect("the change").await.unwrap()["type"], "MODIFIED");
}

#[tokio::test]
async fn typed_clients_protobuf_bodies_are_decoded() {
    let s = start().await;
    let c = client(&s, None).await;
    // What `kubectl create namespace demo` sends.
    let body = b"k8s\x00\n\x0f\n\x02v1\x12\tNamespace\x12\x1c\n\x14\n\x04demo\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x12\x00\x1a\x02\n\x00\x1a\x00\"\x00".to_vec();
    let req = http::Request::builder()
        .method("POST")
        .uri("/api/v1/namespaces")
        .header("Content-Type", "application/vnd.kubernetes.protobuf")
        .header(
            "Accept",
            "application/vnd.kubernetes.protobuf,application/json",
        )
        .body(kube::client::Body::from(body))
        .unwrap();
    let resp = c.send(req).await.unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert!(
        s.store()
            .get(&ObjectRef::new("v1", "Namespace", "demo"))
            .is_some()
    );
    assert_eq!(
        s.requests().last().unwrap().body_json().unwrap()["metadata"]["name"],
        "demo"
    );
}

#[tokio::test]
async fn the_store_writes_follow_the_same_rules() {
    let s = start().await;
    install_crd(&s);
    let st = s.store();
    let created = st.create(aas("default", "x")).unwrap();
    let r = ObjectRef::of(&created).unwrap();
    let err = st.create(aas("default", "x")).unwrap_err();
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));
    let p = st
        .patch_status(&r, Patch::Merge(json!({"status": {"currentReplicas": 3}})))
        .unwrap();
    assert_eq!(p["metadata"]["generation"], 1);
    let mut stale = created.clone();
    stale["spec"]["maxReplicas"] = json!(9);
    st.patch(&r, Patch::Merge(json!({"spec": {"maxReplicas": 6}})))
        .unwrap();
    assert_eq!(st.update(stale).unwrap_err().code, 409);
    let applied = st
        .patch(
            &r,
            Patch::Apply {
                config: aas("default", "x"),
                field_manager: "op".into(),
                force: true,
            },
        )
        .unwrap();
    assert_eq!(applied["spec"]["maxReplicas"], 5);
    assert!(st.delete(&r).is_ok());
    assert!(st.try_get(&r).unwrap_err().is_not_found());
    st.create(deployment("default", "web", 1)).unwrap();
    let web = ObjectRef::namespaced("apps/v1", "deploy", "default", "web");
    assert_eq!(st.set_scale(&web, 3).unwrap()["spec"]["replicas"], 3);
    assert_eq!(st.list("apps/v1", "Deployment", None).len(), 1);
    let dry = raw(
        &client(&s, None).await,
        "POST",
        &format!("{DEPLOY}?dryRun=All"),
        None,
        Some(&deployment("default", "dry", 1)),
    )
    .await;
    assert_eq!(dry.status, 201);
    assert!(
        st.get(&ObjectRef::namespaced(
            "apps/v1",
            "Deployment",
            "default",
            "dry"
        ))
        .is_none()
    );
}

#[tokio::test]
async fn secrets_fold_string_data() {
    let s = start().await;
    let c = client(&s, None).await;
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "avi"}, "stringData": {"username": "admin"}, "data": {"password": "cGFzcw=="}});
    let out = raw(
        &c,
        "POST",
        "/api/v1/namespaces/default/secrets",
        None,
        Some(&secret),
    )
    .await
    .body;
    assert_eq!(
        out["data"],
        json!({"username": "YWRtaW4=", "password": "cGFzcw=="})
    );
    assert_eq!(out["type"], "Opaque");
    assert!(out.get("stringData").is_none());
    assert!(
        !s.requests().last().unwrap().body.contains("admin"),
        "secret values stay out of the request log"
    );
    let bad = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bad"}, "data": {"x": "not base64!"}});
    assert_eq!(
        raw(
            &c,
            "POST",
            "/api/v1/namespaces/default/secrets",
            None,
            Some(&bad)
        )
        .await
        .status,
        400
    );
}

/// The AviAutoscaler CRD as it was before its int32 fields had a `maximum`: only
/// `format: int32` says how large `maxReplicas` may be.
fn crd_without_max_replicas_maximum() -> Value {
    let mut crd = support::crd();
    for v in crd["spec"]["versions"].as_array_mut().expect("versions") {
        if let Some(max) = v
            .pointer_mut("/schema/openAPIV3Schema/properties/spec/properties/maxReplicas")
            .and_then(Value::as_object_mut)
        {
            max.remove("maximum");
        }
    }
    crd
}

#[tokio::test]
async fn pre_1_36_validation_stores_what_older_api_servers_store() {
    let standin = start().await;
    standin
        .store()
        .create(crd_without_max_replicas_maximum())
        .expect("the CRD is accepted");
    let mut big = aas("default", "big");
    big["spec"]["maxReplicas"] = json!(2_147_483_648_i64);
    let mut inverted = aas("default", "inverted");
    inverted["spec"]["minReplicas"] = json!(10);
    let refused = standin.store().create(big.clone()).unwrap_err();
    assert!(format!("{refused:?}").contains("int32"), "{refused:?}");
    let refused = standin.store().create(inverted.clone()).unwrap_err();
    assert!(
        format!("{refused:?}").contains("maxReplicas"),
        "{refused:?}"
    );

    standin.set_pre_1_36_validation(true);
    let stored = standin
        .store()
        .create(big)
        .expect("stored without int32 check");
    assert_eq!(stored["spec"]["maxReplicas"], json!(2_147_483_648_i64));
    standin
        .store()
        .create(inverted)
        .expect("stored without CEL rules");
    // Other schema checks still apply.
    let mut negative = aas("default", "negative");
    negative["spec"]["maxReplicas"] = json!(0);
    assert!(standin.store().create(negative).is_err());

    standin.set_pre_1_36_validation(false);
    let mut again = aas("default", "again");
    again["spec"]["maxReplicas"] = json!(2_147_483_648_i64);
    assert!(standin.store().create(again).is_err());
}
