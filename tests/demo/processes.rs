//! The processes the demo starts, and the guarantee that it stops every one of them.
//!
//! Each child runs in its own process group, so a Ctrl-C in the terminal reaches only the demo,
//! which then stops its children in reverse start order: SIGTERM to the group, a grace period,
//! then SIGKILL. If the demo itself unwinds without stopping them (a panic), tokio's
//! `kill_on_drop` kills what is left.

use std::{
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

use crate::error::DemoError;

/// How long a child may take to print its ready line (a debug build on a loaded machine).
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a child may take to exit after SIGTERM before it is killed. The operator finishes
/// in-flight reconciles first, which take at most a request timeout.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A child process the demo started.
struct Managed {
    name: String,
    pid: u32,
    child: Child,
    log: PathBuf,
}

/// How a child ended when the demo stopped it.
#[derive(Debug, Clone)]
pub struct Stopped {
    /// Its name in the demo.
    pub name: String,
    /// Its process id.
    pub pid: u32,
    /// `exit 0`, `signal 15`, or how it was already gone.
    pub how: String,
    /// Whether it exited cleanly on SIGTERM (status 0).
    pub clean: bool,
}

/// Owns every child process; [`Supervisor::stop_all`] stops them.
pub struct Supervisor {
    log_dir: PathBuf,
    children: Vec<Managed>,
}

impl Supervisor {
    /// A supervisor writing each child's output to `log_dir/<name>.log`.
    pub fn new(log_dir: &Path) -> Self {
        Supervisor {
            log_dir: log_dir.to_path_buf(),
            children: Vec::new(),
        }
    }

    /// Starts `program` as `name` (stderr, and stdout after the ready line, go to its log) and,
    /// when `wait_ready`, returns the first line it prints on stdout.
    pub async fn start(
        &mut self,
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(&str, &str)],
        wait_ready: bool,
    ) -> Result<(u32, Option<String>), DemoError> {
        let log = self.log_dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).map_err(|source| DemoError::Io {
            action: "create",
            path: log.clone(),
            source,
        })?;
        let stderr = file.try_clone().map_err(|source| DemoError::Io {
            action: "open",
            path: log.clone(),
            source,
        })?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(env.iter().copied())
            // Not inherited from the user's shell: the demo's children talk only to each other.
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("POD_NAME")
            .env_remove("POD_NAMESPACE")
            // Their output goes to files: plain text, no terminal colours.
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(if wait_ready {
                Stdio::piped()
            } else {
                Stdio::from(file)
            })
            .stderr(Stdio::from(stderr))
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|source| DemoError::Spawn {
            name: name.to_owned(),
            program: program.to_path_buf(),
            source,
        })?;
        let pid = child.id().unwrap_or_default();
        let stdout = child.stdout.take();
        // Registered before anything can fail, so that every started process is stopped.
        self.children.push(Managed {
            name: name.to_owned(),
            pid,
            child,
            log: log.clone(),
        });
        let Some(stdout) = stdout else {
            return Ok((pid, None));
        };
        let mut lines = BufReader::new(stdout).lines();
        let first = match tokio::time::timeout(READY_TIMEOUT, lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) | Ok(Err(_)) => {
                return Err(DemoError::NotReady {
                    name: name.to_owned(),
                    reason: "it exited without printing its ready line".into(),
                    log,
                });
            }
            Err(_) => {
                return Err(DemoError::NotReady {
                    name: name.to_owned(),
                    reason: format!("no ready line after {READY_TIMEOUT:?}"),
                    log,
                });
            }
        };
        // The rest of its stdout goes to the log too; reading it keeps the child from blocking
        // on a full pipe.
        let mut rest = lines.into_inner();
        let path = log.clone();
        tokio::spawn(async move {
            let file = tokio::fs::OpenOptions::new().append(true).open(&path).await;
            if let Ok(mut file) = file {
                let _ = tokio::io::copy(&mut rest, &mut file).await;
            }
        });
        Ok((pid, Some(first)))
    }

    /// The log file of the child `name`.
    pub fn log_of(&self, name: &str) -> Option<&Path> {
        self.children
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.log.as_path())
    }

    /// Fails if any child has exited: the demo needs all of them until the end.
    pub fn check_alive(&mut self) -> Result<(), DemoError> {
        for m in &mut self.children {
            if let Ok(Some(status)) = m.child.try_wait() {
                return Err(DemoError::Exited {
                    name: m.name.clone(),
                    status,
                    log: m.log.clone(),
                });
            }
        }
        Ok(())
    }

    /// Stops every child, the last started first: SIGTERM to its process group, then SIGKILL
    /// after [`STOP_TIMEOUT`]. Returns how each ended; afterwards none is left.
    pub async fn stop_all(&mut self) -> Vec<Stopped> {
        let mut stopped = Vec::new();
        while let Some(mut m) = self.children.pop() {
            let result = match m.child.try_wait() {
                Ok(Some(status)) => Stopped {
                    name: m.name.clone(),
                    pid: m.pid,
                    how: format!("had already exited ({})", describe(status)),
                    clean: false,
                },
                _ => stop(&mut m).await,
            };
            stopped.push(result);
        }
        stopped
    }
}

/// SIGTERM to the child's process group (its pid: it was started with `process_group(0)`),
/// then a grace period, then SIGKILL.
async fn stop(m: &mut Managed) -> Stopped {
    let group = format!("-{}", m.pid);
    // std has no safe way to send SIGTERM, and `unsafe` is forbidden here: kill(1) does it.
    let sent = Command::new("kill")
        .args(["-TERM", "--", &group])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success());
    if sent && let Ok(Ok(status)) = tokio::time::timeout(STOP_TIMEOUT, m.child.wait()).await {
        return Stopped {
            name: m.name.clone(),
            pid: m.pid,
            how: describe(status),
            clean: status.success(),
        };
    }
    let _ = m.child.kill().await;
    Stopped {
        name: m.name.clone(),
        pid: m.pid,
        how: if sent {
            format!("killed after not exiting within {STOP_TIMEOUT:?} of SIGTERM")
        } else {
            "killed (SIGTERM could not be sent)".into()
        },
        clean: false,
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        _ => status.to_string(),
    }
}
