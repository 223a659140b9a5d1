//! `calsync serve` settings: each is a flag and an environment variable
//! (the original backend's names kept), validated into [`Settings`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use calsync_domain::ids::CalendarId;
use calsync_domain::webhook::WebhookSecret;
use calsync_google::SendUpdates;
use calsync_http::ApiTokens;
use calsync_store::DatabaseUrl;
use clap::Args;

#[cfg(test)]
mod tests;
mod validate;

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// `production` forbids the emulator and requires every setting.
    #[arg(long, env = "CALSYNC_ENV", default_value = "development")]
    pub env: String,
    #[arg(long, env = "CALSYNC_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// postgres://..., sqlite://PATH, or unset for ./calsync.db.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Postgres: a PEM file of CA certificates to verify the server with
    /// (the URL's `sslrootcert` wins). Without it, built-in public roots.
    #[arg(long, env = "CALSYNC_DATABASE_CA_FILE")]
    pub database_ca_file: Option<PathBuf>,
    /// A service account key: the JSON itself or a path to it. Unset (and
    /// not production): the built-in emulator is used. Secrets are never
    /// flags (a command line shows in `ps`): the environment, or a path.
    #[arg(skip = secret_from_env("GOOGLE_SERVICE_ACCOUNT_JSON"))]
    pub google_service_account_json: Option<String>,
    /// A file holding the service account key (the container convention).
    #[arg(long, env = "GOOGLE_SERVICE_ACCOUNT_JSON_FILE")]
    pub google_service_account_json_file: Option<PathBuf>,
    /// A user to impersonate through domain-wide delegation.
    #[arg(long, env = "CALSYNC_GOOGLE_SUBJECT")]
    pub google_subject: Option<String>,
    #[arg(long, env = "CALSYNC_GOOGLE_API_BASE_URL", default_value = calsync_google::GOOGLE_API_BASE_URL)]
    pub google_api_base_url: String,
    /// A separately running `calsync emulator` (e.g. `http://127.0.0.1:8085`),
    /// used instead of the built-in one. Development only, loopback only.
    #[arg(long, env = "CALSYNC_EMULATOR_URL")]
    pub emulator_url: Option<String>,
    /// all | externalOnly | none
    #[arg(long, env = "CALSYNC_SEND_UPDATES", default_value = "none")]
    pub send_updates: String,
    /// The public base URL Google posts notifications to (https in production).
    #[arg(long, env = "WEBHOOK_BASE_URL")]
    pub webhook_base_url: Option<String>,
    #[arg(skip = secret_from_env("WEBHOOK_SECRET"))]
    pub webhook_secret: Option<String>,
    /// A file holding `WEBHOOK_SECRET`.
    #[arg(long, env = "WEBHOOK_SECRET_FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    /// Comma-separated bearer tokens for the management API.
    #[arg(skip = secret_from_env("CALSYNC_API_TOKENS"))]
    pub api_tokens: Option<String>,
    /// A file holding `CALSYNC_API_TOKENS` (comma- or line-separated).
    #[arg(long, env = "CALSYNC_API_TOKENS_FILE")]
    pub api_tokens_file: Option<PathBuf>,
    /// Proxies (addresses or CIDR ranges, comma-separated) whose
    /// `X-Forwarded-For` names the client; nobody else's is believed.
    #[arg(long, env = "CALSYNC_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
    /// The calendar used when a request names none.
    #[arg(long, env = "CALSYNC_DEFAULT_CALENDAR")]
    pub default_calendar: Option<String>,
    #[arg(long, env = "CALENDAR_EVENT_RETENTION_DAYS", default_value_t = calsync_domain::services::DEFAULT_RETENTION_DAYS)]
    pub retention_days: u32,
    /// Days a change stays in the change feed (and a webhook delivery
    /// attempt in its log), 1 to 3650; an older cursor answers 410.
    #[arg(long, env = "CALSYNC_CHANGES_RETENTION_DAYS", default_value_t = calsync_domain::services::DEFAULT_CHANGES_RETENTION_DAYS)]
    pub changes_retention_days: u32,
    /// Hosts (names or IP addresses, comma-separated) webhooks may be
    /// delivered to whatever addresses they resolve to, e.g. a receiver
    /// on the private network; every other host must resolve to public
    /// addresses. They still need https.
    #[arg(long, env = "CALSYNC_WEBHOOK_ALLOWED_HOSTS", default_value = "")]
    pub webhook_allowed_hosts: String,
    /// The key ring that seals webhook signing secrets at rest:
    /// `<key id>:<base64 of 32 bytes>[,<key id>:<base64>...]`, the first
    /// key sealing and every key opening. Required in production.
    #[arg(skip = secret_from_env("CALSYNC_SECRETS_KEY"))]
    pub secrets_key: Option<String>,
    /// A file holding `CALSYNC_SECRETS_KEY` (comma- or line-separated keys).
    #[arg(long, env = "CALSYNC_SECRETS_KEY_FILE")]
    pub secrets_key_file: Option<PathBuf>,
    #[arg(long, env = "CALSYNC_CHANNEL_TTL_SECS", default_value_t = 7 * 24 * 3600)]
    pub channel_ttl_secs: u64,
    #[arg(long, env = "CALSYNC_RENEWAL_INTERVAL_SECS", default_value_t = 6 * 3600)]
    pub renewal_interval_secs: u64,
    #[arg(long, env = "CALSYNC_RENEWAL_WINDOW_SECS", default_value_t = 24 * 3600)]
    pub renewal_window_secs: u64,
    #[arg(long, env = "CALSYNC_SWEEP_INTERVAL_SECS", default_value_t = 15 * 60)]
    pub sweep_interval_secs: u64,
    /// The sweep is spread over its interval in this many slices.
    #[arg(long, env = "CALSYNC_SWEEP_SLICES", default_value_t = 15)]
    pub sweep_slices: u32,
    /// How often each connected account's calendar list is read, so a
    /// calendar removed in Google stops being managed (spread in 12 slices).
    #[arg(
        long,
        env = "CALSYNC_GRANT_CALENDARS_INTERVAL_SECS",
        default_value_t = 3600
    )]
    pub grant_calendars_interval_secs: u64,
    /// UTC hour of the daily retention cleanup.
    #[arg(long, env = "CALSYNC_CLEANUP_HOUR", default_value_t = 3)]
    pub cleanup_hour: u32,
    /// Google quota units per minute for the whole project (a patch costs 3).
    #[arg(long, env = "CALSYNC_GOOGLE_RATE_PER_MINUTE", default_value_t = 10_000)]
    pub google_rate_per_minute: u32,
    /// Google quota units per minute per principal (the user a call acts
    /// as, or the service account itself): Google's per-user default.
    #[arg(
        long,
        env = "CALSYNC_GOOGLE_PRINCIPAL_RATE_PER_MINUTE",
        default_value_t = 600
    )]
    pub google_principal_rate_per_minute: u32,
    /// How often the scheduler checks whether a job is due.
    #[arg(long, env = "CALSYNC_SCHEDULER_TICK_SECS", default_value_t = 30)]
    pub scheduler_tick_secs: u64,
    /// How often the sync worker looks for dirty calendars when no webhook woke it.
    #[arg(long, env = "CALSYNC_SYNC_POLL_SECS", default_value_t = 5)]
    pub sync_poll_secs: u64,
    /// Webhook requests per minute from one source.
    #[arg(long, env = "CALSYNC_WEBHOOK_RATE_PER_MINUTE", default_value_t = calsync_http::DEFAULT_WEBHOOK_RATE_PER_MINUTE.get())]
    pub webhook_rate_per_minute: u32,
    #[arg(long, env = "CALSYNC_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// First outbox retry delay after a transient Google failure; doubles per attempt.
    #[arg(long, env = "CALSYNC_OUTBOX_RETRY_BASE_MS", default_value_t = 5000)]
    pub outbox_retry_base_ms: u64,
    /// Longest delay between outbox retries.
    #[arg(long, env = "CALSYNC_OUTBOX_RETRY_CAP_SECS", default_value_t = 15 * 60)]
    pub outbox_retry_cap_secs: u64,
    /// Attempts after which a still-failing outbox row is dead-lettered (about 4 h at the defaults).
    #[arg(long, env = "CALSYNC_OUTBOX_MAX_ATTEMPTS", default_value_t = 20)]
    pub outbox_max_attempts: u32,
    /// How often a write to a calendar calsync may only read (403
    /// `requiredAccessLevel`) is tried again; the try is the probe.
    #[arg(long, env = "CALSYNC_READ_ONLY_PROBE_SECS", default_value_t = calsync_domain::outbox::DEFAULT_READ_ONLY_PROBE.as_secs())]
    pub read_only_probe_secs: u64,
    /// How often the outbox worker looks for due rows when no write woke it.
    #[arg(long, env = "CALSYNC_OUTBOX_POLL_MS", default_value_t = 1000)]
    pub outbox_poll_ms: u64,
    /// The longest `?wait=true` waits for Google's answer to a write.
    #[arg(long, env = "CALSYNC_WRITE_WAIT_SECS", default_value_t = 10)]
    pub write_wait_secs: u64,
    /// How long a sync or outbox lease lasts without a heartbeat: a crashed
    /// replica's calendars and pushes resume elsewhere within this time.
    #[arg(long, env = "CALSYNC_LEASE_TTL_SECS", default_value_t = 15)]
    pub lease_ttl_secs: u64,
    /// Events per `events.list` page (Google allows 1 to 2500). Two pages
    /// are in memory at once while a sync runs, so this bounds its memory.
    #[arg(long, env = "CALSYNC_SYNC_PAGE_SIZE", default_value_t = calsync_domain::services::DEFAULT_SYNC_PAGE_SIZE)]
    pub sync_page_size: u32,
    /// How long a calendar rests after an incremental sync that found
    /// nothing while notifications for it kept arriving (0: no rest).
    #[arg(long, env = "CALSYNC_SYNC_REST_MS", default_value_t = calsync_domain::services::DEFAULT_FOLLOW_UP_REST_MS)]
    pub sync_rest_ms: u64,
    /// Seconds after its last successful sync a calendar's free/busy is
    /// marked `stale` (60 to 86400; twice the sweep interval by default).
    #[arg(long, env = "CALSYNC_FREEBUSY_STALE_SECS", default_value_t = calsync_domain::services::DEFAULT_STALE_AFTER.as_secs())]
    pub freebusy_stale_secs: u64,
    /// Where calsync is reached from browsers: Google sends users back to
    /// `{CALSYNC_PUBLIC_URL}/calendar/grants/google/callback` after they
    /// connect an account. Default: `WEBHOOK_BASE_URL`, else the server's
    /// own address (development).
    #[arg(long, env = "CALSYNC_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The OAuth client (a "Web application" client in the Google Cloud
    /// console) users connect their accounts through. Unset: grants are
    /// off (with the built-in emulator, its own client is used).
    #[arg(long, env = "CALSYNC_GOOGLE_OAUTH_CLIENT_ID")]
    pub google_oauth_client_id: Option<String>,
    /// The OAuth client's secret (environment only).
    #[arg(skip = secret_from_env("CALSYNC_GOOGLE_OAUTH_CLIENT_SECRET"))]
    pub google_oauth_client_secret: Option<String>,
    /// A file holding `CALSYNC_GOOGLE_OAUTH_CLIENT_SECRET`.
    #[arg(long, env = "CALSYNC_GOOGLE_OAUTH_CLIENT_SECRET_FILE")]
    pub google_oauth_client_secret_file: Option<PathBuf>,
    /// Hosts (comma-separated) a grant's `returnTo` may send the browser
    /// to after connecting; empty: no `returnTo` is accepted.
    #[arg(long, env = "CALSYNC_GRANT_RETURN_HOSTS", default_value = "")]
    pub grant_return_hosts: String,
    /// Whether invitations the calendar has not answered (`needsAction`)
    /// or answered `tentative` block free/busy and availability.
    #[arg(long, env = "CALSYNC_FREEBUSY_INVITATIONS_BUSY", default_value_t = true, action = clap::ArgAction::Set)]
    pub freebusy_invitations_busy: bool,
}

