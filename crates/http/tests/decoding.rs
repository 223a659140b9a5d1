//! The decoders behind the events routes, as the fuzz targets call them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

use calsync_domain::ids::{CalendarId, LocalEventId};
use calsync_http::decode;

#[test]
fn page_tokens_are_exactly_what_the_api_writes() {
    let id = LocalEventId::new();
    let token = format!("1780000000123456.{id}");
    let (start, decoded) = decode::page_token(&token).unwrap();
    assert_eq!(
        (start.timestamp_micros(), decoded),
        (1_780_000_000_123_456, id)
    );
    // Other spellings of the same cursor were never written by the API.
    for other in [
        format!("+1780000000123456.{id}"),
        format!("01780000000123456.{id}"),
        format!("1780000000123456.{}", id.to_string().to_uppercase()),
        format!("1780000000123456.{{{id}}}"),
        format!("1780000000123456.urn:uuid:{id}"),
        format!("1780000000123456.{}", id.as_uuid().simple()),
    ] {
        assert!(decode::page_token(&other).is_err(), "{other}");
    }
}

#[test]
fn page_tokens_outside_the_stored_years_are_refused() {
    let id = LocalEventId::new();
    // Years before 1 or after 9999 (UTC): no event starts there, and
    // Postgres cannot compare with the earliest of them.
    for micros in [
        i64::MIN,
        -7_601_461_409_332_842_680,
        -62_135_596_800_000_001,
        253_402_300_800_000_000,
        i64::MAX,
    ] {
        let token = format!("{micros}.{id}");
        assert!(decode::page_token(&token).is_err(), "{token}");
    }
    for micros in [-62_135_596_800_000_000i64, 0, 253_402_300_799_999_999] {
        let token = format!("{micros}.{id}");
        assert!(decode::page_token(&token).is_ok(), "{token}");
    }
}

#[test]
fn bodies_decode_as_the_handlers_decode_them() {
    let primary = CalendarId::new("primary").unwrap();
    let event = decode::event_create_body(
        br#"{"entityType":"deal","entityId":"1","start":{"date":"2030-01-15"},"end":{"date":"2030-01-16"}}"#,
        Some(&primary),
    )
    .unwrap();
    assert_eq!(event.calendar_id(), &primary);
    assert!(
        decode::event_create_body(
            br#"{"entityType":"deal","entityId":"1","start":{"date":"2030-01-15"},"end":{"date":"2030-01-16"}}"#,
            None,
        )
        .is_err(),
        "no calendar named and no default"
    );
    assert!(decode::event_patch_body(br#"{"summary":null}"#).is_ok());
    // An RSVP: the answer is taken (left out, it stays as Google has it).
    let rsvp = decode::event_patch_body(
        br#"{"attendees":[{"email":"me@example.com","responseStatus":"accepted"},{"email":"boss@example.org"}]}"#,
    )
    .unwrap();
    let attendees = rsvp.attendees.unwrap();
    assert_eq!(attendees[0].response_status.as_deref(), Some("accepted"));
    assert_eq!(attendees[1].response_status, None);
    for refused in [
        &b"{}"[..],
        br#"{"start":null}"#,
        br#"{"status":"cancelled"}"#,
        br#"{"attendees":[{"email":"me@example.com","responseStatus":"maybe"}]}"#,
        b"null",
    ] {
        assert!(
            decode::event_patch_body(refused).is_err(),
            "{}",
            String::from_utf8_lossy(refused)
        );
    }
}
