//! `avi-autoscaler simulate`, run as a real process on the scenarios in examples/scenarios/.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use serde_json::Value;

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/scenarios")
        .join(name)
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_avi-autoscaler"))
        .args(args)
        .output()
        .expect("avi-autoscaler runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// One tick of `--format json`.
#[derive(Debug)]
struct Tick {
    t: i64,
    current: i64,
    desired: i64,
    scaled: bool,
    reasons: Vec<String>,
}

fn simulate_json(name: &str) -> Vec<Tick> {
    let path = scenario(name);
    let out = run(&[
        "simulate",
        "--scenario",
        path.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{name}: {}", stderr(&out));
    let records: Vec<Value> = serde_json::from_slice(&out.stdout).expect("the output is JSON");
    records
        .iter()
        .map(|r| {
            let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(
                keys,
                [
                    "currentReplicas",
                    "desiredReplicas",
                    "metrics",
                    "reasons",
                    "scaled",
                    "t"
                ],
                "the record shape the README documents"
            );
            Tick {
                t: r["t"].as_i64().unwrap(),
                current: r["currentReplicas"].as_i64().unwrap(),
                desired: r["desiredReplicas"].as_i64().unwrap(),
                scaled: r["scaled"].as_bool().unwrap(),
                reasons: r["reasons"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_owned())
                    .collect(),
            }
        })
        .collect()
}

/// `metrics[0].load.stopAt` of a scenario, read from the file itself.
fn stop_at(name: &str) -> i64 {
    let text = std::fs::read_to_string(scenario(name)).unwrap();
    let doc: Value = serde_yaml::from_str(&text).unwrap();
    doc["metrics"][0]["load"]["stopAt"].as_i64().unwrap()
}

/// The highest replica count the target had while the load was on.
fn peak_while_loaded(ticks: &[Tick], stop: i64) -> i64 {
    ticks
        .iter()
        .filter(|t| t.t < stop)
        .map(|t| t.current)
        .max()
        .unwrap()
}

/// The legacy scale-down stabilization window (the scenarios set no behavior).
const WINDOW: i64 = 300;

#[test]
fn seed_with_average_value_reaches_5_and_returns_to_1_after_the_window() {
    let name = "seed-averagevalue.yaml";
    let ticks = simulate_json(name);
    let stop = stop_at(name);
    assert_eq!(ticks[0].t, 0);
    assert!(
        ticks.windows(2).all(|w| w[1].t - w[0].t == 15),
        "one tick per pollingIntervalSeconds"
    );
    assert_eq!(
        peak_while_loaded(&ticks, stop),
        5,
        "5 replicas while 1000 users are on"
    );
    let back_to_one = ticks
        .iter()
        .find(|t| t.t > stop && t.scaled && t.desired == 1)
        .expect("it returns to 1 replica");
    assert!(
        back_to_one.t >= stop + WINDOW,
        "back to 1 at {} s, but the load ended at {stop} s and the window is {WINDOW} s",
        back_to_one.t
    );
    assert_eq!(ticks.last().unwrap().current, 1);
    // The scale-down waited on the window, and said so.
    assert!(
        ticks
            .iter()
            .any(|t| t.t > stop && t.reasons.iter().any(|r| r == "ScaleDownStabilized"))
    );
}

#[test]
fn at_300_users_average_value_settles_at_2_while_value_climbs_to_max() {
    let name = "users-300-averagevalue.yaml";
    let average = simulate_json(name);
    let stop = stop_at(name);
    assert_eq!(peak_while_loaded(&average, stop), 2);
    let settled: Vec<i64> = average
        .iter()
        .filter(|t| t.t >= 600 && t.t < stop)
        .map(|t| t.current)
        .collect();
    assert!(settled.iter().all(|&r| r == 2), "{settled:?}");

    let value = simulate_json("users-300-value.yaml");
    assert_eq!(
        peak_while_loaded(&value, stop_at("users-300-value.yaml")),
        5
    );
    // Each step waited for a newer Avi bucket: never two scale-ups within one 300 s bucket.
    let ups: Vec<i64> = value
        .iter()
        .filter(|t| t.scaled && t.desired > t.current)
        .map(|t| t.t)
        .collect();
    assert_eq!(ups.len(), 3, "1 → 2 → 3 → 5: {ups:?}");
    assert!(ups.windows(2).all(|w| w[1] - w[0] >= 300), "{ups:?}");
    assert!(
        value
            .iter()
            .any(|t| t.reasons.iter().any(|r| r == "WaitingForFreshSample"))
    );
}

#[test]
fn the_seeds_value_target_also_reaches_5() {
    let name = "seed-value.yaml";
    assert_eq!(peak_while_loaded(&simulate_json(name), stop_at(name)), 5);
}

#[test]
fn realtime_metrics_reach_5_within_the_first_aggregation_bucket() {
    let ticks = simulate_json("seed-realtime.yaml");
    assert!(ticks.windows(2).all(|w| w[1].t - w[0].t == 5));
    let first_five = ticks.iter().find(|t| t.current == 5).unwrap();
    assert!(first_five.t < 300, "5 replicas only at {} s", first_five.t);
}

#[test]
fn the_table_and_the_chart_are_written() {
    let path = scenario("seed-averagevalue.yaml");
    let path = path.to_str().unwrap();
    let out = run(&["simulate", "--scenario", path]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("time replicas ready"), "{table}");
    assert!(table.contains("SuccessfulRescale: New size: 5"), "{table}");
    assert!(table.contains("peak 5 replicas"), "{table}");

    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("seed.svg");
    let out = run(&[
        "simulate",
        "--scenario",
        path,
        "--format",
        "svg",
        "--out",
        svg.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let svg = std::fs::read_to_string(svg).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..100]);
    assert!(svg.trim_end().ends_with("</svg>"));
    for text in [
        "metric and target",
        "replicas",
        "desired",
        "current (spec.replicas)",
        "200 × current replicas",
    ] {
        assert!(svg.contains(text), "the chart lacks {text}");
    }
    assert!(
        svg.matches("<polyline").count() >= 5,
        "metric, target, ready, current, desired"
    );
}

/// Writes `text` as a scenario and runs `simulate` on it.
fn run_scenario(text: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scenario.yaml");
    std::fs::write(&path, text).unwrap();
    run(&[
        "simulate",
        "--scenario",
        path.to_str().unwrap(),
        "--format",
        "json",
    ])
}

const VALID: &str = r#"
autoscaler:
  spec:
    scaleTargetRef: {name: kuard}
    minReplicas: 1
    maxReplicas: 5
    controller: {endpoints: ["https://avi.example.com"], credentialsSecretRef: {name: avi}}
    metrics:
    - entity: {type: pool, name: kuard}
      metricId: l4_server.avg_open_conns
      target: {type: AverageValue, averageValue: 200}
durationSeconds: 600
metrics:
- series: [{at: 0, value: 100}, {at: 300, value: 900}]
"#;

#[test]
fn a_minimal_scenario_with_a_series_runs() {
    let out = run_scenario(VALID);
    assert!(out.status.success(), "{}", stderr(&out));
    let records: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(records.len(), 41);
    assert_eq!(records[20]["metrics"][0], 900.0);
    assert_eq!(records[20]["desiredReplicas"], 4); // 900 / 200 → 5, legacy cap 4
}

#[test]
fn series_can_simulate_failures_and_bad_data() {
    let text = VALID.replace(
        "[{at: 0, value: 100}, {at: 300, value: 900}]",
        "[{at: 0, value: 100}, {at: 60, error: AviUnreachable}, {at: 120, value: .nan}, {at: 180, value: 100}]",
    );
    let out = run_scenario(&text);
    assert!(out.status.success(), "{}", stderr(&out));
    let records: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let reasons = |i: usize| records[i]["reasons"].to_string();
    assert!(reasons(4).contains("AviUnreachable"), "{}", reasons(4));
    assert!(reasons(8).contains("FailedGetAviMetric"), "{}", reasons(8));
    assert!(records.iter().all(|r| r["scaled"] == false));
}

#[test]
fn invalid_scenarios_fail_with_exit_code_2_naming_the_field() {
    let cases: &[(&str, String, &str)] = &[
        (
            "missing duration",
            VALID.replace("durationSeconds: 600\n", ""),
            "durationSeconds",
        ),
        (
            "a typo",
            VALID.replace("durationSeconds", "durationSecs"),
            "durationSecs",
        ),
        (
            "an invalid spec",
            VALID.replace("maxReplicas: 5", "maxReplicas: 0"),
            "autoscaler.spec.maxReplicas",
        ),
        (
            "a metric too few",
            VALID.replace(
                "- series: [{at: 0, value: 100}, {at: 300, value: 900}]\n",
                "",
            ),
            "metrics: 0 entries, but autoscaler.spec.metrics has 1",
        ),
        (
            "a series that does not start at 0",
            VALID.replace("{at: 0, value: 100}, ", ""),
            "metrics[0].series[0].at",
        ),
        (
            "a series out of order",
            VALID.replace("{at: 300, value: 900}", "{at: 0, value: 900}"),
            "metrics[0].series[1].at",
        ),
        (
            "an unknown failure",
            VALID.replace("{at: 300, value: 900}", "{at: 300, error: Boom}"),
            "metrics[0].series[1].error",
        ),
        (
            "a load per member on a Sum",
            VALID.replace(
                "- series: [{at: 0, value: 100}, {at: 300, value: 900}]",
                "- load: {spawnRate: 5, maxUsers: 100, per: member}",
            ),
            "metrics[0].load.per",
        ),
        (
            "a load without spawnRate",
            VALID.replace(
                "- series: [{at: 0, value: 100}, {at: 300, value: 900}]",
                "- load: {maxUsers: 100}",
            ),
            "spawnRate",
        ),
        (
            "both series and load",
            VALID.replace(
                "- series: [{at: 0, value: 100}, {at: 300, value: 900}]",
                "- {series: [{at: 0, value: 1}], load: {spawnRate: 1, maxUsers: 1}}",
            ),
            "metrics[0]: set exactly one of series and load",
        ),
        (
            "ready above status",
            format!("{VALID}initialReplicas: {{spec: 3, status: 2, ready: 3}}\n"),
            "initialReplicas.ready",
        ),
        (
            "a bad start time",
            format!("{VALID}startTime: yesterday\n"),
            "startTime",
        ),
        (
            "the wrong kind",
            VALID.replace(
                "autoscaler:\n",
                "autoscaler:\n  kind: HorizontalPodAutoscaler\n",
            ),
            "autoscaler.kind",
        ),
        ("not YAML", "{{{".to_owned(), "invalid scenario"),
    ];
    for (what, text, field) in cases {
        let out = run_scenario(text);
        assert_eq!(out.status.code(), Some(2), "{what}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.starts_with("error: invalid scenario "), "{what}: {err}");
        assert!(
            err.contains(field),
            "{what}: the message does not name {field}: {err}"
        );
        assert!(out.stdout.is_empty(), "{what}");
    }
}

#[test]
fn a_missing_scenario_file_fails_with_exit_code_2() {
    let out = run(&["simulate", "--scenario", "/nonexistent/scenario.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("cannot read the scenario /nonexistent/scenario.yaml"),
        "{err}"
    );
    let out = run(&["simulate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--scenario"), "{}", stderr(&out));
    let path = scenario("seed-averagevalue.yaml");
    let out = run(&[
        "simulate",
        "--scenario",
        path.to_str().unwrap(),
        "--format",
        "png",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_unwritable_output_fails_with_exit_code_1() {
    let path = scenario("seed-averagevalue.yaml");
    let out = run(&[
        "simulate",
        "--scenario",
        path.to_str().unwrap(),
        "--out",
        "/nonexistent/dir/out.txt",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot write /nonexistent/dir/out.txt"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn history_in_the_scenario_status_is_honoured() {
    // A recommendation of 5 made a minute before the start holds 5 replicas for the rest of the
    // 300 s scale-down window, although the load is gone.
    let text = VALID
        .replace(
            "durationSeconds: 600",
            "durationSeconds: 600\ninitialReplicas: 5\nstartTime: \"2026-01-01T00:00:00Z\"",
        )
        .replace("[{at: 0, value: 100}, {at: 300, value: 900}]", "[{at: 0, value: 0}]")
        .replace(
            "      target: {type: AverageValue, averageValue: 200}\n",
            "      target: {type: AverageValue, averageValue: 200}\n  status:\n    recommendations:\n    - {time: \"2025-12-31T23:59:00Z\", replicas: 5}\n",
        );
    let out = run_scenario(&text);
    assert!(out.status.success(), "{}", stderr(&out));
    let records: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let first_down = records
        .iter()
        .find(|r| r["scaled"] == true)
        .expect("it scales down once the window has passed");
    // The 5 counts as recommended until the first poll (t = 0) superseded it, and the legacy
    // window still counts an entry exactly 300 s old: down on the poll after that.
    assert_eq!(first_down["t"], 315, "{first_down}");
    assert_eq!(first_down["desiredReplicas"], 1);
}

#[test]
fn scale_to_zero_wakes_on_the_first_clients_and_sleeps_after_the_cooldown() {
    let ticks = simulate_json("scale-to-zero.yaml");
    let text = std::fs::read_to_string(scenario("scale-to-zero.yaml")).unwrap();
    let doc: Value = serde_yaml::from_str(&text).unwrap();
    let cooldown = doc["autoscaler"]["spec"]["scaleToZeroCooldownSeconds"]
        .as_i64()
        .unwrap();
    let day = doc["metrics"][0]["load"]["series"].as_array().unwrap();
    let first_users = day[0]["at"].as_i64().unwrap();
    let last_users = day.last().unwrap()["at"].as_i64().unwrap();

    // Idle at zero until the first users, then woken to one replica.
    assert!(
        ticks
            .iter()
            .filter(|t| t.t < first_users)
            .all(|t| t.current == 0 && t.reasons.iter().any(|r| r == "ScaledToZero"))
    );
    let wake = ticks
        .iter()
        .find(|t| t.scaled)
        .expect("the first clients wake the target");
    assert!(wake.t >= first_users, "woken at {} s", wake.t);
    assert_eq!((wake.current, wake.desired), (0, 1));
    assert!(wake.reasons.iter().any(|r| r == "Activated"));
    // Never at zero while users are on; sized by the pool metric in between.
    assert!(
        ticks
            .iter()
            .filter(|t| t.t > wake.t + 60 && t.t < last_users)
            .all(|t| t.current >= 1)
    );
    assert_eq!(peak_while_loaded(&ticks, last_users), 5);
    // Back to zero once the cooldown has passed without clients, and there at the end.
    let sleep = ticks
        .iter()
        .find(|t| t.t > last_users && t.scaled && t.desired == 0)
        .expect("it goes back to zero");
    assert!(sleep.t >= last_users + cooldown, "to zero at {} s", sleep.t);
    assert!(sleep.reasons.iter().any(|r| r == "ScaledToZero"));
    assert_eq!(ticks.last().unwrap().current, 0);
}