/// Where Google is.
#[derive(Clone)]
pub enum GoogleTarget {
    /// The built-in emulator, started in-process (development only).
    Emulator,
    /// A separately running emulator at this Calendar API root (development only).
    ExternalEmulator { api_base_url: String },
    ServiceAccount {
        key_json: String,
        subject: Option<String>,
        api_base_url: String,
    },
}

/// Validated settings. Secrets generated in development are flagged so the
/// server can print them once.
#[derive(Clone)]
pub struct Settings {
    pub production: bool,
    pub bind: SocketAddr,
    pub database: DatabaseUrl,
    /// Pool and TLS settings: `verify-full` by default in production.
    pub store_options: calsync_store::StoreOptions,
    pub google: GoogleTarget,
    pub send_updates: SendUpdates,
    /// `None` in development: the server's own address.
    pub webhook_base_url: Option<String>,
    pub webhook_secret: WebhookSecret,
    pub api_tokens: ApiTokens,
    /// Set when the token was generated (development), to show it once.
    pub generated_api_token: Option<String>,
    pub default_calendar: Option<CalendarId>,
    pub retention_days: u32,
    pub changes_retention_days: u32,
    /// Hosts webhooks may reach whatever they resolve to.
    pub webhook_allowed_hosts: Vec<String>,
    /// Seals webhook signing secrets (`CALSYNC_SECRETS_KEY`).
    pub secret_keeper: std::sync::Arc<calsync_delivery::SealingKeeper>,
    /// True when no key was set and the public development key seals
    /// (development only; the server warns).
    pub development_secrets_key: bool,
    pub channel_ttl: Duration,
    pub schedule: calsync_worker::Schedule,
    pub sync_poll: Duration,
    pub webhook_rate_per_minute: std::num::NonZeroU32,
    pub google_rate_limits: calsync_resilience::RateLimitConfig,
    pub log_level: slog::Level,
    pub outbox_retry: calsync_domain::outbox::OutboxRetryPolicy,
    pub outbox_poll: Duration,
    pub write_wait: Duration,
    pub lease_ttl: Duration,
    pub trusted_proxies: calsync_http::TrustedProxies,
    pub sync_page_size: u32,
    pub sync_rest: Duration,
    pub freebusy: calsync_domain::services::FreeBusyConfig,
    /// `None` in development: the server's own address.
    pub public_url: Option<String>,
    /// The OAuth client for user grants; `None`: grants are off.
    pub google_oauth: Option<OAuthClient>,
    pub grant_return_hosts: Vec<String>,
}

