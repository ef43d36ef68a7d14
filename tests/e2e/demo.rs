//! The demo (`make demo`) end to end: the `avi-demo` binary with its real processes, at a time
//! scale ten times the default, must show 1 → 5 → 1, write its outputs, and leave no process
//! behind, also when it is interrupted.

use std::{
    io::{BufRead, BufReader, Read},
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc::{self, Receiver},
    time::{Duration, Instant},
};

use serde_json::Value;

/// The demo binary of this package (built by cargo for this test).
const DEMO: &str = env!("CARGO_BIN_EXE_avi-demo");
/// At 150× a 300 s Avi bucket lasts 2 s, the scale-down window 2 s and the polling interval
/// 1 s (its minimum): every bucket is still read at least once, so the run keeps its shape,
/// and the ~37 simulated minutes take about 15 s.
const FAST: &str = "150";
/// A generous bound for one demo run on a loaded 2-core machine.
const RUN_DEADLINE: Duration = Duration::from_secs(240);

/// A running demo with its output read line by line.
struct Demo {
    child: Child,
    lines: Receiver<String>,
    stdout: Vec<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Demo {
    fn start(out: &Path, time_scale: &str) -> Demo {
        let mut child = Command::new(DEMO)
            .args(["--time-scale", time_scale, "--out"])
            .arg(out)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("avi-demo starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Demo {
            child,
            lines,
            stdout: Vec::new(),
            stderr,
        }
    }

    /// Waits for a stdout line containing `needle`.
    fn wait_line(&mut self, needle: &str, deadline: Instant) -> String {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.stdout.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(e) => {
                    self.stop();
                    panic!(
                        "no line with {needle:?} from avi-demo ({e}); its output:\n{}",
                        self.stdout.join("\n")
                    );
                }
            }
        }
    }

    /// Waits for the exit; returns the status, stdout and stderr.
    fn finish(mut self, deadline: Instant) -> (ExitStatus, String, String) {
        // stdout closes when the demo exits.
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.stdout.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.stop();
                    panic!(
                        "avi-demo did not finish in time; its output:\n{}",
                        self.stdout.join("\n")
                    );
                }
            }
        }
        let status = self.child.wait().expect("waiting for avi-demo");
        let stderr = self.stderr.join().unwrap_or_default();
        (status, self.stdout.join("\n"), stderr)
    }

    fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -{name} failed");
    }

    /// Stops a demo that overran, so that a failing test does not leave it running.
    fn stop(&mut self) {
        self.signal("TERM");
        let _ = self.child.wait();
    }
}

/// The pids of the `started NAME (pid N)` lines.
fn started_pids(stdout: &str) -> Vec<(String, u32)> {
    stdout
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("started ")?;
            let (name, rest) = rest.split_once(" (pid ")?;
            let pid = rest.split_once(')')?.0.parse().ok()?;
            Some((name.to_owned(), pid))
        })
        .collect()
}

/// Processes still running that the demo started: a listed pid still running its program, or
/// any process with the run's directory in its command line or environment (the stand-in's
/// kubeconfig, avi-sim's CA file, the operator's KUBECONFIG). Returns (pid, description).
fn leftovers(started: &[(String, u32)], out: &Path) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    let read = |path: String| std::fs::read(path).unwrap_or_default();
    for (name, pid) in started {
        let cmdline = String::from_utf8_lossy(&read(format!("/proc/{pid}/cmdline"))).into_owned();
        if cmdline.contains(name.as_str()) {
            found.push((*pid, format!("{name} (pid {pid}) is still running")));
        }
    }
    let marker = out.to_string_lossy().into_owned();
    for entry in std::fs::read_dir("/proc").expect("/proc is readable") {
        let Ok(entry) = entry else { continue };
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&read(format!("/proc/{pid}/cmdline"))).into_owned();
        let environ = String::from_utf8_lossy(&read(format!("/proc/{pid}/environ"))).into_owned();
        if (cmdline.contains(&marker) || environ.contains(&marker))
            && !found.iter().any(|(p, _)| *p == pid)
        {
            found.push((
                pid,
                format!(
                    "pid {pid} ({}) refers to {marker}",
                    cmdline.replace('\0', " ").trim()
                ),
            ));
        }
    }
    found
}

