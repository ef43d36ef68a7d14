//! The `avi-sim` binary: help, scenario errors, the ready line, flags, and a clean exit on
//! SIGTERM and SIGINT.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

const BIN: &str = env!("CARGO_BIN_EXE_avi-sim");
const README: &str = include_str!("../README.md");

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("avi-sim-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running binary, killed if a test fails before it stops.
struct Running {
    child: Child,
    urls: Vec<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(args: &[&str]) -> Running {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut running = Running {
        child,
        urls: Vec::new(),
    };
    let line = rx
        .recv_timeout(support::TIMEOUT)
        .unwrap_or_else(|_| panic!("no ready line from avi-sim {args:?}"));
    let urls = line
        .strip_prefix("avi-sim listening on ")
        .unwrap_or_else(|| panic!("unexpected ready line {line:?}"));
    running.urls = urls.split(' ').map(String::from).collect();
    running
}

/// Sends `signal` and waits for the exit; returns (success, stderr).
fn stop(mut running: Running, signal: &str) -> (bool, String) {
    let pid = running.child.id().to_string();
    let status = Command::new("kill").args([signal, &pid]).status().unwrap();
    assert!(status.success());
    let (tx, rx) = mpsc::channel();
    let mut stderr = running.child.stderr.take().unwrap();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    let text = rx.recv_timeout(support::TIMEOUT).expect("avi-sim exits");
    let exit = running.child.wait().unwrap();
    (exit.success(), text)
}

#[test]
fn help_documents_every_flag() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--listen",
        "--scenario",
        "--print-scenario",
        "--time-scale",
        "--start-time",
        "--paused",
        "--username",
        "--password",
        "--no-basic-auth",
        "--session-idle-timeout",
        "--session-clock",
        "--strict",
        "--ca-out",
        "--cert",
        "--key",
        "--fault",
        "--help",
        "--version",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
        assert!(README.contains(&format!("`{flag}")), "README lacks {flag}");
    }
    assert!(help.contains("/_sim/"), "mentions the admin endpoints");
}

fn run_with_scenario(yaml: &str) -> (bool, String) {
    let dir = scratch("scenario");
    let file = dir.join(format!("s{}.yaml", yaml.len()));
    std::fs::write(&file, yaml).unwrap();
    let out = Command::new(BIN)
        .args(["--print-scenario", "--scenario"])
        .arg(&file)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_bad_scenario_fails_with_the_field_named() {
    for (yaml, field) in [
        (
            "pools:\n- name: p\n  load: {maxUsers: 10, spawnRate: 0}\n",
            "pools[0].load.spawnRate",
        ),
        (
            "pools:\n- name: p\n  servers: {count: -1}\n",
            "pools[0].servers.count",
        ),
        (
            "virtualServices:\n- name: v\n  pools: [missing]\n",
            "virtualServices[0].pools[0]",
        ),
        ("controller:\n  timeScale: fast\n", "controller.timeScale"),
        ("pools:\n- name: p\n  bogus: 1\n", "pools[0]"),
        ("faults:\n- {kind: nodeDown}\n", "faults[0].node"),
    ] {
        let (ok, stderr) = run_with_scenario(yaml);
        assert!(!ok, "{yaml} was accepted");
        assert!(stderr.contains(field), "{field} not named in: {stderr}");
    }
    let out = Command::new(BIN)
        .args(["--scenario", "/nonexistent/scenario.yaml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/scenario.yaml"));
    let out = Command::new(BIN)
        .args(["--print-scenario", "--fault", "{kind: latency}"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("delayMs"));
}

#[test]
fn print_scenario_shows_the_built_in_controller_with_flags_applied() {
    let out = Command::new(BIN)
        .args([
            "--print-scenario",
            "--password",
            "s3cret",
            "--no-basic-auth",
            "--time-scale",
            "15",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let scenario = avi_sim::Scenario::from_yaml(&String::from_utf8(out.stdout).unwrap()).unwrap();
    assert_eq!(scenario.pools[0].name, avi_sim::SEED_POOL);
    assert!(!scenario.controller.basic_auth);
    assert_eq!(scenario.controller.time_scale, 15.0);
    assert_eq!(scenario.users[0].password, "s3cret");
}

#[tokio::test]
async fn serves_until_sigterm_with_the_flags_applied() {
    let dir = scratch("serve");
    let ca = dir.join("ca.pem");
    let running = spawn(&[
        "--listen",
        "127.0.0.1:0",
        "--listen",
        "127.0.0.1:0",
        "--ca-out",
        ca.to_str().unwrap(),
        "--password",
        "s3cret",
        "--no-basic-auth",
        "--paused",
        "--fault",
        "{kind: error, status: 500, count: 1, path: /login}",
    ]);
    assert_eq!(running.urls.len(), 2);
    assert!(
        running
            .urls
            .iter()
            .all(|u| u.starts_with("https://127.0.0.1:"))
    );
    let client = support::client_for(&std::fs::read_to_string(&ca).unwrap(), support::TIMEOUT);
    let url = &running.urls[1];
    let (status, _) = support::get_basic(&client, &format!("{url}/api/pool"), "s3cret").await;
    assert_eq!(status, 401, "basic auth is off");
    let login = |password: &'static str| {
        client
            .post(format!("{url}/login"))
            .form(&[("username", "admin"), ("password", password)])
            .send()
    };
    assert_eq!(login("s3cret").await.unwrap().status(), 500, "the --fault");
    assert_eq!(login("admin").await.unwrap().status(), 401);
    assert_eq!(login("s3cret").await.unwrap().status(), 200);
    let clock: serde_json::Value = client
        .get(format!("{url}/_sim/clock"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(clock["paused"], true);

    let (ok, stderr) = stop(running, "-TERM");
    assert!(ok, "exit status after SIGTERM: {stderr}");
    assert!(
        stderr.contains("admin / s3cret"),
        "the password is printed at start: {stderr}"
    );
    assert!(stderr.contains("stopped"), "{stderr}");
}

#[tokio::test]
async fn serves_a_given_certificate_and_stops_on_sigint() {
    let dir = scratch("cert");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let ca_out = dir.join("published.pem");
    let running = spawn(&[
        "--listen",
        "127.0.0.1:0",
        "--cert",
        path(&cert_path),
        "--key",
        path(&key_path),
        "--ca-out",
        path(&ca_out),
    ]);
    assert_eq!(std::fs::read_to_string(&ca_out).unwrap(), cert.pem());
    let client = support::client_for(&cert.pem(), support::TIMEOUT);
    let (status, _) =
        support::get_basic(&client, &format!("{}/api/pool", running.urls[0]), "admin").await;
    assert_eq!(status, 200);
    let (ok, stderr) = stop(running, "-INT");
    assert!(ok, "exit status after SIGINT: {stderr}");

    let out = Command::new(BIN)
        .args(["--cert", path(&cert_path)])
        .output()
        .unwrap();
    assert!(!out.status.success(), "--cert needs --key");
    let out = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--cert",
            path(&key_path),
            "--key",
            path(&key_path),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("certificate"));
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}