/// The OAuth client users connect their Google accounts through.
#[derive(Clone)]
pub struct OAuthClient {
    pub client_id: String,
    pub client_secret: String,
}

impl Settings {
    /// What the service graph needs: `webhook_url` is where channels
    /// point; `timer` renews the leases.
    pub fn services_config(
        &self,
        webhook_url: String,
        timer: std::sync::Arc<dyn calsync_domain::ports::Timer>,
    ) -> calsync_domain::services::ServicesConfig {
        calsync_domain::services::ServicesConfig {
            channel_ttl: self.channel_ttl,
            retention_days: self.retention_days,
            changes_retention_days: self.changes_retention_days,
            outbox_retry: self.outbox_retry,
            sync_page_size: self.sync_page_size,
            sync_follow_up_rest: self.sync_rest,
            freebusy: self.freebusy,
            // A service account acting as itself cannot invite attendees;
            // calendars with their own subject can (checked per calendar).
            attendees_need_delegation: matches!(
                self.google,
                GoogleTarget::ServiceAccount { subject: None, .. }
            ),
            ..calsync_domain::services::ServicesConfig::new(
                self.webhook_secret.clone(),
                webhook_url,
            )
        }
        .with_heartbeat(self.lease_ttl, timer)
    }

    pub fn worker_config(&self) -> calsync_worker::WorkerConfig {
        calsync_worker::WorkerConfig {
            sync_poll: self.sync_poll,
            outbox_poll: self.outbox_poll,
            schedule: self.schedule,
        }
    }
}

/// Postgres connections verify the server in production unless the URL
/// says otherwise; development keeps libpq's `prefer`.
pub fn store_options(production: bool, ca_file: Option<PathBuf>) -> calsync_store::StoreOptions {
    calsync_store::StoreOptions {
        default_sslmode: if production {
            calsync_store::SslMode::VerifyFull
        } else {
            calsync_store::SslMode::Prefer
        },
        tls_ca_file: ca_file,
        ..calsync_store::StoreOptions::default()
    }
}

/// A secret's variable when set and not empty (clap's `skip` takes it from
/// the environment only, so it never shows in `--help`).
fn secret_from_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}
