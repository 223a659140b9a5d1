//! [`HttpWebhookSender`]: POSTs deliveries to applications' receivers,
//! guarded against server-side request forgery.
//!
//! The host is resolved once, every address it resolves to is vetted, and
//! the socket is connected to a vetted address by calsync itself: the HTTP
//! client never resolves the name again, so a DNS answer that changes
//! between the check and the connection (DNS rebinding) cannot redirect
//! the request. The original host still goes out as the `Host` header and
//! as TLS SNI, and the certificate is checked against it. Redirects are not
//! followed: a 3xx is just the receiver's status.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use calsync_domain::feed::subscription::{OutboundRequest, OutboundResponse};
use calsync_domain::ports::WebhookSender;
use calsync_domain::{Error, ProviderErrorKind, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{
    CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, TRANSFER_ENCODING, USER_AGENT,
};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsConnector;
use url::{Host, Url};

use crate::address::{is_loopback, refusal};

/// What the receivers' admins see in their logs.
pub const USER_AGENT_VALUE: &str = concat!("calsync-webhooks/", env!("CARGO_PKG_VERSION"));
/// At most this much of a receiver's answer is read (and thrown away).
pub const MAX_RESPONSE_BODY: usize = 64 * 1024;
/// How long `check_url` waits for the host to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where deliveries may go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SenderPolicy {
    /// Development only: `http` (and any address) to loopback receivers,
    /// such as `http://localhost:3000/hooks`.
    pub allow_plain_http_loopback: bool,
    /// Hosts the operator trusts whatever they resolve to (e.g. a receiver
    /// on the private network), from `CALSYNC_WEBHOOK_ALLOWED_HOSTS`. Exact
    /// host names (IDNs in their `xn--` form) or IP literals,
    /// case-insensitive; they still need `https`.
    pub allowed_hosts: Vec<String>,
}

/// The [`WebhookSender`] over hyper and rustls (webpki roots).
#[derive(Clone)]
pub struct HttpWebhookSender {
    development: bool,
    /// Normalized with [`normalize_host`].
    allowed_hosts: Vec<String>,
    tls: TlsConnector,
}

impl std::fmt::Debug for HttpWebhookSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpWebhookSender")
            .field("development", &self.development)
            .field("allowed_hosts", &self.allowed_hosts)
            .finish_non_exhaustive()
    }
}

/// A URL taken apart for sending.
#[derive(Debug, Clone)]
struct Target {
    https: bool,
    host: Host<String>,
    port: u16,
    /// The `Host` header: the URL's host, and its port when explicit.
    authority: String,
    /// The request target: path and query (the fragment stays home).
    path: String,
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::invalid("url", reason)
}

fn transient(message: impl Into<String>) -> Error {
    Error::provider(ProviderErrorKind::Transient, message)
}

/// Lower case, no brackets around an IPv6 literal, no trailing dot.
fn normalize_host(host: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(&host);
    host.strip_suffix('.').unwrap_or(host).to_owned()
}

fn host_key(host: &Host<String>) -> String {
    match host {
        Host::Domain(domain) => normalize_host(domain),
        Host::Ipv4(ip) => ip.to_string(),
        Host::Ipv6(ip) => ip.to_string(),
    }
}

impl HttpWebhookSender {
    pub fn new(policy: SenderPolicy) -> Result<Self> {
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        Self::with_roots(policy, roots)
    }

