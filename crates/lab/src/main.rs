//! The `calsync-lab` command line: benchmarks and the chaos battery, run
//! against the `calsync` binary (`--server-bin`, or the one beside this).

use std::process::ExitCode;

use calsync_lab::LabError;
use calsync_lab::bench::Bench;
use calsync_lab::chaos::ChaosArgs;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "calsync-lab",
    version,
    about = "calsync's benchmarks and chaos battery (test tooling, not shipped)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Benchmarks; see each subcommand.
    #[command(subcommand)]
    Bench(Bench),
    /// The chaos battery: remote edits, API writes, Google faults and
    /// SIGKILLs of a `calsync serve` child, then checks the mirror converges.
    Chaos(Box<ChaosArgs>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("calsync-lab: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome: Result<(), LabError> = runtime.block_on(async {
        match cli.command {
            Command::Bench(bench) => bench.run().await,
            Command::Chaos(chaos) => chaos.run().await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("calsync-lab: {error}");
            ExitCode::FAILURE
        }
    }
}
