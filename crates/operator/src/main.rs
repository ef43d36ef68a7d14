//! `avi-autoscaler`: a Kubernetes operator that scales workloads on metrics read straight from
//! an Avi (NSX Advanced Load Balancer) controller.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::Crd => {
            print!("{}", api::crd_yaml());
            ExitCode::SUCCESS
        }
    }
}
