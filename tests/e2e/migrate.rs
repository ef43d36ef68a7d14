//! End-to-end: `avi-autoscaler migrate` as a user runs it, with the real binary on the example
//! chain under examples/migrate/: files and standard input, the output stream, the advice on
//! standard error, and the refusal when the chain is incomplete.

use std::{
    io::Write as _,
    process::{Command, Output, Stdio},
};

use e2e::{workspace_bin, workspace_root};

/// Runs `avi-autoscaler migrate` with `args`, feeding `stdin`.
fn migrate(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(workspace_bin("avi-autoscaler"))
        .arg("migrate")
        .args(args)
        .current_dir(workspace_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("avi-autoscaler runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin.as_bytes())
        .expect("stdin accepts the input");
    child.wait_with_output().expect("avi-autoscaler finishes")
}

/// A file of the example, as text.
fn example(file: &str) -> String {
    std::fs::read_to_string(workspace_root().join("examples/migrate").join(file))
        .expect("the example is readable")
}

#[test]
fn the_example_chain_converts_from_files_and_from_stdin() {
    let expected = example("expected.yaml");
    let out = migrate(
        &[
            "-f",
            "examples/migrate/hpa.yaml",
            "-f",
            "examples/migrate/servicemonitor.yaml",
            "--controller",
            "avi",
        ],
        "",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("advice:") && stderr.contains("grows with replicas"),
        "{stderr}"
    );

    // One multi-document stream on stdin, as `kubectl get -o yaml` output is piped.
    let stream = format!(
        "{}---\n{}",
        example("hpa.yaml"),
        example("servicemonitor.yaml")
    );
    let out = migrate(&["-f", "-", "--controller", "avi"], &stream);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
}

#[test]
fn an_incomplete_chain_exits_non_zero_with_nothing_on_stdout() {
    let out = migrate(
        &["-f", "examples/migrate/hpa.yaml", "--controller", "avi"],
        "",
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error:") && stderr.contains("no ServiceMonitor"),
        "{stderr}"
    );

    let out = migrate(&["-f", "missing.yaml", "--controller", "avi"], "");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("reading missing.yaml"));
}
