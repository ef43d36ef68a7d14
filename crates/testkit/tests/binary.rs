//! The `kube-standin` binary: ready line, kubeconfig, admin endpoints, clean exit on SIGTERM.

mod support;

use std::process::Stdio;
use std::time::Duration;

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};
use support::{DEADLINE, RawWatch, raw};
use tokio::io::{AsyncBufReadExt, BufReader};

struct Running {
    child: tokio::process::Child,
    url: String,
    _dir: tempfile::TempDir,
    kubeconfig: std::path::PathBuf,
}

async fn spawn(extra: &[&str]) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kube-standin"))
        .args(["--listen", "127.0.0.1:0", "--kubeconfig"])
        .arg(&kubeconfig)
        .args(extra)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kube-standin starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(DEADLINE, lines.next_line())
        .await
        .expect("the ready line in time")
        .unwrap()
        .expect("a ready line");
    let url = line
        .strip_prefix("kube-standin ready url=")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected ready line {line:?}"))
        .to_owned();
    assert!(
        line.ends_with(&format!("kubeconfig={}", kubeconfig.display())),
        "{line}"
    );
    Running {
        child,
        url,
        _dir: dir,
        kubeconfig,
    }
}

async fn client_of(r: &Running) -> Client {
    let kc = Kubeconfig::read_from(&r.kubeconfig).expect("the written kubeconfig parses");
    let mut config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    config.default_retry = false;
    Client::try_from(config).unwrap()
}

async fn stop(mut r: Running) {
    let pid = r.child.id().expect("still running").to_string();
    let status = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(DEADLINE, r.child.wait())
        .await
        .expect("exits on SIGTERM")
        .unwrap();
    assert!(exit.success(), "exit status {exit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_until_sigterm_with_a_usable_kubeconfig() {
    let r = spawn(&[]).await;
    assert!(r.url.starts_with("http://127.0.0.1:"));
    let c = client_of(&r).await;
    let version = raw(&c, "GET", "/version", None, None).await.body;
    assert_eq!(version["major"], "1");
    let ns = raw(&c, "GET", "/api/v1/namespaces", None, None).await.body;
    assert_eq!(ns["items"].as_array().unwrap().len(), 4);
    stop(r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_expose_the_log_faults_and_restarts() {
    let r = spawn(&["--bookmark-interval-ms", "100"]).await;
    let c = client_of(&r).await;

    let fault = json!({"method": "GET", "path": "/api/v1/namespaces", "status": 500, "times": 1});
    let added = raw(
        &c,
        "POST",
        "/_testkit/faults",
        Some("application/json"),
        Some(&fault),
    )
    .await;
    assert_eq!((added.status, added.body["id"].as_u64()), (201, Some(1)));
    let listed = raw(&c, "GET", "/_testkit/faults", None, None).await.body;
    assert_eq!(listed[0]["fault"]["status"], 500);
    assert_eq!(
        raw(&c, "GET", "/api/v1/namespaces", None, None)
            .await
            .status,
        500
    );
    assert_eq!(
        raw(&c, "GET", "/api/v1/namespaces", None, None)
            .await
            .status,
        200
    );
    assert_eq!(
        raw(&c, "GET", "/_testkit/faults", None, None).await.body,
        json!([])
    );
    assert_eq!(
        raw(
            &c,
            "POST",
            "/_testkit/faults",
            None,
            Some(&json!({"path": "/x"}))
        )
        .await
        .status,
        400
    );
    let id = raw(
        &c,
        "POST",
        "/_testkit/faults",
        None,
        Some(&json!({"delayMs": 1})),
    )
    .await
    .body["id"]
        .as_u64()
        .unwrap();
    assert_eq!(
        raw(&c, "DELETE", &format!("/_testkit/faults/{id}"), None, None)
            .await
            .status,
        200
    );
    assert_eq!(
        raw(&c, "DELETE", &format!("/_testkit/faults/{id}"), None, None)
            .await
            .status,
        404
    );

    let log = raw(&c, "GET", "/_testkit/requests", None, None).await.body;
    let statuses: Vec<(String, u64)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap().to_owned(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("/api/v1/namespaces".to_owned(), 500),
            ("/api/v1/namespaces".to_owned(), 200)
        ],
        "admin calls are not logged"
    );
    let last_seq = log[1]["seq"].as_u64().unwrap();
    assert_eq!(
        raw(
            &c,
            "GET",
            &format!("/_testkit/requests?since={last_seq}"),
            None,
            None
        )
        .await
        .body,
        json!([])
    );
    raw(&c, "DELETE", "/_testkit/requests", None, None).await;
    assert_eq!(
        raw(&c, "GET", "/_testkit/requests", None, None).await.body,
        json!([])
    );

    // Dropping watches ends the streams.
    let (_, mut w) =
        RawWatch::open(&c, "/api/v1/namespaces?watch=true&allowWatchBookmarks=true").await;
    assert_eq!(
        w.expect("the initial ADDED events").await.unwrap()["type"],
        "ADDED"
    );
    let dropped = raw(&c, "POST", "/_testkit/watches/drop", None, None)
        .await
        .body;
    assert_eq!(dropped["dropped"], 1);
    while let Some(ev) = tokio::time::timeout(DEADLINE, w.next())
        .await
        .expect("the stream ends")
    {
        assert!(matches!(ev["type"].as_str(), Some("ADDED" | "BOOKMARK")));
    }

    let settings = json!({"enabled": false, "statusDelayMs": 5, "readyDelayMs": 7});
    assert_eq!(
        raw(&c, "PUT", "/_testkit/workloads", None, Some(&settings))
            .await
            .status,
        200
    );
    assert_eq!(
        raw(&c, "GET", "/_testkit/workloads", None, None).await.body,
        settings
    );
    let state = raw(&c, "GET", "/_testkit/state", None, None).await.body;
    assert_eq!(state["objects"]["namespaces"], 4);
    let compacted = raw(&c, "POST", "/_testkit/compact", None, None).await.body;
    assert_eq!(compacted["resourceVersion"], state["resourceVersion"]);

    let restarting = raw(&c, "POST", "/_testkit/restart?downMs=1000", None, None).await;
    assert_eq!(restarting.status, 202);
    // The port refuses connections for a while, then serves the same objects again.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let attempt = || async {
        let c = client_of(&r).await;
        let req = http::Request::builder()
            .uri("/api/v1/namespaces")
            .body(Vec::new())
            .unwrap();
        c.request_text(req).await
    };
    while attempt().await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server went down"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let after: Value = loop {
        if let Ok(text) = attempt().await {
            break serde_json::from_str(&text).unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(after["items"].as_array().unwrap().len(), 4);
    assert_eq!(
        raw(&c, "GET", "/_testkit/nothing", None, None).await.status,
        404
    );
    stop(r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_busy_address_clearly() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_kube-standin"))
        .args(["--listen", &addr])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("kube-standin: cannot listen on {addr}: ")),
        "{stderr}"
    );
}
