//! The command line: `avi-autoscaler <command>`.

use clap::{Parser, Subcommand};

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
}
