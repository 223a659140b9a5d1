#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use calsync_domain::feed::subscription::OutboundRequest;
use calsync_domain::ports::WebhookSender;
use calsync_domain::{Error, ProviderErrorKind};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::*;

fn production(allowed_hosts: &[&str]) -> HttpWebhookSender {
    HttpWebhookSender::new(SenderPolicy {
        allow_plain_http_loopback: false,
        allowed_hosts: allowed_hosts.iter().map(|h| (*h).to_owned()).collect(),
    })
    .unwrap()
}

fn development() -> HttpWebhookSender {
    HttpWebhookSender::new(SenderPolicy {
        allow_plain_http_loopback: true,
        allowed_hosts: Vec::new(),
    })
    .unwrap()
}

fn post(url: &str) -> OutboundRequest {
    OutboundRequest {
        url: url.to_owned(),
        headers: vec![
            ("webhook-id", "7".to_owned()),
            ("webhook-signature", "v1,abc=".to_owned()),
        ],
        body: br#"{"type":"event.created"}"#.to_vec(),
    }
}

fn refusal_reason(result: Result<impl std::fmt::Debug>) -> String {
    match result {
        Err(Error::Invalid {
            field: "url",
            reason,
        }) => reason,
        other => panic!("expected an invalid url, got {other:?}"),
    }
}

fn transient_message(result: Result<impl std::fmt::Debug>) -> String {
    match result {
        Err(Error::Provider {
            kind: ProviderErrorKind::Transient,
            message,
            ..
        }) => message,
        other => panic!("expected a transient failure, got {other:?}"),
    }
}

/// Reads one request: its head (request line and headers) and body.
async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> (String, Vec<u8>) {
    let mut data = Vec::new();
    let mut buffer = [0u8; 4096];
    let end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut buffer).await.unwrap();
        assert!(n > 0, "the connection closed before the request's head");
        data.extend_from_slice(&buffer[..n]);
    };
    let head = String::from_utf8(data[..end].to_vec()).unwrap();
    let length: usize = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = data[end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut buffer).await.unwrap();
        assert!(n > 0);
        body.extend_from_slice(&buffer[..n]);
    }
    (head, body)
}

async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    response: &str,
) -> (String, Vec<u8>) {
    let request = read_request(stream).await;
    stream.write_all(response.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    request
}

/// A plain HTTP server on 127.0.0.1 answering one request with `response`.
async fn serve_once(response: &'static str) -> (SocketAddr, JoinHandle<(String, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        answer(&mut stream, response).await
    });
    (addr, task)
}

