//! The flaky receiver: the application's end of calsync's webhooks, an
//! HTTP server on 127.0.0.1 in the battery's process. It checks every
//! delivery's Standard Webhooks signature with the subscription's secret
//! (<https://www.standardwebhooks.com/>: `v1,` and the base64
//! HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}`), keeps what
//! it received, and misbehaves on its seeded [`Plan`]: it answers 500 or
//! 503, answers only after calsync's 10 s attempt timeout, and goes away
//! for a while (listener and every connection closed, so connections are
//! refused, then opened again on the same port).

mod plan;

use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use calsync_domain::feed::signature::{self, DEFAULT_TOLERANCE_SECS};
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use super::actors::{Shared, lock};
use super::rng::Rng;
pub use plan::{Act, Plan};

/// The path deliveries are posted to.
const PATH: &str = "/hooks/calendar";
/// How long a delivery that arrives before the battery knows the
/// subscription's secret waits for it (the subscription's creation answer
/// can come after its first delivery).
const SECRET_WAIT: Duration = Duration::from_secs(10);

/// An outage cut shorter than this (by the end of the misbehaviour
/// window) is not worth having.
const MIN_OUTAGE: Duration = Duration::from_secs(3);

/// What became of one delivery the receiver read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Answered 200.
    Accepted,
    /// Answered this status on purpose.
    Refused(u16),
    /// Answered after calsync's timeout, on purpose.
    Stalled,
    /// The signature (or its headers) did not verify: answered 401.
    BadSignature(String),
}

/// One delivery as the receiver read it.
#[derive(Debug, Clone)]
pub struct Receipt {
    /// `webhook-id`: the change's cursor.
    pub id: String,
    pub at: DateTime<Utc>,
    pub verdict: Verdict,
    /// The body, kept for accepted deliveries.
    pub body: Option<Value>,
}

/// What the receiver counted.
#[derive(Debug, Clone, Default)]
pub struct ReceiverFigures {
    pub refusals: u32,
    pub stalls: u32,
    pub outages: u32,
    pub outage: Duration,
    /// The outage did not happen (and why).
    pub outage_skipped: Option<String>,
}

struct State {
    secret: OnceLock<String>,
    plan: Mutex<Plan>,
    receipts: Mutex<Vec<Receipt>>,
    figures: Mutex<ReceiverFigures>,
}

pub struct Receiver {
    pub port: u16,
    state: Arc<State>,
    serving: Mutex<Option<JoinHandle<()>>>,
}

impl Receiver {
    /// Listens on a free loopback port, with its schedule for a chaos
    /// phase of `chaos`.
    pub async fn start(chaos: Duration, rng: Rng) -> Result<Arc<Self>, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("the receiver cannot listen: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("the receiver's address: {e}"))?
            .port();
        let state = Arc::new(State {
            secret: OnceLock::new(),
            plan: Mutex::new(Plan::new(chaos, rng)),
            receipts: Mutex::new(Vec::new()),
            figures: Mutex::new(ReceiverFigures::default()),
        });
        let serving = tokio::spawn(serve(listener, state.clone()));
        Ok(Arc::new(Self {
            port,
            state,
            serving: Mutex::new(Some(serving)),
        }))
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}{PATH}", self.port)
    }

    /// The subscription's signing secret (`whsec_...`), once known.
    pub fn set_secret(&self, secret: String) {
        let _ = self.state.secret.set(secret);
    }

    /// The chaos phase begins: the schedule runs from now.
    pub fn begin(&self) {
        lock(&self.state.plan).begin(Instant::now());
    }

    pub fn outage_plan(&self) -> Option<(Duration, Duration)> {
        lock(&self.state.plan).outage
    }

    pub fn receipts(&self) -> Vec<Receipt> {
        lock(&self.state.receipts).clone()
    }

    pub fn figures(&self) -> ReceiverFigures {
        lock(&self.state.figures).clone()
    }

    /// Closes the listener and every connection: calsync's connections
    /// are refused (or reset, mid-request) until [`Self::reopen`].
    fn close(&self) {
        if let Some(serving) = lock(&self.serving).take() {
            // Dropping the accept loop drops its listener and its JoinSet,
            // which aborts every connection task.
            serving.abort();
        }
    }

    /// Listens again on the same port.
    async fn reopen(&self) -> Result<(), String> {
        let mut last = String::new();
        for _ in 0..50 {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(listener) => {
                    let serving = tokio::spawn(serve(listener, self.state.clone()));
                    *lock(&self.serving) = Some(serving);
                    return Ok(());
                }
                Err(error) => last = error.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!(
            "the receiver cannot listen on port {} again: {last}",
            self.port
        ))
    }

    /// Stops serving for good.
    pub fn stop(&self) {
        self.close();
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.close();
    }
}

