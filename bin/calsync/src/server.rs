//! The composition root: builds the adapters from [`Settings`], hands them
//! to the domain services and the HTTP layer, and starts the workers.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpServer, web};
use calsync_delivery::{HttpWebhookSender, SenderPolicy};
use calsync_domain::grant::GrantId;
use calsync_domain::ports::{CalendarProvider, Clock, GrantTokenSource, Store, SystemClock};
use calsync_domain::services::{
    ChannelService, GrantAdapters, GrantTokens, Services, WebhookAdapters,
};
use calsync_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use calsync_google::{Credentials, GoogleCalendar, GoogleConfig};
use calsync_google::{GoogleOAuth, OAuthClientConfig};
use calsync_http::AppState;
use calsync_resilience::{Metrics, RateLimiter};
use calsync_worker::{TokioTimer, Wakeups, Workers};
use slog::{info, warn};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::settings::{GoogleTarget, Settings};

/// The grant token source, bound once the OAuth client exists; until then
/// (or without one) no calendar can act through a grant.
#[derive(Default)]
struct LateGrantTokens(std::sync::OnceLock<GrantTokens>);

impl LateGrantTokens {
    fn bind(&self, tokens: GrantTokens) {
        let _ = self.0.set(tokens);
    }
}

#[async_trait::async_trait]
impl GrantTokenSource for LateGrantTokens {
    async fn access_token(&self, grant: &GrantId, refresh: bool) -> calsync_domain::Result<String> {
        match self.0.get() {
            Some(tokens) => tokens.access_token(grant, refresh).await,
            None => Err(calsync_domain::Error::provider(
                calsync_domain::ProviderErrorKind::ReconnectRequired,
                format!(
                    "grant {grant}: connecting accounts is not configured (CALSYNC_GOOGLE_OAUTH_CLIENT_ID)"
                ),
            )),
        }
    }
}

/// A running server and everything it started.
pub struct Running {
    pub address: SocketAddr,
    /// The store, for embedding tests to look at.
    pub store: Arc<dyn Store>,
    /// The in-process emulator, when running without Google credentials.
    pub emulator: Option<RunningEmulator>,
    /// Watch-channel operations, for embedders and tools.
    pub channels: ChannelService,
    /// The managed calendars, for embedders and tools.
    pub calendars: calsync_domain::services::CalendarService,
    /// Connected accounts, when grants are on.
    pub grants: Option<calsync_domain::services::GrantService>,
    http: actix_web::dev::ServerHandle,
    server: JoinHandle<std::io::Result<()>>,
    shutdown: watch::Sender<bool>,
    workers: Vec<JoinHandle<()>>,
    logger: slog::Logger,
}

impl Running {
    /// Stops taking requests, lets in-flight requests and the current sync
    /// or job finish (bounded), then stops the emulator.
    pub async fn stop(self) {
        info!(self.logger, "shutting down"; "action" => "shutdown", "status" => "started");
        self.http.stop(true).await;
        let _ = self.server.await;
        let _ = self.shutdown.send(true);
        for worker in self.workers {
            if tokio::time::timeout(Duration::from_secs(30), worker)
                .await
                .is_err()
            {
                warn!(self.logger, "a worker did not stop in time"; "action" => "shutdown", "status" => "timeout");
            }
        }
        if let Some(emulator) = self.emulator {
            emulator.stop().await;
        }
        info!(self.logger, "stopped"; "action" => "shutdown", "status" => "success");
    }
}

/// The Google adapter the settings ask for, starting the built-in emulator
/// when there are no credentials.
pub async fn connect_google(
    settings: &Settings,
    calendars: Arc<dyn calsync_domain::ports::CalendarStore>,
    metrics: Option<Arc<Metrics>>,
    logger: &slog::Logger,
) -> Result<(Arc<dyn CalendarProvider>, Option<RunningEmulator>), String> {
    connect_google_with(settings, calendars, None, metrics, logger).await
}

