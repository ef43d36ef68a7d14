//! `avi-autoscaler`: a Kubernetes operator that scales workloads on metrics read straight from
//! an Avi (NSX Advanced Load Balancer) controller.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod simulate;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::Crd => {
            print!("{}", api::crd_yaml());
            ExitCode::SUCCESS
        }
        cli::Command::Simulate(args) => match simulate::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {}", simulate::report(&e));
                ExitCode::from(e.exit_code())
            }
        },
    }
}
