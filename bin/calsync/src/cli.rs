//! Command-line definitions and dispatch.

use calsync_domain::ids::ChannelId;
use calsync_domain::webhook::WebhookSecret;
use calsync_store::DatabaseUrl;
use clap::{Parser, Subcommand};

use crate::error::CommandError;

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
    /// Sync one calendar now (incremental, or full with --full) and exit.
    Sync {
        #[arg(long)]
        calendar: String,
        #[arg(long)]
        full: bool,
        #[command(flatten)]
        settings: Box<calsync::settings::ServeArgs>,
    },
    /// Run the retention cleanup once and exit.
    Cleanup {
        #[command(flatten)]
        settings: Box<calsync::settings::ServeArgs>,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        /// postgres://..., sqlite://PATH, or unset for ./calsync.db.
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// `production` verifies the Postgres server's certificate by default.
        #[arg(long, env = "CALSYNC_ENV", default_value = "development")]
        env: String,
        /// Postgres: a PEM file of CA certificates to verify the server with.
        #[arg(long, env = "CALSYNC_DATABASE_CA_FILE")]
        database_ca_file: Option<std::path::PathBuf>,
    },
    /// Print the X-Goog-Channel-Token a watch channel must present, derived
    /// from its id and WEBHOOK_SECRET (for testing webhooks by hand).
    WebhookToken {
        /// The watch channel's id.
        channel_id: String,
        #[arg(long, env = "WEBHOOK_SECRET", hide_env_values = true)]
        webhook_secret: String,
    },
    /// The key ring sealing secrets at rest: re-seal under its newest key,
    /// or generate a key.
    #[command(subcommand)]
    Secrets(crate::secrets::SecretsCommand),
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
}

pub async fn run(command: Command) -> Result<(), CommandError> {
    match command {
        Command::Migrate {
            database_url,
            env,
            database_ca_file,
        } => {
            let url = DatabaseUrl::parse(database_url.as_deref())?;
            let options = calsync::settings::store_options(env == "production", database_ca_file);
            let applied = calsync_store::migrate_with_options(&url, &options).await?;
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
        Command::Sync {
            calendar,
            full,
            settings,
        } => sync(&calendar, full, *settings).await,
        Command::Cleanup { settings } => cleanup(*settings).await,
        Command::Secrets(command) => crate::secrets::run(command).await,
        Command::Emulator {
            bind,
            service_account_public_key,
        } => run_emulator(&bind, service_account_public_key.as_deref()).await,
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

fn quiet_logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

/// The service graph over the configured store and Google, for a one-off
/// command: the emulator, if started, is stopped by the caller.
async fn one_off_services(
    settings: &calsync::settings::Settings,
) -> Result<
    (
        calsync_domain::services::Services,
        Option<calsync_emulator::RunningEmulator>,
    ),
    CommandError,
> {
    use std::sync::Arc;
    let store = calsync_store::connect(&settings.database, &settings.store_options).await?;
    let (google, emulator) =
        calsync::server::connect_google(settings, store.clone(), None, &quiet_logger()).await?;
    let webhook_url = format!(
        "{}/webhooks/calendar",
        settings.webhook_base_url.as_deref().unwrap_or_default()
    );
    let services = calsync_domain::services::Services::new(
        store,
        google,
        Arc::new(calsync_domain::ports::SystemClock),
        settings.services_config(webhook_url, Arc::new(calsync_worker::TokioTimer)),
    );
    Ok((services, emulator))
}

async fn sync(
    calendar: &str,
    full: bool,
    args: calsync::settings::ServeArgs,
) -> Result<(), CommandError> {
    use calsync_domain::services::SyncMode;
    use std::io::IsTerminal;
    use std::sync::Arc;
    let calendar = calsync_domain::ids::CalendarId::new(calendar)?;
    let settings = args.settings()?;
    let (services, emulator) = one_off_services(&settings).await?;
    let mut service = services.sync;
    let on_terminal = std::io::stderr().is_terminal();
    if on_terminal {
        service = service.with_progress(Arc::new(|report| {
            let o = &report.outcome;
            eprint!(
                "\r{} sync: {} page(s), {} inserted, {} updated, {} cancelled, {} unchanged",
                if report.full { "full" } else { "incremental" },
                report.pages,
                o.inserted,
                o.updated,
                o.cancelled + o.swept,
                o.unchanged
            );
        }));
    }
    let mode = if full { SyncMode::Full } else { SyncMode::Auto };
    let owner = format!("cli-{}", std::process::id());
    let result = service.sync_now(&calendar, mode, &owner).await;
    if on_terminal {
        eprintln!();
    }
    if let Some(emulator) = emulator {
        emulator.stop().await;
    }
    match result? {
        Some(report) => {
            println!("{}", serde_json::to_string(&report).unwrap_or_default());
            Ok(())
        }
        None => {
            Err(format!("{calendar} is being synced by another worker; try again shortly").into())
        }
    }
}

/// Needs no Google: only the store is opened.
async fn cleanup(args: calsync::settings::ServeArgs) -> Result<(), CommandError> {
    use calsync_domain::services::CleanupService;
    use std::sync::Arc;
    let settings = args.settings()?;
    let store = calsync_store::connect(&settings.database, &settings.store_options).await?;
    let clock: Arc<dyn calsync_domain::ports::Clock> = Arc::new(calsync_domain::ports::SystemClock);
    let report = CleanupService::new(store.clone(), clock, settings.retention_days)
        .with_drive_notifications(store.clone())
        .with_change_feed(store.clone(), store, settings.changes_retention_days)
        .run()
        .await?;
    println!("{}", serde_json::to_string(&report).unwrap_or_default());
    Ok(())
}