#[tokio::test]
async fn every_internal_address_is_refused_in_production() {
    let sender = production(&[]);
    for (url, expected) in [
        ("https://localhost/hooks", "loopback"),
        ("https://127.0.0.1/", "loopback"),
        ("https://0.0.0.0/", "unspecified"),
        ("https://10.0.0.1/", "private (RFC 1918)"),
        ("https://172.16.5.4/", "private (RFC 1918)"),
        ("https://192.168.0.10:8443/", "private (RFC 1918)"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://100.64.0.1/", "carrier-grade NAT"),
        ("https://192.0.2.1/", "documentation"),
        ("https://198.18.0.1/", "benchmarking"),
        ("https://224.0.0.1/", "multicast"),
        ("https://255.255.255.255/", "broadcast"),
        ("https://[::1]/", "loopback"),
        ("https://[::]/", "unspecified"),
        ("https://[fe80::1]/", "link-local"),
        ("https://[fd00::1]/", "unique-local"),
        ("https://[ff02::1]/", "multicast"),
        ("https://[2001:db8::1]/", "documentation"),
        ("https://[::ffff:169.254.169.254]/", "link-local"),
        ("https://[::ffff:10.0.0.1]/", "private"),
        ("https://[::127.0.0.1]/", "loopback"),
        // Decimal and hex spellings are normalized by the URL parser.
        ("https://2130706433/", "loopback"),
        ("https://0x7f.1/", "loopback"),
    ] {
        let reason = refusal_reason(sender.check_url(url).await);
        assert!(reason.contains(expected), "{url}: {reason}");
        assert!(reason.contains("CALSYNC_WEBHOOK_ALLOWED_HOSTS"), "{reason}");
        // Sending refuses the same way, before any connection.
        let reason = refusal_reason(sender.send(&post(url), Duration::from_secs(2)).await);
        assert!(reason.contains(expected), "{url}: {reason}");
    }
    assert!(sender.check_url("https://8.8.8.8/hooks").await.is_ok());
    assert!(
        sender
            .check_url("https://[2606:4700:4700::1111]/")
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn the_scheme_and_shape_rules() {
    let sender = production(&[]);
    for (url, expected) in [
        ("http://8.8.8.8/hooks", "must use https"),
        ("ftp://8.8.8.8/", "must use https, not ftp"),
        ("file:///etc/passwd", "must use https, not file"),
        ("https://user:pw@8.8.8.8/", "user name or password"),
        ("not a url", "not a valid URL"),
        ("https://host.invalid/", "does not resolve"),
    ] {
        let reason = refusal_reason(sender.check_url(url).await);
        assert!(reason.contains(expected), "{url}: {reason}");
        assert!(!reason.contains("pw"), "{reason}");
    }
}

#[tokio::test]
async fn allowed_hosts_bypass_the_address_rules_but_not_https() {
    let sender = production(&["10.0.0.1", "[FD00::1]", " LocalHost. "]);
    for url in [
        "https://10.0.0.1/hooks",
        "https://[fd00::1]:8443/",
        "https://localhost/",
        "https://LOCALHOST:9000/",
    ] {
        assert!(sender.check_url(url).await.is_ok(), "{url}");
    }
    let reason = refusal_reason(sender.check_url("http://10.0.0.1/").await);
    assert!(reason.contains("must use https"), "{reason}");
    // Exact host only: neither subdomains nor neighbours.
    for url in ["https://10.0.0.2/", "https://sub.localhost/"] {
        assert!(sender.check_url(url).await.is_err(), "{url}");
    }
}

#[tokio::test]
async fn development_allows_loopback_only() {
    let sender = development();
    for url in [
        "http://localhost:3000/hooks",
        "http://127.0.0.1/",
        "http://[::1]:8080/",
        "https://localhost/",
    ] {
        assert!(sender.check_url(url).await.is_ok(), "{url}");
    }
    let reason = refusal_reason(sender.check_url("http://8.8.8.8/").await);
    assert!(reason.contains("only to loopback"), "{reason}");
    let reason = refusal_reason(sender.check_url("https://10.0.0.1/").await);
    assert!(reason.contains("private"), "{reason}");
    let reason = refusal_reason(sender.check_url("https://169.254.169.254/").await);
    assert!(reason.contains("link-local"), "{reason}");
}

#[tokio::test]
async fn a_delivery_posts_with_the_right_headers_and_returns_the_status() {
    let (addr, server) = serve_once("HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\nok").await;
    let url = format!("http://localhost:{}/hooks/in?x=1#frag", addr.port());
    let answer = development()
        .send(&post(&url), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(answer.status, 202);
    let (head, body) = server.await.unwrap();
    let head = head.to_ascii_lowercase();
    assert!(
        head.starts_with("post /hooks/in?x=1 http/1.1\r\n"),
        "{head}"
    );
    for line in [
        format!("host: localhost:{}\r\n", addr.port()),
        format!(
            "user-agent: calsync-webhooks/{}\r\n",
            env!("CARGO_PKG_VERSION")
        ),
        "content-type: application/json\r\n".to_owned(),
        "webhook-id: 7\r\n".to_owned(),
        "webhook-signature: v1,abc=\r\n".to_owned(),
        format!("content-length: {}\r\n", body.len()),
    ] {
        assert!(head.contains(&line), "{line:?} missing from {head}");
    }
    assert_eq!(body, br#"{"type":"event.created"}"#);
}

#[tokio::test]
async fn the_connection_goes_to_the_vetted_address_without_a_second_lookup() {
    // The host does not resolve at all: the request can only have arrived
    // through the pinned address, with the original host as its Host.
    let (addr, server) = serve_once("HTTP/1.1 204 No Content\r\n\r\n").await;
    let sender = development();
    let target = sender
        .parse("http://hooks.example.invalid:8080/in")
        .unwrap();
    let request = sender.request(&target, &post("http://unused")).unwrap();
    let timeout = Duration::from_secs(5);
    let deadline = tokio::time::Instant::now() + timeout;
    let status = sender
        .deliver(&target, &[addr], request, deadline, timeout)
        .await
        .unwrap();
    assert_eq!(status, 204);
    let (head, _) = server.await.unwrap();
    assert!(
        head.contains("host: hooks.example.invalid:8080\r\n"),
        "{head}"
    );
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let elsewhere = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let location = format!(
        "http://127.0.0.1:{}/",
        elsewhere.local_addr().unwrap().port()
    );
    let response: &'static str = format!(
        "HTTP/1.1 307 Temporary Redirect\r\nlocation: {location}\r\ncontent-length: 0\r\n\r\n"
    )
    .leak();
    let (addr, server) = serve_once(response).await;
    let url = format!("http://127.0.0.1:{}/", addr.port());
    let answer = development()
        .send(&post(&url), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(answer.status, 307);
    server.await.unwrap();
    let followed = tokio::time::timeout(Duration::from_millis(300), elsewhere.accept()).await;
    assert!(followed.is_err(), "the redirect was followed");
}

#[tokio::test]
async fn a_receiver_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        read_request(&mut stream).await;
        // Hold the connection open without answering.
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(stream);
    });
    let started = Instant::now();
    let url = format!("http://127.0.0.1:{}/", addr.port());
    let message = transient_message(
        development()
            .send(&post(&url), Duration::from_millis(300))
            .await,
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        message.contains("timed out after 300ms waiting for the receiver's answer"),
        "{message}"
    );
    server.abort();
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = format!("http://127.0.0.1:{port}/");
    let message = transient_message(
        development()
            .send(&post(&url), Duration::from_secs(2))
            .await,
    );
    assert!(
        message.contains("could not connect to the receiver"),
        "{message}"
    );
}

#[tokio::test]
async fn at_most_64_kib_of_the_answer_is_read() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        answer(
            &mut stream,
            "HTTP/1.1 500 Oops\r\ncontent-length: 10000000\r\n\r\n",
        )
        .await;
        // 256 KiB of a promised 10 MB, then silence: reading it all would
        // wait for the timeout.
        let _ = stream.write_all(&[b'x'; 256 * 1024]).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let started = Instant::now();
    let url = format!("http://127.0.0.1:{}/", addr.port());
    let answer = development()
        .send(&post(&url), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(answer.status, 500);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    server.abort();
}

#[tokio::test]
async fn https_sends_sni_and_checks_the_certificate() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        // First connection: the sender trusting only public roots.
        let (stream, _) = listener.accept().await.unwrap();
        assert!(acceptor.accept(stream).await.is_err());
        // Second: the sender trusting this certificate.
        let (stream, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(stream).await.unwrap();
        let sni = tls.get_ref().1.server_name().map(str::to_owned);
        let (head, _) = answer(&mut tls, "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
        (sni, head)
    });
    let url = format!("https://localhost:{port}/secure");

    let message = transient_message(
        development()
            .send(&post(&url), Duration::from_secs(5))
            .await,
    );
    assert!(
        message.contains("TLS handshake with the receiver failed"),
        "{message}"
    );
    assert!(message.contains("certificate"), "{message}");

    let mut roots = RootCertStore::empty();
    roots.add(cert).unwrap();
    let policy = SenderPolicy {
        allow_plain_http_loopback: true,
        allowed_hosts: Vec::new(),
    };
    let trusting = HttpWebhookSender::with_roots(policy, roots).unwrap();
    let answer = trusting
        .send(&post(&url), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
    let (sni, head) = server.await.unwrap();
    assert_eq!(sni.as_deref(), Some("localhost"));
    assert!(
        head.to_ascii_lowercase()
            .starts_with("post /secure http/1.1\r\n"),
        "{head}"
    );
    assert!(
        head.contains(&format!("host: localhost:{port}\r\n")),
        "{head}"
    );
}