/// calsync's count of failed attempts for the subscription (`None`: the
/// server did not answer, e.g. it was just killed).
async fn server_failures(shared: &Shared, webhook_id: &str) -> Option<u64> {
    let url = format!("{}/calendar/webhooks/{webhook_id}", shared.server);
    let auth = shared.auth();
    match shared
        .http
        .send("GET", &url, &[("authorization", auth.as_str())], None)
        .await
    {
        Ok(reply) if reply.status == 200 => reply.body["failures"].as_u64(),
        _ => None,
    }
}

/// The outage: from its scheduled time, as soon as calsync counts no
/// failure for the subscription (so at most two attempts fail in a row,
/// see [`Plan::may_go_down`]), the receiver goes away, then comes back on
/// the same port and accepts everything from then on. Runs during the
/// chaos phase; skipped when calsync keeps counting failures too long,
/// cut short to be over in time.
pub async fn outage(shared: Arc<Shared>, receiver: Arc<Receiver>, webhook_id: String) {
    let Some((start, length)) = receiver.outage_plan() else {
        lock(&receiver.state.figures).outage_skipped =
            Some("the chaos phase is too short for one".into());
        return;
    };
    let mut last_count = None;
    let length = loop {
        let (due, room) = {
            let plan = lock(&receiver.state.plan);
            let now = Instant::now();
            let due = plan.elapsed(now).is_some_and(|at| at >= start);
            (due, plan.outage_room(now))
        };
        let room = room.filter(|room| *room >= MIN_OUTAGE);
        if room.is_none() || shared.stopping() {
            lock(&receiver.state.figures).outage_skipped = Some(match last_count {
                Some(n) => format!("calsync counted failures (last {n}) until too late"),
                None => "calsync did not describe the subscription until too late".into(),
            });
            return;
        }
        if due && let Some(failures) = server_failures(&shared, &webhook_id).await {
            last_count = Some(failures);
            let mut plan = lock(&receiver.state.plan);
            if plan.may_go_down(Instant::now(), failures) {
                plan.go_down();
                break room.map_or(length, |room| length.min(room));
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    receiver.close();
    let began = Instant::now();
    shared.mark(format!(
        "receiver outage for {:.1} s (connections refused)",
        length.as_secs_f64()
    ));
    tokio::time::sleep(length).await;
    if let Err(error) = receiver.reopen().await {
        shared.fail(error);
    }
    let down = began.elapsed();
    shared.mark(format!("receiver back after {:.1} s", down.as_secs_f64()));
    let mut figures = lock(&receiver.state.figures);
    figures.outages += 1;
    figures.outage += down;
}

async fn serve(listener: TcpListener, state: Arc<State>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let state = state.clone();
                    connections.spawn(async move {
                        let service = service_fn(move |request| handle(state.clone(), request));
                        // A connection calsync dropped (its timeout) ends here.
                        let _ = http1::Builder::new()
                            .timer(TokioTimer::new())
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

fn answer(status: u16) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    Ok(response)
}

fn header(request: &Request<Incoming>, name: &str) -> String {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn secret(state: &State) -> Option<String> {
    let deadline = Instant::now() + SECRET_WAIT;
    loop {
        if let Some(secret) = state.secret.get() {
            return Some(secret.clone());
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Checks a delivery's signature with `secret`, as any receiver would.
pub fn check_signature(
    secret: &str,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
) -> Result<(), String> {
    if id.is_empty() || timestamp.is_empty() || signatures.is_empty() {
        return Err(format!(
            "headers missing: webhook-id {id:?} webhook-timestamp {timestamp:?} webhook-signature {signatures:?}"
        ));
    }
    signature::verify(
        secret,
        id,
        timestamp,
        signatures,
        body,
        Utc::now().timestamp(),
        DEFAULT_TOLERANCE_SECS,
    )
    .map_err(|error| match error {
        calsync_domain::Error::Forbidden => format!(
            "no signature in webhook-signature {signatures:?} is the secret's (webhook-timestamp {timestamp})"
        ),
        other => format!("{other} (webhook-timestamp {timestamp})"),
    })
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let at = Utc::now();
    let id = header(&request, signature::HEADER_ID);
    let timestamp = header(&request, signature::HEADER_TIMESTAMP);
    let signatures = header(&request, signature::HEADER_SIGNATURE);
    let wrong_place = request.method() != hyper::Method::POST || request.uri().path() != PATH;
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        // The connection went (calsync gave up, or the outage closed it).
        Err(_) => return answer(400),
    };
    let checked = match secret(&state).await {
        _ if wrong_place => Err("not a POST to the subscription's URL".to_owned()),
        Some(secret) => check_signature(&secret, &id, &timestamp, &signatures, &body),
        None => Err("the subscription's secret is not known".to_owned()),
    };
    let record = |verdict: Verdict, body: Option<Value>| {
        lock(&state.receipts).push(Receipt {
            id: id.clone(),
            at,
            verdict,
            body,
        });
    };
    if let Err(problem) = checked {
        record(Verdict::BadSignature(problem), None);
        return answer(401);
    }
    let act = lock(&state.plan).decide(Instant::now());
    match act {
        Act::Accept => {
            record(
                Verdict::Accepted,
                Some(serde_json::from_slice(&body).unwrap_or(Value::Null)),
            );
            answer(200)
        }
        Act::Refuse(status) => {
            record(Verdict::Refused(status), None);
            lock(&state.figures).refusals += 1;
            answer(status)
        }
        Act::Stall(stall) => {
            record(Verdict::Stalled, None);
            lock(&state.figures).stalls += 1;
            tokio::time::sleep(stall).await;
            answer(503)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use calsync_domain::feed::signature::SigningSecret;

    #[test]
    fn a_wrong_signature_secret_or_body_is_refused() {
        let secret = SigningSecret::from_bytes(vec![9; 32]).unwrap();
        let other = SigningSecret::from_bytes(vec![8; 32]).unwrap();
        let now = Utc::now().timestamp();
        let ts = now.to_string();
        let body = br#"{"cursor":"c1"}"#;
        let good = secret.sign("c1", now, body);
        assert!(check_signature(&secret.expose(), "c1", &ts, &good, body).is_ok());
        assert!(check_signature(&other.expose(), "c1", &ts, &good, body).is_err());
        assert!(check_signature(&secret.expose(), "c2", &ts, &good, body).is_err());
        assert!(check_signature(&secret.expose(), "c1", &ts, &good, b"{}").is_err());
        assert!(
            check_signature(
                &secret.expose(),
                "c1",
                &ts,
                &other.sign("c1", now, body),
                body
            )
            .is_err()
        );
        assert!(check_signature(&secret.expose(), "c1", &ts, "", body).is_err());
        let old = (now - 3600).to_string();
        let stale = secret.sign("c1", now - 3600, body);
        assert!(check_signature(&secret.expose(), "c1", &old, &stale, body).is_err());
    }
}