/// [`connect_google`], acting for calendars managed through connected
/// accounts with `grant_tokens`.
async fn connect_google_with(
    settings: &Settings,
    calendars: Arc<dyn calsync_domain::ports::CalendarStore>,
    grant_tokens: Option<Arc<dyn GrantTokenSource>>,
    metrics: Option<Arc<Metrics>>,
    logger: &slog::Logger,
) -> Result<(Arc<dyn CalendarProvider>, Option<RunningEmulator>), String> {
    let (config, emulator) = match &settings.google {
        GoogleTarget::Emulator => {
            let emulator = Emulator::new(EmulatorConfig::default())?
                .start("127.0.0.1:0")
                .await
                .map_err(|e| format!("cannot start the built-in emulator: {e}"))?;
            warn!(logger, "NO GOOGLE CREDENTIALS: using the built-in Google Calendar emulator, not Google";
                "action" => "startup", "status" => "emulator", "emulator_url" => emulator.base_url.clone());
            let mut config =
                GoogleConfig::new(Credentials::AccessToken("calsync-development".into()));
            config.api_base_url = emulator.calendar_api_url();
            (config, Some(emulator))
        }
        GoogleTarget::ExternalEmulator { api_base_url } => {
            warn!(logger, "NO GOOGLE CREDENTIALS: using a separately running Google Calendar emulator, not Google";
                "action" => "startup", "status" => "emulator", "emulator_url" => api_base_url.clone());
            let mut config =
                GoogleConfig::new(Credentials::AccessToken("calsync-development".into()));
            config.api_base_url = api_base_url.clone();
            (config, None)
        }
        GoogleTarget::ServiceAccount {
            key_json,
            subject,
            api_base_url,
        } => {
            let mut config = GoogleConfig::new(Credentials::ServiceAccount {
                key_json: key_json.clone(),
                subject: subject.clone(),
            });
            config.api_base_url = api_base_url.clone();
            (config, None)
        }
    };
    let config = GoogleConfig {
        send_updates: settings.send_updates,
        rate_limits: settings.google_rate_limits,
        logger: logger.clone(),
        metrics,
        calendars: Some(calendars),
        grant_tokens,
        ..config
    };
    let adapter = GoogleCalendar::new(config)
        .await
        .map_err(|e| e.to_string())?;
    Ok((Arc::new(adapter), emulator))
}

/// Starts the server: store (migrated), Google or the emulator, the
/// service graph, routes, workers.
pub async fn start(settings: Settings, logger: slog::Logger) -> Result<Running, String> {
    let listener = TcpListener::bind(settings.bind)
        .map_err(|e| format!("cannot listen on {}: {e}", settings.bind))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    info!(logger, "starting calsync";
        "action" => "startup", "status" => "starting", "mode" => if settings.production { "production" } else { "development" },
        "bind" => address.to_string(), "database" => settings.database.redacted());
    let store = calsync_store::connect(&settings.database, &settings.store_options)
        .await
        .map_err(|e| e.to_string())?;
    let metrics = Arc::new(Metrics::new());
    let owner = format!("{}-{}", address, uuid::Uuid::new_v4().simple());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // The token source needs the OAuth client, known once the Google
    // adapter (with the built-in emulator, its OAuth server) is: bound late.
    let grant_tokens = Arc::new(LateGrantTokens::default());
    let (provider, emulator) = connect_google_with(
        &settings,
        store.clone(),
        Some(grant_tokens.clone()),
        Some(metrics.clone()),
        &logger,
    )
    .await?;
    let webhook_base = settings
        .webhook_base_url
        .clone()
        .unwrap_or_else(|| format!("http://{address}"));
    let webhook_url = format!("{webhook_base}/webhooks/calendar");
    let services = Services::new(
        store.clone(),
        provider.clone(),
        clock.clone(),
        settings.services_config(webhook_url.clone(), Arc::new(TokioTimer)),
    )
    .with_webhooks(webhook_adapters(&settings, &logger)?);
    let public_base = settings
        .public_url
        .clone()
        .or_else(|| settings.webhook_base_url.clone())
        .unwrap_or_else(|| format!("http://{address}"));
    let services = match grant_adapters(&settings, emulator.as_ref(), &public_base)? {
        Some(adapters) => {
            grant_tokens.bind(GrantTokens::new(
                store.clone(),
                adapters.oauth.clone(),
                adapters.keeper.clone(),
                clock.clone(),
                Arc::new(TokioTimer),
                owner.clone(),
            ));
            services.with_grants(adapters)
        }
        None => services,
    };
    let wakeups = Wakeups::default();
    let (channel_stops, stop_queue) = tokio::sync::mpsc::unbounded_channel();
    let state = web::Data::new(
        AppState::builder(&services)
            .api_tokens(settings.api_tokens.clone())
            .default_calendar(settings.default_calendar.clone())
            .webhook_limiter(RateLimiter::per_source(settings.webhook_rate_per_minute))
            .trusted_proxies(settings.trusted_proxies.clone())
            .channel_stops(channel_stops)
            .wakeups(wakeups.sync.clone(), wakeups.outbox.clone())
            .write_wait(settings.write_wait)
            .metrics(metrics.clone())
            .logger(logger.clone())
            .grant_return_hosts(settings.grant_return_hosts.clone())
            .build(),
    );
    warn_if_exposed(&settings, address, &logger);

    let (shutdown, shutdown_rx) = watch::channel(false);
    let workers = Workers {
        services: services.clone(),
        provider,
        ticks: store.clone(),
        clock,
        wakeups,
        channel_stops: stop_queue,
        owner,
        config: settings.worker_config(),
        metrics,
        logger: logger.clone(),
        webhook_limiter: Some(state.webhook_limiter.clone()),
    }
    .spawn(shutdown_rx);

    let server = HttpServer::new(move || {
        App::new()
            .configure(calsync_http::configure(state.clone()))
            .default_service(web::to(calsync_http::no_route))
    })
    .disable_signals()
    .shutdown_timeout(30)
    .listen(listener)
    .map_err(|e| e.to_string())?
    .run();
    let http = server.handle();
    let server = tokio::spawn(server);
    announce(&settings, emulator.as_ref(), address, &webhook_url, &logger);
    Ok(Running {
        address,
        store,
        emulator,
        channels: services.channels,
        calendars: services.calendars,
        grants: services.grants,
        http,
        server,
        shutdown,
        workers,
        logger,
    })
}

