//! calsync's test tooling, kept out of the shipping binary: the benchmarks
//! (`bench`), the chaos battery (`chaos`) and what they share (`harness`).
//! Servers they run as child processes are the real `calsync` binary
//! ([`ServerBin`]); the in-process ones come from the `calsync` library.
//! The `calsync-lab` binary is their command line; tests call them here.

pub mod bench;
pub mod chaos;
mod error;
mod harness;

pub use error::LabError;
pub use harness::server_bin::ServerBin;

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser, Subcommand};

    #[derive(Parser)]
    struct Lab {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Subcommand)]
    enum Command {
        #[command(subcommand)]
        Bench(crate::bench::Bench),
        Chaos(crate::chaos::ChaosArgs),
    }

    /// Every variable the lab reads is in the operator's table, with the
    /// default the code has.
    #[test]
    fn every_environment_variable_is_documented() {
        let doc = include_str!("../../../docs/CALENDAR_ENV_VARS.md");
        let mut pending = vec![Lab::command()];
        let mut checked = 0;
        while let Some(command) = pending.pop() {
            for arg in command.get_arguments() {
                let Some(env) = arg.get_env() else {
                    continue;
                };
                let name = env.to_string_lossy();
                assert!(
                    doc.contains(&format!("| `{name}` |")),
                    "{name} is missing from docs/CALENDAR_ENV_VARS.md"
                );
                if let [default] = arg.get_default_values() {
                    let default = default.to_string_lossy();
                    assert!(
                        doc.contains(&format!("| `{name}` | `{default}`")),
                        "docs/CALENDAR_ENV_VARS.md does not give {name}'s default `{default}`"
                    );
                }
                checked += 1;
            }
            pending.extend(command.get_subcommands().cloned());
        }
        assert!(checked >= 9, "only {checked} variables found");
    }
}
