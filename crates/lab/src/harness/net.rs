//! HTTP to the server and the emulator: every request has a deadline, and
//! a connection error is a value (the server is often dead on purpose).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Longer than the emulator's largest injected latency plus a slow debug build.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// `Null` when the body is not JSON.
    pub body: Value,
    pub text: String,
    pub etag: Option<String>,
    /// Where a redirect sends the client.
    pub location: Option<String>,
    /// The server answered a create from its idempotency record.
    pub replayed: bool,
}

impl Reply {
    /// The body, shortened for a report line.
    pub fn brief(&self) -> String {
        let text: String = self.text.chars().take(300).collect();
        format!("{} {text}", self.status)
    }

    /// Google's `error.errors[0].reason`.
    pub fn reason(&self) -> &str {
        self.body["error"]["errors"][0]["reason"]
            .as_str()
            .unwrap_or_default()
    }
}

impl Http {
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        Self {
            client: Client::builder(TokioExecutor::new())
                // Connections to a killed server are dead: don't keep them long.
                .pool_idle_timeout(Duration::from_secs(5))
                .build(connector),
        }
    }

    /// `Err` for no answer (refused, reset, dropped, timed out).
    pub async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        let mut builder = hyper::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let payload = match body {
            Some(body) => {
                builder = builder.header("content-type", "application/json");
                Bytes::from(body.to_string())
            }
            None => Bytes::new(),
        };
        let request = builder
            .body(Full::new(payload))
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| format!("{e:?}"))?;
            let status = response.status().as_u16();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let etag = header("etag");
            let location = header("location");
            let replayed = header("idempotent-replayed").is_some_and(|v| v == "true");
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("{e:?}"))?
                .to_bytes();
            Ok::<_, String>((status, bytes, etag, location, replayed))
        };
        let (status, bytes, etag, location, replayed) =
            tokio::time::timeout(REQUEST_TIMEOUT, exchange)
                .await
                .map_err(|_| format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()))??;
        Ok(Reply {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text: String::from_utf8_lossy(&bytes).into_owned(),
            etag,
            location,
            replayed,
        })
    }
}
