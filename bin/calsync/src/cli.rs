//! Command-line definitions and dispatch.

use calsync_domain::ids::ChannelId;
use calsync_domain::webhook::WebhookSecret;
use calsync_store::DatabaseUrl;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "calsync",
    version,
    about = "Keeps a local, queryable mirror of Google Calendar events"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server. With no configuration: embedded SQLite and the
    /// built-in Google Calendar emulator.
    Serve(Box<calsync::settings::ServeArgs>),
    /// Apply pending database migrations and exit.
    Migrate {
        /// postgres://..., sqlite://PATH, or unset for ./calsync.db.
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
    /// Print the X-Goog-Channel-Token a watch channel must present, derived
    /// from its id and WEBHOOK_SECRET (for testing webhooks by hand).
    WebhookToken {
        /// The watch channel's id.
        channel_id: String,
        #[arg(long, env = "WEBHOOK_SECRET", hide_env_values = true)]
        webhook_secret: String,
    },
    /// Run the Google Calendar API emulator on its own until interrupted.
    Emulator {
        #[arg(long, env = "CALSYNC_EMULATOR_BIND", default_value = "127.0.0.1:8085")]
        bind: String,
        /// PEM public key of a service account: only tokens obtained with a
        /// JWT signed by its private key are accepted. Without it any bearer
        /// token is.
        #[arg(long)]
        service_account_public_key: Option<std::path::PathBuf>,
    },
    /// Benchmarks; see each subcommand.
    #[command(subcommand)]
    Bench(crate::bench::Bench),
}

/// Errors a command reports on its one line of stderr.
#[derive(Debug)]
pub struct CommandError(String);

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<calsync_store::Error> for CommandError {
    fn from(error: calsync_store::Error) -> Self {
        Self(error.to_string())
    }
}

impl From<calsync_domain::Error> for CommandError {
    fn from(error: calsync_domain::Error) -> Self {
        Self(error.to_string())
    }
}

impl From<String> for CommandError {
    fn from(message: String) -> Self {
        Self(message)
    }
}

pub async fn run(command: Command) -> Result<(), CommandError> {
    match command {
        Command::Migrate { database_url } => {
            let url = DatabaseUrl::parse(database_url.as_deref())?;
            let applied = calsync_store::migrate(&url).await?;
            if applied.is_empty() {
                println!("{}: schema is up to date", url.redacted());
            }
            for version in applied {
                println!("{}: applied {version}", url.redacted());
            }
            Ok(())
        }
        Command::WebhookToken {
            channel_id,
            webhook_secret,
        } => {
            let secret = WebhookSecret::new(webhook_secret)?;
            println!("{}", secret.channel_token(&ChannelId::new(channel_id)?));
            Ok(())
        }
        Command::Serve(args) => serve(*args).await,
        Command::Emulator {
            bind,
            service_account_public_key,
        } => run_emulator(&bind, service_account_public_key.as_deref()).await,
        Command::Bench(bench) => bench.run().await,
    }
}

async fn run_emulator(
    bind: &str,
    public_key: Option<&std::path::Path>,
) -> Result<(), CommandError> {
    use calsync_emulator::{Emulator, EmulatorAuth, EmulatorConfig};
    let auth = match public_key {
        None => EmulatorAuth::Open,
        Some(path) => EmulatorAuth::ServiceAccount {
            public_key_pem: std::fs::read_to_string(path)
                .map_err(|error| format!("cannot read {}: {error}", path.display()))?,
        },
    };
    let config = EmulatorConfig {
        auth,
        ..EmulatorConfig::default()
    };
    let running = Emulator::new(config)?
        .start(bind)
        .await
        .map_err(|error| format!("cannot listen on {bind}: {error}"))?;
    println!(
        "Google Calendar API emulator at {} (token endpoint {}); Ctrl-C stops it",
        running.calendar_api_url(),
        running.token_url()
    );
    tokio::signal::ctrl_c()
        .await
        .map_err(|error| format!("cannot wait for Ctrl-C: {error}"))?;
    running.stop().await;
    Ok(())
}

async fn serve(args: calsync::settings::ServeArgs) -> Result<(), CommandError> {
    use calsync_resilience::{LogConfig, json_logger};
    let settings = args.settings()?;
    let config = LogConfig {
        service: "calsync".into(),
        level: settings.log_level,
    };
    let (logger, _flush_on_exit) = json_logger(std::io::stdout(), &config);
    let running = calsync::server::start(settings, logger).await?;
    wait_for_termination().await?;
    running.stop().await;
    Ok(())
}

/// SIGTERM (how orchestrators stop a service) or Ctrl-C.
async fn wait_for_termination() -> Result<(), CommandError> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|error| format!("cannot listen for SIGTERM: {error}"))?;
    tokio::select! {
        _ = terminate.recv() => {}
        result = tokio::signal::ctrl_c() => result.map_err(|error| format!("cannot listen for Ctrl-C: {error}"))?,
    }
    Ok(())
}
