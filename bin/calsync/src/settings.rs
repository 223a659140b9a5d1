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
            outbox_retry: self.outbox_retry,
            sync_page_size: self.sync_page_size,
            sync_follow_up_rest: self.sync_rest,
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

fn secret_from_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// A secret from its variable or its `_FILE` (not both): file contents lose
/// their trailing newline.
fn secret(
    name: &str,
    value: Option<String>,
    file: Option<PathBuf>,
) -> Result<Option<String>, String> {
    match (value, file) {
        (Some(_), Some(_)) => Err(format!("set {name} or {name}_FILE, not both")),
        (Some(value), None) => Ok(Some(value)),
        (None, Some(path)) => std::fs::read_to_string(&path)
            .map(|text| Some(text.trim_end_matches(['\r', '\n']).to_owned()))
            .map_err(|e| format!("{name}_FILE {}: {e}", path.display())),
        (None, None) => Ok(None),
    }
}

fn random_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn positive(name: &str, secs: u64) -> Result<Duration, String> {
    if secs == 0 {
        return Err(format!("{name} must be more than zero"));
    }
    Ok(Duration::from_secs(secs))
}

fn positive_ms(name: &str, ms: u64) -> Result<Duration, String> {
    if ms == 0 {
        return Err(format!("{name} must be more than zero"));
    }
    Ok(Duration::from_millis(ms))
}

/// The Calendar API root of a separately running emulator, which must be
/// on this machine: it accepts any token, so nothing real may go there.
fn emulator_api_url(url: &str) -> Result<String, String> {
    let trimmed = url.trim_end_matches('/');
    let host = trimmed
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .map(|authority| {
            authority
                .rsplit_once(':')
                .map_or(authority, |(host, _)| host)
        });
    match host {
        Some("127.0.0.1" | "localhost" | "[::1]") => Ok(format!("{trimmed}/calendar/v3/")),
        _ => Err(format!(
            "CALSYNC_EMULATOR_URL must be an http:// URL on this machine (127.0.0.1, localhost or [::1]), not '{url}'"
        )),
    }
}

