//! `avi-autoscaler`: a Kubernetes operator that scales workloads on metrics read straight from
//! an Avi (NSX Advanced Load Balancer) controller.

use std::process::ExitCode;

use clap::Parser as _;

mod admin;
mod cli;
mod connection;
mod controller;
mod events;
mod identity;
mod leader;
mod run;
mod simulate;
mod target;
mod telemetry;

/// An error and its causes on one line: `a: b: c`.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !s.ends_with(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = c.source();
    }
    s
}

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        // The same words as every request's User-Agent, so that a binary can be matched with
        // what an API server or the Avi controller logged.
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayVersion => {
            println!("{}", identity::USER_AGENT);
            return ExitCode::SUCCESS;
        }
        Err(e) => e.exit(),
    };
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
        cli::Command::Run(args) => {
            telemetry::init_logging(args.log_format, &args.log_level);
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: starting the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(run::run(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %error_chain(&e), "avi-autoscaler stopped");
                    eprintln!("error: {}", error_chain(&e));
                    ExitCode::FAILURE
                }
            }
        }
    }
}
