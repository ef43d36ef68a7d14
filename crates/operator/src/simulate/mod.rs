//! `avi-autoscaler simulate`: a scenario replayed through the scaling engine on a virtual clock.
//!
//! The scenario (YAML) gives an AviAutoscaler, the target's starting replicas, how long new
//! replicas take to become ready, how long to run, and per metric either what Avi reports over
//! time (`series`) or a load model (`load`) that [`model`] turns into what Avi would report:
//! averages over 300-second buckets (5 seconds for realtime metrics), each visible once it has
//! closed. One decision per `pollingIntervalSeconds`, made by [`scaling::decide`], the engine the
//! operator runs; the target follows each scale.

pub(crate) mod model;
mod output;
pub(crate) mod scenario;

use std::{
    fs, io,
    io::Write as _,
    path::{Path, PathBuf},
};

use crate::cli::{Format, SimulateArgs};
use scenario::Scenario;

/// Why `simulate` failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The scenario file could not be read.
    #[error("cannot read the scenario {path}")]
    ReadScenario {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The scenario is not valid; the message names the field.
    #[error("invalid scenario {path}: {message}")]
    InvalidScenario { path: PathBuf, message: String },
    /// The chart could not be drawn.
    #[error("cannot draw the chart: {0}")]
    Draw(String),
    /// The output could not be written.
    #[error("cannot write {target}")]
    WriteOutput {
        target: String,
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// 2 for a bad scenario (like a usage error), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::ReadScenario { .. } | Error::InvalidScenario { .. } => 2,
            Error::Draw(_) | Error::WriteOutput { .. } => 1,
        }
    }
}

/// Runs `avi-autoscaler simulate`.
pub fn run(args: &SimulateArgs) -> Result<(), Error> {
    let scenario = load(&args.scenario)?;
    let ticks = model::run(&scenario);
    let text = match args.format {
        Format::Table => output::table(&scenario, &ticks),
        Format::Json => output::json(&ticks),
        Format::Svg => output::svg(&scenario, &ticks).map_err(Error::Draw)?,
    };
    write(args.out.as_deref(), &text)
}

fn load(path: &Path) -> Result<Scenario, Error> {
    let text = fs::read_to_string(path).map_err(|source| Error::ReadScenario {
        path: path.to_owned(),
        source,
    })?;
    Scenario::parse(&text).map_err(|message| Error::InvalidScenario {
        path: path.to_owned(),
        message,
    })
}

fn write(out: Option<&Path>, text: &str) -> Result<(), Error> {
    match out {
        Some(path) => fs::write(path, text).map_err(|source| Error::WriteOutput {
            target: path.display().to_string(),
            source,
        }),
        None => io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .map_err(|source| Error::WriteOutput {
                target: "standard output".to_owned(),
                source,
            }),
    }
}
