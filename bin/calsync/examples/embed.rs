//! Embedding calsync in another service, without `calsync serve`:
//!
//! 1. the crates alone: a store, the Google adapter (pointed at the built-in
//!    emulator here) and the domain's service graph, creating an event and
//!    pushing it to Google with no HTTP server at all;
//! 2. calsync's routes mounted in the host's own actix `App`, beside the
//!    host's routes, with the outbox worker running in the background.
//!
//! Run it with `cargo run -p calsync --example embed`; it exits by itself
//! after calling its own routes once. See docs/EMBEDDING.md.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use calsync_domain::event::{EventTime, NewEvent, NewEventFields};
use calsync_domain::ids::{CalendarId, EntityRef};
use calsync_domain::ports::{Clock, SystemClock};
use calsync_domain::services::{Services, ServicesConfig, WriteVerdict};
use calsync_domain::webhook::WebhookSecret;
use calsync_emulator::{Emulator, EmulatorConfig};
use calsync_google::{Credentials, GoogleCalendar, GoogleConfig};
use calsync_http::{ApiTokens, AppState};
use calsync_resilience::Metrics;
use calsync_store::{DatabaseUrl, StoreOptions};
use tokio::sync::{Notify, watch};

type Failure = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let logger = slog::Logger::root(slog::Discard, slog::o!());

    // Google: here the emulator; in production a service account key with
    // `Credentials::ServiceAccount` and the default `api_base_url`.
    let emulator = Emulator::new(EmulatorConfig::default())?
        .start("127.0.0.1:0")
        .await?;
    let mut google = GoogleConfig::new(Credentials::AccessToken("example".into()));
    google.api_base_url = emulator.calendar_api_url();
    let provider = Arc::new(GoogleCalendar::new(google).await?);

    // Storage: any DATABASE_URL calsync understands; migrations run on connect.
    let path = std::env::temp_dir().join(format!("calsync-embed-{}.db", std::process::id()));
    let url = DatabaseUrl::parse(Some(&format!("sqlite://{}", path.display())))?;
    let store = calsync_store::connect(&url, &StoreOptions::default()).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);

    // The service graph: every use case over that store, Google and clock.
    // Channels point at this host's webhook route; tokio's timer renews
    // leases while work runs and times the wait for a write's verdict.
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    let secret = WebhookSecret::new("example-webhook-secret-0123")?;
    let services = Services::new(
        store.clone(),
        provider.clone(),
        clock,
        ServicesConfig::new(secret, format!("http://{address}/webhooks/calendar")).with_heartbeat(
            Duration::from_secs(15),
            Arc::new(calsync_worker::TokioTimer),
        ),
    );

    // 1. The crates alone: write an event and push it, no server involved.
    let events = services.events.clone();
    let calendar = CalendarId::new("primary")?;
    let start = chrono::Utc::now() + chrono::Duration::days(1);
    let new = NewEvent::new(
        calendar.clone(),
        EntityRef::new("deal", "42")?,
        EventTime::at(start, None),
        EventTime::at(start + chrono::Duration::hours(1), None),
        NewEventFields {
            summary: Some("Kick-off".into()),
            ..NewEventFields::default()
        },
    )?;
    let (event, _) = events.create(new).await?;
    let report = events.drain_outbox("embedded", 10).await?;
    println!(
        "pushed {} event(s); Google id {}",
        report.pushed, event.google_event_id
    );
    // Google's verdict on the write (here already in: the push ran above).
    let verdict = events.verdict(&event, Duration::from_secs(5)).await?;
    println!("verdict: {}", verdict_name(&verdict));

    // 2. The routes in the host's own app; behind a proxy, add
    // `.trusted_proxies(..)` so its X-Forwarded-For names the client.
    let outbox_wakeup = Arc::new(Notify::new());
    let metrics = Arc::new(Metrics::new());
    let state = web::Data::new(
        AppState::builder(&services)
            .api_tokens(ApiTokens::parse("example-api-token-0123456789")?)
            .default_calendar(Some(calendar))
            .wakeups(Arc::new(Notify::new()), outbox_wakeup.clone())
            .metrics(metrics.clone())
            .logger(logger.clone())
            .build(),
    );
    let limiter = state.webhook_limiter.clone();
    let server = HttpServer::new(move || {
        App::new()
            .route(
                "/",
                web::get().to(|| async { HttpResponse::Ok().body("the host app") }),
            )
            .configure(calsync_http::configure(state.clone()))
    })
    .listen(listener)?
    .run();
    let handle = server.handle();
    let serving = tokio::spawn(server);
    let (shutdown, shutdown_rx) = watch::channel(false);
    let outbox = calsync_worker::spawn_outbox_worker(
        events,
        calsync_worker::Queue {
            owner: "embedded".into(),
            wakeup: outbox_wakeup,
            poll: Duration::from_secs(1),
            metrics,
            logger,
        },
        shutdown_rx.clone(),
    );
    // Workers one by one (not `Workers { .. }.spawn`): the webhook
    // limiter's pruning is then ours to run.
    let pruning = calsync_worker::spawn_periodic(
        calsync_worker::IDLE_KEY_PRUNING,
        move || limiter.forget_idle_keys(),
        shutdown_rx,
    );

    println!("calsync's routes are mounted at http://{address} (try /health/calendar)");
    let live = probe(&address.to_string(), "/health/live").await?;
    println!("GET /health/live -> {live}");

    let _ = shutdown.send(true);
    handle.stop(true).await;
    let _ = serving.await;
    let _ = outbox.await;
    let _ = pruning.await;
    emulator.stop().await;
    let _ = std::fs::remove_file(&path);
    Ok(())
}

fn verdict_name(verdict: &WriteVerdict) -> &'static str {
    match verdict {
        WriteVerdict::Applied(_) => "applied",
        WriteVerdict::DeletedAtGoogle(_) => "deleted at Google",
        WriteVerdict::Refused { .. } => "refused",
        WriteVerdict::Pending { .. } => "pending",
    }
}

/// A minimal HTTP/1.0 GET, so the example needs no client library.
async fn probe(address: &str, path: &str) -> Result<String, Failure> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes())
        .await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    Ok(answer.lines().next().unwrap_or_default().to_owned())
}
