//! The calsync command line: parses arguments and hands each command to its
//! module. Behaviour lives in the library crates.

mod bench;
mod chaos;
mod cli;
mod error;
mod harness;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("calsync: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("calsync: {error}");
            ExitCode::FAILURE
        }
    }
}
