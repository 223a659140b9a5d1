use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use calsync::server::Running;
use calsync::settings::ServeArgs;
use clap::Parser;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

pub const TOKEN: &str = "e2e-api-token-0123456789";
/// A second API client's token.
pub const OTHER_TOKEN: &str = "e2e-other-client-token-0123456789";
const TOKENS: &str = "e2e-api-token-0123456789,e2e-other-client-token-0123456789";
pub const SECRET: &str = "e2e-webhook-secret-0123456789";

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    serve: ServeArgs,
}

/// Files holding the test API tokens and webhook secret, written once.
pub fn secret_files() -> (&'static str, &'static str) {
    static FILES: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    let (tokens, secret) = FILES.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("calsync-e2e-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tokens = dir.join("api-tokens");
        let secret = dir.join("webhook-secret");
        std::fs::write(&tokens, format!("{TOKENS}\n")).unwrap();
        std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
        (
            tokens.to_string_lossy().into_owned(),
            secret.to_string_lossy().into_owned(),
        )
    });
    (tokens.as_str(), secret.as_str())
}

/// A development-mode server (built-in emulator) on a free port with its
/// own SQLite file, or the given database URL.
pub async fn server(database_url: Option<&str>, extra: &[&str]) -> (Running, Option<TempDir>) {
    let (url, dir) = match database_url {
        Some(url) => (url.to_owned(), None),
        None => {
            let dir = TempDir::new();
            (
                format!("sqlite://{}", dir.0.join("calsync.db").display()),
                Some(dir),
            )
        }
    };
    // Secrets are never flags: they come from files, as in a container.
    let (tokens_file, secret_file) = secret_files();
    let mut argv = vec![
        "calsync",
        "--env",
        "development",
        "--bind",
        "127.0.0.1:0",
        "--database-url",
        &url,
        "--api-tokens-file",
        tokens_file,
        "--webhook-secret-file",
        secret_file,
        "--default-calendar",
        "primary",
    ];
    // A poll of its own in `extra` replaces the tests' short one.
    if !extra.contains(&"--sync-poll-secs") {
        argv.extend_from_slice(&["--sync-poll-secs", "1"]);
    }
    argv.extend_from_slice(extra);
    let settings = Args::try_parse_from(argv)
        .unwrap()
        .serve
        .settings()
        .unwrap();
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    (calsync::server::start(settings, logger).await.unwrap(), dir)
}

pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("calsync-e2e-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub async fn http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Value) {
    let (status, _, body) = http_with_headers(method, url, headers, body).await;
    (status, body)
}

/// [`http`], also returning the response headers.
pub async fn http_with_headers(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, hyper::HeaderMap, Value) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut request = hyper::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let request = request
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(payload)))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

pub fn bearer() -> (&'static str, String) {
    ("Authorization", format!("Bearer {TOKEN}"))
}

/// Polls `check` until it holds or `limit` passes.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the mirror holds `id` in `calendar` and `accept` approves it.
pub async fn mirrored(
    store: &std::sync::Arc<dyn calsync_domain::ports::Store>,
    calendar: &calsync_domain::ids::CalendarId,
    id: &calsync_domain::ids::EventId,
    accept: impl Fn(&calsync_domain::event::Event) -> bool,
) -> bool {
    let accept = &accept;
    eventually(Duration::from_secs(15), || async move {
        store
            .find_by_google_id(calendar, id)
            .await
            .unwrap()
            .is_some_and(|event| accept(&event))
    })
    .await
}

/// Waits until the calendar's last sync is done (nothing dirty, a token stored).
pub async fn settled(
    store: &std::sync::Arc<dyn calsync_domain::ports::Store>,
    calendar: &calsync_domain::ids::CalendarId,
) -> bool {
    eventually(Duration::from_secs(15), || async move {
        store
            .sync_state(calendar)
            .await
            .unwrap()
            .is_some_and(|s| !s.is_dirty() && s.sync_token.is_some())
    })
    .await
}

/// A fresh schema on the test Postgres; `None` (loudly) when there is no
/// server outside CI.
pub async fn postgres_schema() -> Option<String> {
    let base = std::env::var("CALSYNC_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut admin = match AsyncPgConnection::establish(&base).await {
        Ok(conn) => conn,
        Err(error) => {
            if std::env::var_os("CI").is_some() {
                panic!("Postgres at {base} is required in CI but unreachable: {error}");
            }
            eprintln!("SKIPPED: replica test: no Postgres at {base} ({error})");
            return None;
        }
    };
    let schema = format!("calsync_e2e_{}", uuid::Uuid::new_v4().simple());
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let separator = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{separator}options=-csearch_path%3D{schema}"))
}

pub async fn drop_schema(url: &str) {
    let (base, schema) = url.split_once("options=-csearch_path%3D").unwrap();
    let base = base.trim_end_matches(['?', '&']);
    if let Ok(mut admin) = AsyncPgConnection::establish(base).await {
        let _ = admin
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .await;
    }
}

/// The calendar every e2e server manages by default.
pub fn primary() -> calsync_domain::ids::CalendarId {
    calsync_domain::ids::CalendarId::new("primary").unwrap()
}

/// A JSON object literal as the map the emulator's `Change` takes.
pub fn object(value: Value) -> serde_json::Map<String, Value> {
    let Value::Object(map) = value else {
        panic!("an object: {value}")
    };
    map
}
