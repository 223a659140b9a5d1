//! Abuse and bad input against the real server: slow bodies, dates outside
//! what the databases hold.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{TempDir, bearer, drop_schema, http, postgres_schema, server};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_body_that_trickles_in_is_cut_off_with_408() {
    let (running, _dir): (_, Option<TempDir>) = server(None, &[]).await;
    let mut socket = tokio::net::TcpStream::connect(running.address)
        .await
        .unwrap();
    let (_, auth) = bearer();
    let head = format!(
        "POST /calendar/events HTTP/1.1\r\nHost: calsync\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"summ"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let started = tokio::time::Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), socket.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server kept the slow connection open");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(20));
    running.stop().await;
}

async fn dates_outside_years_1_to_9999_are_refused_naming_the_field(url: Option<&str>) {
    let (running, _dir) = server(url, &[]).await;
    let base = format!("http://{}", running.address);
    let (name, value) = bearer();
    let auth = [(name, value.as_str())];
    for (start, end, field) in [
        (
            "2030-01-01T10:00:00Z",
            "+10000-01-01T00:00:00Z",
            "end.dateTime",
        ),
        (
            "9999-12-31T23:30:00-01:00",
            "9999-12-31T23:45:00-01:00",
            "start.dateTime",
        ),
        (
            "-4714-01-01T00:00:00Z",
            "2030-01-01T00:00:00Z",
            "start.dateTime",
        ),
    ] {
        let (status, body) = http(
            "POST",
            &format!("{base}/calendar/events"),
            &auth,
            Some(json!({"entityType": "deal", "entityId": "1",
                "start": {"dateTime": start}, "end": {"dateTime": end}})),
        )
        .await;
        assert!(
            (400..500).contains(&status) && body["error"]["field"] == field,
            "{start}..{end}: {status} {body}"
        );
    }
    let (status, body) = http(
        "POST",
        &format!("{base}/calendar/events"),
        &auth,
        Some(json!({"entityType": "deal", "entityId": "1",
            "start": {"date": "10000-01-01"}, "end": {"date": "10000-01-02"}})),
    )
    .await;
    assert!((400..500).contains(&status), "{status} {body}");
    for query in [
        "timeMax=%2B10000-01-01T00:00:00Z",
        "timeMin=-4714-01-01T00:00:00Z",
    ] {
        let (status, body) = http(
            "GET",
            &format!("{base}/calendar/events?{query}"),
            &auth,
            None,
        )
        .await;
        assert!((400..500).contains(&status), "{query}: {status} {body}");
    }
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dates_outside_years_1_to_9999_are_refused_sqlite() {
    dates_outside_years_1_to_9999_are_refused_naming_the_field(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dates_outside_years_1_to_9999_are_refused_postgres() {
    if let Some(url) = postgres_schema().await {
        dates_outside_years_1_to_9999_are_refused_naming_the_field(Some(&url)).await;
        drop_schema(&url).await;
    }
}
