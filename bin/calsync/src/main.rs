//! The calsync command line. It only parses arguments and wires crates
//! together; the behaviour lives in the library crates.

use std::process::ExitCode;

use calsync_domain::ids::ChannelId;
use calsync_domain::webhook::WebhookSecret;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "calsync",
    version,
    about = "Keeps a local, queryable mirror of Google Calendar events"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the X-Goog-Channel-Token a watch channel must present, derived
    /// from its id and WEBHOOK_SECRET (for testing webhooks by hand).
    WebhookToken {
        /// The watch channel's id.
        channel_id: String,
        #[arg(long, env = "WEBHOOK_SECRET", hide_env_values = true)]
        webhook_secret: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(output) => {
            println!("{output}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("calsync: {error}");
            ExitCode::from(2)
        }
    }
}

fn run(command: Command) -> Result<String, calsync_domain::Error> {
    match command {
        Command::WebhookToken {
            channel_id,
            webhook_secret,
        } => {
            let secret = WebhookSecret::new(webhook_secret)?;
            Ok(secret.channel_token(&ChannelId::new(channel_id)?))
        }
    }
}
