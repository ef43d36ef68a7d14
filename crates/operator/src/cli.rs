//! The command line: `avi-autoscaler <command>`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Scale Kubernetes workloads on load-balancer metrics read straight from an Avi controller.
///
/// One AviAutoscaler object names the workload, the Avi pool, virtual service or service
/// engine, the metric and the target; the operator polls the controller, computes replicas with
/// the HorizontalPodAutoscaler's arithmetic and writes the workload's scale subresource.
#[derive(Parser, Debug)]
#[command(
    name = "avi-autoscaler",
    version,
    about,
    long_about,
    propagate_version = true
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the AviAutoscaler CustomResourceDefinition as YAML (apply it with kubectl apply -f -).
    Crd,
    /// Replay a scenario through the scaling engine on a virtual clock.
    ///
    /// The scenario file gives an AviAutoscaler, the target's starting replicas, how long new
    /// replicas take to become ready, and for each metric either what Avi reports over time or a
    /// load model (users spawning, connections per user) that is turned into Avi's bucket
    /// averages. One decision per pollingIntervalSeconds, with the engine the operator runs.
    /// Exits with 2 when the scenario is invalid.
    Simulate(SimulateArgs),
}

/// Arguments of `avi-autoscaler simulate`.
#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// The scenario file (YAML); see examples/scenarios/.
    #[arg(long, value_name = "FILE")]
    pub scenario: PathBuf,
    /// table: the ticks where something changed, for people; json: one record per tick; svg: a
    /// chart of metric, target, current and desired replicas.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Output formats of `simulate`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A table for people.
    Table,
    /// A JSON array, one record per tick.
    Json,
    /// An SVG chart.
    Svg,
}