    /// [`HttpWebhookSender::new`] trusting `roots` (tests use their own CA).
    fn with_roots(policy: SenderPolicy, roots: RootCertStore) -> Result<Self> {
        // The provider is passed, not installed process-wide: rustls with
        // ring, as the rest of calsync.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::invalid("tls", e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        // The connection speaks HTTP/1.1 only; never let ALPN pick h2.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            development: policy.allow_plain_http_loopback,
            allowed_hosts: policy
                .allowed_hosts
                .iter()
                .map(|host| normalize_host(host))
                .filter(|host| !host.is_empty())
                .collect(),
            tls: TlsConnector::from(Arc::new(config)),
        })
    }

    /// The scheme and shape rules (no DNS yet).
    fn parse(&self, url: &str) -> Result<Target> {
        let url = Url::parse(url).map_err(|e| invalid(format!("is not a valid URL ({e})")))?;
        let https = match url.scheme() {
            "https" => true,
            "http" if self.development => false,
            "http" => return Err(invalid("must use https")),
            other => return Err(invalid(format!("must use https, not {other}"))),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("must not contain a user name or password"));
        }
        let host = url
            .host()
            .ok_or_else(|| invalid("must name a host"))?
            .to_owned();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| invalid("must have a port"))?;
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        // Vetted here so `check_url` refuses what `send` could not send.
        if hyper::Uri::try_from(path.as_str()).is_err() {
            return Err(invalid("has a path that cannot be sent"));
        }
        Ok(Target {
            https,
            host,
            port,
            authority,
            path,
        })
    }

    /// The one DNS lookup of a delivery: every address the host resolves to.
    async fn resolve(target: &Target) -> std::io::Result<Vec<SocketAddr>> {
        let mut addrs: Vec<SocketAddr> = match &target.host {
            Host::Ipv4(ip) => vec![SocketAddr::new((*ip).into(), target.port)],
            Host::Ipv6(ip) => vec![SocketAddr::new((*ip).into(), target.port)],
            Host::Domain(domain) => tokio::net::lookup_host((domain.as_str(), target.port))
                .await?
                .collect(),
        };
        addrs.dedup();
        Ok(addrs)
    }

    /// The address rules: ANY refused address refuses the host (an
    /// attacker's name may resolve to a public and a private address).
    fn vet(&self, target: &Target, addrs: &[SocketAddr]) -> Result<()> {
        if addrs.is_empty() {
            return Err(invalid("the host resolves to no address"));
        }
        let loopback = self.development && addrs.iter().all(|addr| is_loopback(addr.ip()));
        if !target.https && !loopback {
            return Err(invalid(
                "must use https (plain http is allowed only to loopback addresses, in development)",
            ));
        }
        if loopback || self.allowed_hosts.contains(&host_key(&target.host)) {
            return Ok(());
        }
        for addr in addrs {
            if let Some(reason) = refusal(addr.ip()) {
                return Err(invalid(format!(
                    "{} resolves to {}, a {reason} address: calsync does not deliver to \
                     internal networks (an operator may list the host in \
                     CALSYNC_WEBHOOK_ALLOWED_HOSTS)",
                    target.host,
                    addr.ip()
                )));
            }
        }
        Ok(())
    }

    fn request(&self, target: &Target, outbound: &OutboundRequest) -> Result<Request<Full<Bytes>>> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(target.path.as_str())
            .body(Full::new(Bytes::copy_from_slice(&outbound.body)))
            .map_err(|_| invalid("has a path that cannot be sent"))?;
        let headers = request.headers_mut();
        for (name, value) in &outbound.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Error::invalid("header", format!("{name} is not a header name")))?;
            // Framing is hyper's; the host is the pinned target's.
            if [HOST, CONTENT_LENGTH, TRANSFER_ENCODING, CONNECTION].contains(&name) {
                continue;
            }
            let value = HeaderValue::from_str(value)
                .map_err(|_| Error::invalid("header", format!("{name} has an invalid value")))?;
            headers.append(name, value);
        }
        let host = HeaderValue::from_str(&target.authority)
            .map_err(|_| invalid("has a host that cannot be sent"))?;
        headers.insert(HOST, host);
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(request)
    }

    /// Connects to the first vetted address that answers, then speaks TLS
    /// (SNI and certificate check against the URL's host) when `https`.
    async fn deliver(
        &self,
        target: &Target,
        addrs: &[SocketAddr],
        request: Request<Full<Bytes>>,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<u16> {
        let timed_out = |what: &str| transient(format!("timed out after {timeout:?} {what}"));
        let mut last_error = None;
        let mut stream = None;
        for addr in addrs {
            match timeout_at(deadline, TcpStream::connect(addr)).await {
                Err(_) => return Err(timed_out("connecting to the receiver")),
                Ok(Ok(connected)) => {
                    stream = Some(connected);
                    break;
                }
                Ok(Err(error)) => last_error = Some(format!("{addr}: {error}")),
            }
        }
        let Some(stream) = stream else {
            let why = last_error.unwrap_or_default();
            return Err(transient(format!(
                "could not connect to the receiver ({why})"
            )));
        };
        // Small requests: do not wait to coalesce them.
        let _ = stream.set_nodelay(true);
        if !target.https {
            return exchange(stream, request, deadline, timeout).await;
        }
        let name = match &target.host {
            Host::Domain(domain) => ServerName::try_from(domain.clone())
                .map_err(|_| invalid("has a host that is not a valid TLS server name"))?,
            Host::Ipv4(ip) => ServerName::from(std::net::IpAddr::from(*ip)),
            Host::Ipv6(ip) => ServerName::from(std::net::IpAddr::from(*ip)),
        };
        let tls = match timeout_at(deadline, self.tls.connect(name, stream)).await {
            Err(_) => return Err(timed_out("in the TLS handshake with the receiver")),
            Ok(Err(error)) => {
                return Err(transient(format!(
                    "TLS handshake with the receiver failed: {error}"
                )));
            }
            Ok(Ok(tls)) => tls,
        };
        exchange(tls, request, deadline, timeout).await
    }
}

