//! From flags to [`Settings`]: secrets from their variable or file, every
//! value checked, errors naming the setting.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use calsync_delivery::SealingKeeper;
use calsync_domain::ids::CalendarId;
use calsync_domain::webhook::WebhookSecret;
use calsync_google::SendUpdates;
use calsync_http::ApiTokens;
use calsync_store::DatabaseUrl;

use super::{GoogleTarget, ServeArgs, Settings, store_options};

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

/// `CALSYNC_WEBHOOK_ALLOWED_HOSTS`: host names or IP addresses (an IPv6
/// one bracketed or not), without scheme, port or path.
fn allowed_hosts(list: &str) -> Result<Vec<String>, String> {
    let mut hosts = Vec::new();
    for host in list.split(',').map(str::trim).filter(|h| !h.is_empty()) {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let ipv6 = bare.parse::<std::net::Ipv6Addr>().is_ok();
        let plain = bare.len() <= 253
            && bare
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
        if !(ipv6 || plain) {
            return Err(format!(
                "CALSYNC_WEBHOOK_ALLOWED_HOSTS: '{host}' is not a host name or IP address (no scheme, port or path)"
            ));
        }
        hosts.push(host.to_owned());
    }
    Ok(hosts)
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
        self.secrets_key = secret(
            "CALSYNC_SECRETS_KEY",
            self.secrets_key.take(),
            self.secrets_key_file.take(),
        )?
        .map(|ring| ring.replace(['\r', '\n'], ","));
        self.google_oauth_client_secret = secret(
            "CALSYNC_GOOGLE_OAUTH_CLIENT_SECRET",
            self.google_oauth_client_secret.take(),
            self.google_oauth_client_secret_file.take(),
        )?;
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
        let (secret_keeper, development_secrets_key) = match self.secrets_key {
            // The keeper's errors name the key id at fault, never a key.
            Some(ring) => (
                SealingKeeper::from_config(&ring)
                    .map_err(|e| format!("CALSYNC_SECRETS_KEY: {e}"))?,
                false,
            ),
            None if production => {
                return Err("CALSYNC_SECRETS_KEY is required in production: it seals webhook signing secrets (k1:<base64 of 32 random bytes>, e.g. from `openssl rand -base64 32`)".into());
            }
            None => (SealingKeeper::development(), true),
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
            changes_retention_days: match self.changes_retention_days {
                days @ 1..=3650 => days,
                _ => return Err("CALSYNC_CHANGES_RETENTION_DAYS must be 1 to 3650".into()),
            },
            webhook_allowed_hosts: allowed_hosts(&self.webhook_allowed_hosts)?,
            secret_keeper: std::sync::Arc::new(secret_keeper),
            development_secrets_key,
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
                calendar_lists_every: positive(
                    "CALSYNC_GRANT_CALENDARS_INTERVAL_SECS",
                    self.grant_calendars_interval_secs,
                )?,
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
            public_url: match self.public_url {
                Some(url)
                    if url.starts_with("https://")
                        || (!production && url.starts_with("http://")) =>
                {
                    Some(url.trim_end_matches('/').to_owned())
                }
                Some(url) => {
                    return Err(format!(
                        "CALSYNC_PUBLIC_URL must be an https:// URL, not '{url}'"
                    ));
                }
                None => None,
            },
            google_oauth: match (
                self.google_oauth_client_id.filter(|id| !id.is_empty()),
                self.google_oauth_client_secret,
            ) {
                (Some(client_id), Some(client_secret)) => Some(crate::settings::OAuthClient {
                    client_id,
                    client_secret,
                }),
                (Some(_), None) => {
                    return Err("CALSYNC_GOOGLE_OAUTH_CLIENT_SECRET (or _FILE) is required with CALSYNC_GOOGLE_OAUTH_CLIENT_ID".into());
                }
                (None, Some(_)) => {
                    return Err("CALSYNC_GOOGLE_OAUTH_CLIENT_ID is required with CALSYNC_GOOGLE_OAUTH_CLIENT_SECRET".into());
                }
                (None, None) => None,
            },
            grant_return_hosts: allowed_hosts(&self.grant_return_hosts).map_err(|e| {
                e.replace(
                    "CALSYNC_WEBHOOK_ALLOWED_HOSTS",
                    "CALSYNC_GRANT_RETURN_HOSTS",
                )
            })?,
            freebusy: calsync_domain::services::FreeBusyConfig {
                rule: calsync_domain::freebusy::BusyRule {
                    invitations_busy: self.freebusy_invitations_busy,
                },
                stale_after: match self.freebusy_stale_secs {
                    secs @ 60..=86_400 => Duration::from_secs(secs),
                    _ => return Err("CALSYNC_FREEBUSY_STALE_SECS must be 60 to 86400".into()),
                },
            },
        })
    }
}