/// What delivers the change feed to the application's webhooks: the
/// SSRF-guarded sender (plain http to loopback receivers in development
/// only), the key ring sealing signing secrets, and the change JSON.
fn webhook_adapters(settings: &Settings, logger: &slog::Logger) -> Result<WebhookAdapters, String> {
    let sender = HttpWebhookSender::new(SenderPolicy {
        allow_plain_http_loopback: !settings.production,
        allowed_hosts: settings.webhook_allowed_hosts.clone(),
    })
    .map_err(|e| format!("cannot build the webhook sender: {e}"))?;
    if settings.development_secrets_key {
        warn!(logger, "NO CALSYNC_SECRETS_KEY: webhook signing secrets are sealed with the PUBLIC development key, so anyone with the database can read them; set CALSYNC_SECRETS_KEY (or CALSYNC_SECRETS_KEY_FILE) before real use";
            "action" => "startup", "status" => "insecure");
    }
    Ok(WebhookAdapters {
        sender: Arc::new(sender),
        keeper: settings.secret_keeper.clone(),
        renderer: Arc::new(calsync_http::ChangeJson),
    })
}

/// The OAuth client users connect their accounts through: the configured
/// client at Google (or at the emulator calsync talks to), or the
/// emulator's own client in development; `None` (grants off) with real
/// Google and no client configured.
fn grant_adapters(
    settings: &Settings,
    emulator: Option<&RunningEmulator>,
    public_base: &str,
) -> Result<Option<GrantAdapters>, String> {
    let redirect_uri = format!("{public_base}/calendar/grants/google/callback");
    let emulator_base = match &settings.google {
        GoogleTarget::Emulator => emulator.map(|e| e.base_url.clone()),
        GoogleTarget::ExternalEmulator { api_base_url } => Some(emulator_root(api_base_url)),
        GoogleTarget::ServiceAccount { api_base_url, .. } => (api_base_url
            != calsync_google::GOOGLE_API_BASE_URL)
            .then(|| emulator_root(api_base_url)),
    };
    let (client_id, client_secret) = match (&settings.google_oauth, &emulator_base) {
        (Some(client), _) => (client.client_id.clone(), client.client_secret.clone()),
        (None, Some(_)) => (
            calsync_emulator::DEFAULT_CLIENT_ID.to_owned(),
            calsync_emulator::DEFAULT_CLIENT_SECRET.to_owned(),
        ),
        (None, None) => return Ok(None),
    };
    let config = match &emulator_base {
        Some(base) => OAuthClientConfig::emulator(base, client_id, client_secret, redirect_uri),
        None => OAuthClientConfig::google(client_id, client_secret, redirect_uri),
    };
    let oauth = GoogleOAuth::new(config).map_err(|e| format!("the OAuth client: {e}"))?;
    Ok(Some(GrantAdapters {
        oauth: Arc::new(oauth),
        keeper: settings.secret_keeper.clone(),
    }))
}

/// The emulator's root from its Calendar API root (`.../calendar/v3/`).
fn emulator_root(api_base_url: &str) -> String {
    api_base_url
        .trim_end_matches('/')
        .trim_end_matches("/calendar/v3")
        .to_owned()
}

fn warn_if_exposed(settings: &Settings, address: SocketAddr, logger: &slog::Logger) {
    if !settings.production && !address.ip().is_loopback() {
        warn!(logger, "DEVELOPMENT MODE ON A NON-LOOPBACK ADDRESS: generated secrets, the emulator and relaxed checks are reachable from the network; set CALSYNC_ENV=production for a real deployment";
            "action" => "startup", "status" => "insecure", "bind" => address.to_string());
    }
}

/// Tells a newcomer where things are: the emulator playing Google and a
/// generated token go to stderr (stdout carries the JSON log, and the
/// token is never logged); the log says the server is ready.
fn announce(
    settings: &Settings,
    emulator: Option<&RunningEmulator>,
    address: SocketAddr,
    webhook_url: &str,
    logger: &slog::Logger,
) {
    if let Some(emulator) = emulator {
        eprintln!(
            "calsync development: Google Calendar emulator at {} (any bearer token)",
            emulator.calendar_api_url()
        );
    }
    if let Some(token) = &settings.generated_api_token {
        eprintln!(
            "calsync development API token (set CALSYNC_API_TOKENS to choose your own): {token}"
        );
    }
    info!(logger, "calsync is listening";
        "action" => "startup", "status" => "ready", "url" => format!("http://{address}"),
        "webhook_url" => webhook_url.to_owned());
}
