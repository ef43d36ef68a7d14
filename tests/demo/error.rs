//! What can stop a demo run before it has a result.

use std::{path::PathBuf, process::ExitStatus, time::Duration};

/// A failure of the demo's machinery (not a wrong scaling result: that is a `Verdict`).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A file or directory the demo needs is missing or unusable.
    #[error("{what}: {path}")]
    Missing {
        /// What the path is for.
        what: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// A local file could not be written or read.
    #[error("cannot {action} {path}")]
    Io {
        /// What was attempted.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A process could not be started.
    #[error("cannot start {name} ({program})")]
    Spawn {
        /// The process's name in the demo.
        name: String,
        /// The program.
        program: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A process ended while the demo still needed it.
    #[error("{name} exited unexpectedly ({status}); its log: {log}")]
    Exited {
        /// The process's name in the demo.
        name: String,
        /// How it ended.
        status: ExitStatus,
        /// Where its output went.
        log: PathBuf,
    },
    /// A process did not announce that it was ready in time, or announced something else.
    #[error("{name} did not become ready: {reason}; its log: {log}")]
    NotReady {
        /// The process's name in the demo.
        name: String,
        /// What went wrong.
        reason: String,
        /// Where its output went.
        log: PathBuf,
    },
    /// `kubectl` failed.
    #[error("kubectl {args} failed ({status}): {output}")]
    Kubectl {
        /// Its arguments.
        args: String,
        /// How it ended.
        status: String,
        /// What it printed.
        output: String,
    },
    /// An HTTP request to kube-standin or avi-sim failed.
    #[error("{what}: {url}")]
    Http {
        /// What the request was for.
        what: &'static str,
        /// The URL (no credentials are ever part of it).
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// An answer did not have the expected shape.
    #[error("{what}: unexpected answer from {url}: {detail}")]
    Answer {
        /// What the request was for.
        what: &'static str,
        /// The URL.
        url: String,
        /// What was wrong with it.
        detail: String,
    },
    /// A condition the demo waits for did not come true in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// The condition.
        what: String,
        /// How long the demo waited.
        after: Duration,
    },
}