/// Aborts the connection's task when the exchange ends, however it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One HTTP/1.1 request on `stream`: its status once the headers are in
/// (by `deadline`), after reading at most [`MAX_RESPONSE_BODY`] of the body.
async fn exchange<S>(
    stream: S,
    request: Request<Full<Bytes>>,
    deadline: Instant,
    timeout: Duration,
) -> Result<u16>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let failed = |error: hyper::Error| transient(format!("the receiver's HTTP failed: {error}"));
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(failed)?;
    let _connection = AbortOnDrop(tokio::spawn(async move {
        // Its error surfaces through `send_request`.
        let _ = connection.await;
    }));
    let answer = timeout_at(deadline, async {
        sender.ready().await?;
        sender.send_request(request).await
    })
    .await;
    let response = match answer {
        Err(_) => {
            return Err(transient(format!(
                "timed out after {timeout:?} waiting for the receiver's answer"
            )));
        }
        Ok(Err(error)) => return Err(failed(error)),
        Ok(Ok(response)) => response,
    };
    let status = response.status().as_u16();
    drain(response.into_body(), deadline).await;
    Ok(status)
}

/// Reads and discards the answer's body, at most [`MAX_RESPONSE_BODY`] and
/// only until `deadline`: the status is what counts.
async fn drain(mut body: Incoming, deadline: Instant) {
    let mut read = 0;
    while read < MAX_RESPONSE_BODY {
        match timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => read += frame.data_ref().map_or(0, Bytes::len),
            _ => break,
        }
    }
}

#[async_trait]
impl WebhookSender for HttpWebhookSender {
    async fn check_url(&self, url: &str) -> Result<()> {
        let target = self.parse(url)?;
        let addrs = match tokio::time::timeout(RESOLVE_TIMEOUT, Self::resolve(&target)).await {
            Err(_) => return Err(invalid("the host did not resolve in time")),
            Ok(Err(error)) => return Err(invalid(format!("the host does not resolve ({error})"))),
            Ok(Ok(addrs)) => addrs,
        };
        self.vet(&target, &addrs)
    }

    async fn send(
        &self,
        outbound: &OutboundRequest,
        timeout: Duration,
    ) -> Result<OutboundResponse> {
        let deadline = Instant::now() + timeout;
        let target = self.parse(&outbound.url)?;
        let request = self.request(&target, outbound)?;
        let addrs = match timeout_at(deadline, Self::resolve(&target)).await {
            Err(_) => {
                return Err(transient(format!(
                    "timed out after {timeout:?} resolving the receiver's host"
                )));
            }
            Ok(Err(error)) => {
                return Err(transient(format!(
                    "could not resolve the receiver's host: {error}"
                )));
            }
            Ok(Ok(addrs)) => addrs,
        };
        self.vet(&target, &addrs)?;
        let status = self
            .deliver(&target, &addrs, request, deadline, timeout)
            .await?;
        Ok(OutboundResponse { status })
    }
}

#[cfg(test)]
#[path = "sender_tests.rs"]
mod tests;
