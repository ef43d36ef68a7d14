//! `avi-autoscaler`: a Kubernetes operator that scales workloads on metrics read straight from
//! an Avi (NSX Advanced Load Balancer) controller.

use std::process::ExitCode;

use clap::Parser as _;

mod admin;
mod avicontroller;
mod cli;
mod connection;
mod controller;
mod controller_ref;
mod decode;
mod doctor;
mod events;
mod history;
mod identity;
mod inline;
mod leader;
mod migrate;
mod ownership;
mod readiness;
mod run;
mod shard;
mod shutdown;
mod simulate;
mod target;
mod telemetry;
mod ttl_cache;
mod validation;
mod workloads;

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
        cli::Command::Crd(args) => match &args.out_dir {
            None => {
                print!("{}", api::crd_yaml());
                ExitCode::SUCCESS
            }
            Some(dir) => {
                for (file, crd) in api::crds() {
                    let path = dir.join(file);
                    if let Err(e) = std::fs::write(&path, api::crd_file(&crd)) {
                        eprintln!("error: writing {}: {e}", path.display());
                        return ExitCode::FAILURE;
                    }
                }
                ExitCode::SUCCESS
            }
        },
        cli::Command::Simulate(args) => match simulate::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {}", present::error_chain(&e));
                ExitCode::from(e.exit_code())
            }
        },
        cli::Command::Migrate(args) => match migrate::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {}", present::error_chain(&e));
                ExitCode::FAILURE
            }
        },
        cli::Command::Doctor(args) => {
            let Some(runtime) = runtime(tokio::runtime::Builder::new_current_thread()) else {
                return ExitCode::FAILURE;
            };
            match runtime.block_on(doctor::run(&args)) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("error: {}", present::error_chain(&e));
                    ExitCode::FAILURE
                }
            }
        }
        cli::Command::Run(args) => {
            if let Err(e) = args.shard() {
                use clap::CommandFactory as _;
                cli::Cli::command()
                    .error(clap::error::ErrorKind::ArgumentConflict, e)
                    .exit();
            }
            telemetry::init_logging(args.log_format, &args.log_level);
            let Some(runtime) = runtime(tokio::runtime::Builder::new_multi_thread()) else {
                return ExitCode::FAILURE;
            };
            match runtime.block_on(run::run(*args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %present::error_chain(&e), "avi-autoscaler stopped");
                    eprintln!("error: {}", present::error_chain(&e));
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// The async runtime `builder` makes, with I/O and timers; `None` (and a message) if it cannot
/// start.
fn runtime(mut builder: tokio::runtime::Builder) -> Option<tokio::runtime::Runtime> {
    builder
        .enable_all()
        .build()
        .inspect_err(|e| eprintln!("error: starting the async runtime: {e}"))
        .ok()
}