/// Fails if the demo left a process behind, after killing it (so that a failing run does not
/// leave it running either).
fn assert_nothing_left(started: &[(String, u32)], out: &Path, context: &str) {
    let left = leftovers(started, out);
    for (pid, _) in &left {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    let left: Vec<String> = left.into_iter().map(|(_, d)| d).collect();
    assert!(
        left.is_empty(),
        "{context}: processes left behind: {left:?}"
    );
}

#[test]
fn the_demo_scales_1_to_5_to_1_writes_its_outputs_and_stops_everything() {
    let out = tempfile::tempdir().expect("a temporary directory");
    let demo = Demo::start(out.path(), FAST);
    let (status, stdout, stderr) = demo.finish(Instant::now() + RUN_DEADLINE);
    let context = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(status.success(), "avi-demo failed ({status}); {context}");
    assert!(
        stdout.contains("result              OK: 1 → 5 → 1"),
        "no OK result; {context}"
    );

    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("summary.json")).expect("summary.json"),
    )
    .expect("summary.json is JSON");
    assert_eq!(summary["ok"], true, "{summary:#}");
    let path: Vec<i64> = summary["replicas"]
        .as_array()
        .expect("replicas")
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    assert_eq!(path.first(), Some(&1), "{path:?}");
    assert_eq!(path.iter().max(), Some(&5), "{path:?}");
    assert_eq!(path.last(), Some(&1), "{path:?}");
    assert_eq!(summary["peakReplicas"], 5);
    assert_eq!(summary["finalReplicas"], 1);
    for key in ["scaleUp", "scaleDown"] {
        assert!(
            summary[key]["simulatedSeconds"]
                .as_f64()
                .is_some_and(|s| s > 0.0),
            "{key}: {summary:#}"
        );
    }
    let avi_requests = summary["aviRequests"]["total"].as_u64().unwrap_or(0);
    assert!(avi_requests > 0, "no Avi request counted: {summary:#}");
    let processes = summary["processes"].as_array().expect("processes");
    assert_eq!(processes.len(), 3, "{summary:#}");
    for p in processes {
        assert_eq!(p["stopped"], "exit 0", "an unclean stop: {p}");
    }

    let svg = std::fs::read_to_string(out.path().join("demo.svg")).expect("demo.svg");
    assert!(svg.starts_with("<svg") && svg.contains("kuard-deployment replicas"));
    let describe = std::fs::read_to_string(out.path().join("describe.txt")).expect("describe");
    assert!(
        describe.contains("New size: 5;") && describe.contains("Reason:  "),
        "{describe}"
    );
    // The AviController the autoscaler used, described after the AviAutoscaler.
    let avic = describe
        .split_once("$ kubectl describe avic homelab-avi\n")
        .map(|(_, avic)| avic)
        .unwrap_or_else(|| panic!("no AviController in describe.txt:\n{describe}"));
    assert!(
        avic.contains("Kind:         AviController") && avic.contains("Connected"),
        "{avic}"
    );
    // The summary shows `kubectl get avic`: Ready, with one autoscaler.
    let get_avic: Vec<&str> = stdout
        .split_once("$ kubectl get avic\n")
        .and_then(|(_, rest)| rest.lines().nth(1))
        .unwrap_or_else(|| panic!("no kubectl get avic; {context}"))
        .split_whitespace()
        .collect();
    assert_eq!(get_avic.first(), Some(&"homelab-avi"), "{context}");
    assert_eq!(get_avic.get(1), Some(&"True"), "{context}");
    assert_eq!(get_avic.get(5), Some(&"1"), "autoscalers; {context}");
    let csv = std::fs::read_to_string(out.path().join("timeline.csv")).expect("timeline.csv");
    assert!(csv.lines().count() > 10, "{csv}");

    let started = started_pids(&stdout);
    let names: Vec<&str> = started.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["kube-standin", "avi-sim", "avi-autoscaler"],
        "{context}"
    );
    assert_nothing_left(&started, out.path(), "after a complete run");
}

#[test]
fn ctrl_c_and_sigterm_stop_every_process_the_demo_started() {
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let out = tempfile::tempdir().expect("a temporary directory");
        // The default time scale: the run is still going when the signal comes.
        let mut demo = Demo::start(out.path(), "15");
        let deadline = Instant::now() + RUN_DEADLINE;
        // Interrupted while the load plays: every process is running.
        demo.wait_line("load starts", deadline);
        let started = started_pids(&demo.stdout.join("\n"));
        assert_eq!(started.len(), 3, "{:?}", demo.stdout);
        demo.signal(signal);
        let (status, stdout, stderr) = demo.finish(deadline);
        assert_eq!(
            status.code(),
            Some(code),
            "SIG{signal}: {status}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        assert!(
            stderr.contains(&format!("SIG{signal}: stopping every process")),
            "{stderr}"
        );
        assert_nothing_left(&started, out.path(), &format!("after SIG{signal}"));
        for (name, _) in &started {
            assert!(
                stderr.contains(&format!("stopped {name} (pid")),
                "SIG{signal}: {name} not reported stopped:\n{stderr}"
            );
        }
    }
}

#[test]
fn a_process_that_dies_fails_the_demo_which_stops_the_others() {
    let out = tempfile::tempdir().expect("a temporary directory");
    let mut demo = Demo::start(out.path(), "15");
    let deadline = Instant::now() + RUN_DEADLINE;
    demo.wait_line("load starts", deadline);
    let started = started_pids(&demo.stdout.join("\n"));
    let (_, operator) = started
        .iter()
        .find(|(name, _)| name == "avi-autoscaler")
        .expect("the operator's pid");
    // A crash of the operator in the middle of the run.
    let killed = Command::new("kill")
        .args(["-KILL", &operator.to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let (status, stdout, stderr) = demo.finish(deadline);
    assert_eq!(
        status.code(),
        Some(1),
        "{status}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stderr.contains("avi-autoscaler exited unexpectedly (signal: 9")
            && stderr.contains("logs/avi-autoscaler.log"),
        "{stderr}"
    );
    assert_nothing_left(&started, out.path(), "after the operator died");
    for (name, _) in started.iter().filter(|(n, _)| n != "avi-autoscaler") {
        assert!(
            stderr.contains(&format!("stopped {name} (pid")),
            "{name} not reported stopped:\n{stderr}"
        );
    }
    assert!(
        !out.path().join("summary.json").exists(),
        "a failed run wrote a summary"
    );
}

#[test]
fn a_time_scale_out_of_range_is_refused_before_anything_starts() {
    let out = tempfile::tempdir().expect("a temporary directory");
    let output = Command::new(DEMO)
        .args(["--time-scale", "1000", "--out"])
        .arg(out.path())
        .output()
        .expect("avi-demo runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--time-scale must be between 1 and 300"),
        "{stderr}"
    );
    assert!(
        std::fs::read_dir(out.path()).unwrap().next().is_none(),
        "something was written"
    );
}