impl ServeArgs {
    /// Validates everything at once; the error names the setting.
    pub fn settings(mut self) -> Result<Settings, String> {
        self.google_service_account_json = secret(
            "GOOGLE_SERVICE_ACCOUNT_JSON",
            self.google_service_account_json.take(),
            self.google_service_account_json_file.take(),
        )?;
        self.webhook_secret = secret(
            "WEBHOOK_SECRET",
            self.webhook_secret.take(),
            self.webhook_secret_file.take(),
        )?;
        self.api_tokens = secret(
            "CALSYNC_API_TOKENS",
            self.api_tokens.take(),
            self.api_tokens_file.take(),
        )?
        .map(|list| list.replace(['\r', '\n'], ","));
        let production = match self.env.as_str() {
            "production" => true,
            "development" => false,
            other => {
                return Err(format!(
                    "CALSYNC_ENV must be development or production, not '{other}'"
                ));
            }
        };
        let emulator_api = match &self.emulator_url {
            Some(_) if production => {
                return Err("CALSYNC_EMULATOR_URL is for development only".into());
            }
            Some(url) => Some(emulator_api_url(url)?),
            None => None,
        };
        // Real credentials mean a real Google: the same rules as production,
        // unless they are meant for an emulator on this machine.
        let strict =
            production || (self.google_service_account_json.is_some() && emulator_api.is_none());
        let bind: SocketAddr = self.bind.parse().map_err(|_| {
            format!(
                "CALSYNC_BIND must be an address such as 127.0.0.1:8080, not '{}'",
                self.bind
            )
        })?;
        let database =
            DatabaseUrl::parse(self.database_url.as_deref()).map_err(|e| e.to_string())?;
        let google = match self.google_service_account_json {
            Some(value) => {
                let credentials = calsync_google::Credentials::service_account_from(
                    &value,
                    self.google_subject.clone(),
                )
                .map_err(|e| format!("GOOGLE_SERVICE_ACCOUNT_JSON: {e}"))?;
                let calsync_google::Credentials::ServiceAccount { key_json, subject } = credentials
                else {
                    return Err("GOOGLE_SERVICE_ACCOUNT_JSON: not a service account key".into());
                };
                GoogleTarget::ServiceAccount {
                    key_json,
                    subject,
                    api_base_url: emulator_api.unwrap_or(self.google_api_base_url),
                }
            }
            None if production => {
                return Err("GOOGLE_SERVICE_ACCOUNT_JSON is required in production".into());
            }
            None => match emulator_api {
                Some(api_base_url) => GoogleTarget::ExternalEmulator { api_base_url },
                None => GoogleTarget::Emulator,
            },
        };
        let webhook_base_url = match self.webhook_base_url {
            Some(url) if url.starts_with("https://") || (!strict && url.starts_with("http://")) => {
                Some(url.trim_end_matches('/').to_owned())
            }
            Some(url) => {
                return Err(format!(
                    "WEBHOOK_BASE_URL must be an https:// URL, not '{url}'"
                ));
            }
            None if strict => {
                return Err("WEBHOOK_BASE_URL is required with real Google credentials".into());
            }
            None => None,
        };
        let webhook_secret = match self.webhook_secret {
            Some(secret) => WebhookSecret::new(secret).map_err(|e| e.to_string())?,
            None if strict => {
                return Err("WEBHOOK_SECRET is required with real Google credentials".into());
            }
            None => WebhookSecret::new(random_secret()).map_err(|e| e.to_string())?,
        };
        let (api_tokens, generated_api_token) = match self.api_tokens {
            Some(list) => (ApiTokens::parse(&list).map_err(|e| e.to_string())?, None),
            None if strict => return Err("CALSYNC_API_TOKENS is required in production".into()),
            None => {
                let token = random_secret();
                (
                    ApiTokens::parse(&token).map_err(|e| e.to_string())?,
                    Some(token),
                )
            }
        };
        let default_calendar = match self.default_calendar {
            Some(id) => {
                Some(CalendarId::new(id).map_err(|e| format!("CALSYNC_DEFAULT_CALENDAR: {e}"))?)
            }
            None if !strict => Some(CalendarId::new("primary").map_err(|e| e.to_string())?),
            None => None,
        };
        if self.cleanup_hour > 23 {
            return Err("CALSYNC_CLEANUP_HOUR must be 0 to 23".into());
        }
        if self.google_rate_per_minute == 0 || self.google_principal_rate_per_minute == 0 {
            return Err("CALSYNC_GOOGLE_RATE_PER_MINUTE and CALSYNC_GOOGLE_PRINCIPAL_RATE_PER_MINUTE must be more than zero".into());
        }
        Ok(Settings {
            production,
            bind,
            database,
            store_options: store_options(production, self.database_ca_file),
            google,
            send_updates: SendUpdates::parse(&self.send_updates)
                .map_err(|e| format!("CALSYNC_SEND_UPDATES: {e}"))?,
            webhook_base_url,
            webhook_secret,
            api_tokens,
            generated_api_token,
            default_calendar,
            retention_days: self.retention_days,
            channel_ttl: positive("CALSYNC_CHANNEL_TTL_SECS", self.channel_ttl_secs)?,
            schedule: calsync_worker::Schedule {
                renewal_every: positive(
                    "CALSYNC_RENEWAL_INTERVAL_SECS",
                    self.renewal_interval_secs,
                )?,
                renewal_window: positive("CALSYNC_RENEWAL_WINDOW_SECS", self.renewal_window_secs)?,
                sweep_every: positive("CALSYNC_SWEEP_INTERVAL_SECS", self.sweep_interval_secs)?,
                sweep_slices: match self.sweep_slices {
                    0 => return Err("CALSYNC_SWEEP_SLICES must be more than zero".into()),
                    n => n,
                },
                cleanup_hour: self.cleanup_hour,
                tick: positive("CALSYNC_SCHEDULER_TICK_SECS", self.scheduler_tick_secs)?,
            },
            sync_poll: positive("CALSYNC_SYNC_POLL_SECS", self.sync_poll_secs)?,
            webhook_rate_per_minute: std::num::NonZeroU32::new(self.webhook_rate_per_minute)
                .ok_or("CALSYNC_WEBHOOK_RATE_PER_MINUTE must be more than zero")?,
            google_rate_limits: calsync_resilience::RateLimitConfig {
                project_per_minute: self.google_rate_per_minute,
                per_key_per_minute: self.google_principal_rate_per_minute,
                ..calsync_resilience::RateLimitConfig::default()
            },
            log_level: calsync_resilience::logging::parse_level(&self.log_level)
                .map_err(|e| format!("CALSYNC_LOG_LEVEL: {e}"))?,
            outbox_retry: calsync_domain::outbox::OutboxRetryPolicy {
                base: positive_ms("CALSYNC_OUTBOX_RETRY_BASE_MS", self.outbox_retry_base_ms)?,
                cap: positive("CALSYNC_OUTBOX_RETRY_CAP_SECS", self.outbox_retry_cap_secs)?,
                max_attempts: match self.outbox_max_attempts {
                    0 => return Err("CALSYNC_OUTBOX_MAX_ATTEMPTS must be more than zero".into()),
                    n => n,
                },
                read_only_probe: match self.read_only_probe_secs {
                    secs @ 1..=86_400 => Duration::from_secs(secs),
                    _ => return Err("CALSYNC_READ_ONLY_PROBE_SECS must be 1 to 86400".into()),
                },
            },
            outbox_poll: positive_ms("CALSYNC_OUTBOX_POLL_MS", self.outbox_poll_ms)?,
            // Bounded: a wait ties up a request, and huge values overflow deadlines.
            write_wait: match self.write_wait_secs {
                secs @ 1..=300 => Duration::from_secs(secs),
                _ => return Err("CALSYNC_WRITE_WAIT_SECS must be 1 to 300".into()),
            },
            trusted_proxies: calsync_http::TrustedProxies::parse(&self.trusted_proxies)
                .map_err(|e| format!("CALSYNC_TRUSTED_PROXIES: {e}"))?,
            lease_ttl: match self.lease_ttl_secs {
                secs @ 3..=3600 => Duration::from_secs(secs),
                _ => return Err("CALSYNC_LEASE_TTL_SECS must be 3 to 3600".into()),
            },
            sync_page_size: match self.sync_page_size {
                size @ 1..=2500 => size,
                _ => return Err("CALSYNC_SYNC_PAGE_SIZE must be 1 to 2500 (Google's range)".into()),
            },
            // Bounded: a longer rest is a stale mirror, not a saving.
            sync_rest: match self.sync_rest_ms {
                ms @ 0..=60_000 => Duration::from_millis(ms),
                _ => return Err("CALSYNC_SYNC_REST_MS must be 0 to 60000".into()),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        serve: ServeArgs,
    }

    /// A file holding `content`, for the `*_FILE` settings.
    fn file(content: &str) -> String {
        let path = std::env::temp_dir().join(format!(
            "calsync-settings-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&path, content).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn settings(args: &[&str]) -> Result<Settings, String> {
        let mut argv = vec!["calsync"];
        argv.extend_from_slice(args);
        Args::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .serve
            .settings()
    }

    #[test]
    fn development_needs_nothing_and_generates_its_secrets() {
        let s = settings(&[]).unwrap();
        assert!(!s.production);
        assert!(matches!(s.google, GoogleTarget::Emulator));
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        let token = s.generated_api_token.expect("a generated token");
        assert!(s.api_tokens.accepts(&token));
        assert_eq!(s.retention_days, 180);
        assert_eq!(s.default_calendar.unwrap().as_str(), "primary");
    }

    #[test]
    fn production_names_each_missing_setting() {
        let key = file(r#"{"type":"service_account"}"#);
        let key = key.as_str();
        let secret = file("0123456789abcdef0\n");
        let tokens = file("token-0123456789abcdef\n");
        let error = settings(&["--env", "production"]).err().unwrap();
        assert!(error.contains("GOOGLE_SERVICE_ACCOUNT_JSON"), "{error}");
        let error = settings(&[
            "--env",
            "production",
            "--google-service-account-json-file",
            key,
        ])
        .err()
        .unwrap();
        assert!(error.contains("WEBHOOK_BASE_URL"), "{error}");
        let base = [
            "--env",
            "production",
            "--google-service-account-json-file",
            key,
            "--webhook-base-url",
        ];
        let error = settings(&[&base[..], &["http://calsync.example.com"]].concat())
            .err()
            .unwrap();
        assert!(error.contains("https"), "{error}");
        let error = settings(&[&base[..], &["https://calsync.example.com"]].concat())
            .err()
            .unwrap();
        assert!(error.contains("WEBHOOK_SECRET"), "{error}");
        let with_secret = [
            &base[..],
            &[
                "https://calsync.example.com",
                "--webhook-secret-file",
                &secret,
            ],
        ]
        .concat();
        let error = settings(&with_secret).err().unwrap();
        assert!(error.contains("CALSYNC_API_TOKENS"), "{error}");
        let complete = [&with_secret[..], &["--api-tokens-file", &tokens]].concat();
        let s = settings(&complete).unwrap();
        assert!(s.production && s.generated_api_token.is_none() && s.default_calendar.is_none());
    }

    #[test]
    fn secrets_are_never_flags() {
        for flag in [
            "--webhook-secret",
            "--api-tokens",
            "--google-service-account-json",
        ] {
            let error = settings(&[flag, "0123456789abcdef0123"]).err().unwrap();
            assert!(error.contains("unexpected argument"), "{flag}: {error}");
        }
        let tokens = file("first-token-0123456789\nsecond-token-0123456789\n");
        let s = settings(&["--api-tokens-file", &tokens]).unwrap();
        assert!(s.api_tokens.accepts("second-token-0123456789"));
        assert!(s.generated_api_token.is_none());
    }

    #[test]
    fn a_separate_emulator_is_development_only_and_local() {
        let s = settings(&["--emulator-url", "http://127.0.0.1:8085/"]).unwrap();
        assert!(
            matches!(&s.google, GoogleTarget::ExternalEmulator { api_base_url }
                if api_base_url == "http://127.0.0.1:8085/calendar/v3/")
        );
        // A service-account key for the emulator does not demand https webhooks.
        let key = file(r#"{"type":"service_account"}"#);
        let s = settings(&[
            "--emulator-url",
            "http://localhost:9000",
            "--google-service-account-json-file",
            &key,
            "--webhook-base-url",
            "http://127.0.0.1:8080",
        ])
        .unwrap();
        assert!(
            matches!(&s.google, GoogleTarget::ServiceAccount { api_base_url, .. }
                if api_base_url == "http://localhost:9000/calendar/v3/")
        );
        for bad in ["http://emulator.internal:8085", "https://127.0.0.1:8085"] {
            let error = settings(&["--emulator-url", bad]).err().unwrap();
            assert!(error.contains("CALSYNC_EMULATOR_URL"), "{error}");
        }
        let error = settings(&[
            "--env",
            "production",
            "--emulator-url",
            "http://127.0.0.1:1",
        ])
        .err()
        .unwrap();
        assert!(error.contains("CALSYNC_EMULATOR_URL"), "{error}");
        assert_eq!(settings(&[]).unwrap().lease_ttl, Duration::from_secs(15));
        assert_eq!(
            settings(&[]).unwrap().outbox_retry.read_only_probe,
            Duration::from_secs(300)
        );
        assert_eq!(
            settings(&["--read-only-probe-secs", "2"])
                .unwrap()
                .outbox_retry
                .read_only_probe,
            Duration::from_secs(2)
        );
        let error = settings(&["--lease-ttl-secs", "1"]).err().unwrap();
        assert!(error.contains("CALSYNC_LEASE_TTL_SECS"), "{error}");
    }

    #[test]
    fn every_environment_variable_is_documented() {
        let doc = include_str!("../../../docs/CALENDAR_ENV_VARS.md");
        let command = <Args as clap::CommandFactory>::command();
        let mut checked = 0;
        for arg in command.get_arguments() {
            if let Some(env) = arg.get_env() {
                let name = env.to_string_lossy();
                assert!(
                    doc.contains(&format!("| `{name}` |")),
                    "{name} is missing from docs/CALENDAR_ENV_VARS.md"
                );
                // A default the code has must be the one the table shows.
                if let [default] = arg.get_default_values()
                    && !default.is_empty()
                {
                    let default = default.to_string_lossy();
                    assert!(
                        doc.contains(&format!("| `{name}` | `{default}`")),
                        "docs/CALENDAR_ENV_VARS.md does not give {name}'s default `{default}`"
                    );
                }
                checked += 1;
            }
        }
        assert!(checked > 20, "only {checked} variables found");
    }

    #[test]
    fn bad_values_are_named() {
        let short = file("short");
        for (args, name) in [
            (vec!["--env", "staging"], "CALSYNC_ENV"),
            (vec!["--bind", "localhost"], "CALSYNC_BIND"),
            (vec!["--database-url", "mysql://x"], "DATABASE_URL"),
            (vec!["--cleanup-hour", "24"], "CALSYNC_CLEANUP_HOUR"),
            (vec!["--channel-ttl-secs", "0"], "CALSYNC_CHANNEL_TTL_SECS"),
            (vec!["--send-updates", "loud"], "CALSYNC_SEND_UPDATES"),
            (vec!["--log-level", "loud"], "CALSYNC_LOG_LEVEL"),
            (vec!["--webhook-secret-file", &short], "WEBHOOK_SECRET"),
            (
                vec!["--webhook-secret-file", "/no/such/file"],
                "WEBHOOK_SECRET_FILE",
            ),
            (
                vec!["--write-wait-secs", "100000000000"],
                "CALSYNC_WRITE_WAIT_SECS",
            ),
            (
                vec!["--trusted-proxies", "10.0.0.0/99"],
                "CALSYNC_TRUSTED_PROXIES",
            ),
            (
                vec!["--outbox-max-attempts", "0"],
                "CALSYNC_OUTBOX_MAX_ATTEMPTS",
            ),
            (
                vec!["--outbox-retry-base-ms", "0"],
                "CALSYNC_OUTBOX_RETRY_BASE_MS",
            ),
            (vec!["--sync-rest-ms", "60001"], "CALSYNC_SYNC_REST_MS"),
            (
                vec!["--read-only-probe-secs", "0"],
                "CALSYNC_READ_ONLY_PROBE_SECS",
            ),
        ] {
            let error = settings(&args)
                .err()
                .unwrap_or_else(|| panic!("{args:?} was accepted"));
            assert!(error.contains(name), "{args:?}: {error}");
        }
    }
}
