//! Event body decoding as the events routes do it (JSON to the domain's
//! `NewEvent` and `EventChanges`): anything either decodes or is a 4xx, and
//! what decodes survives the API's own answer: the event as `POST` answers
//! it, sent back as a body, decodes to the same event.
#![no_main]

use actix_web::ResponseError;
use calsync_domain::event::{EventChanges, EventStatus};
use calsync_domain::ids::CalendarId;
use calsync_http::{EventResource, HttpError, decode};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

/// The fields of an answered event that a create body takes.
const BODY_FIELDS: [&str; 9] = [
    "calendarId",
    "entityType",
    "entityId",
    "summary",
    "description",
    "location",
    "start",
    "end",
    "attendees",
];

/// RFC 3339 allows a 60th second only as a leap second, at 23:59:60 UTC;
/// chrono represents any `:60` as a leap second, so check what it read.
fn strict_rfc3339(field: &str, answer: &Value) {
    use chrono::Timelike;
    let Some(text) = answer[field]["dateTime"].as_str() else {
        return;
    };
    let at = chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{field}.dateTime {text:?} is not RFC 3339: {e}"))
        .with_timezone(&chrono::Utc);
    assert!(
        at.nanosecond() < 1_000_000_000 || (at.hour() == 23 && at.minute() == 59),
        "{field}.dateTime {text:?}: a 60th second outside 23:59 UTC is no RFC 3339 time"
    );
}

fn client_error(error: &HttpError) {
    let status = error.status_code();
    assert!(status.is_client_error(), "{status} for {error:?}");
}

fuzz_target!(|data: &[u8]| {
    let primary = CalendarId::new("primary").unwrap_or_else(|e| panic!("{e}"));
    match decode::event_create_body(data, Some(&primary)) {
        Ok(new) => {
            let event = new.clone().into_event(chrono::Utc::now());
            let answer = serde_json::to_value(EventResource::new(&event, None))
                .unwrap_or_else(|e| panic!("the answer does not serialize: {e}"));
            strict_rfc3339("start", &answer);
            strict_rfc3339("end", &answer);
            let body: Map<String, Value> = BODY_FIELDS
                .iter()
                .filter_map(|key| answer.get(*key).map(|v| ((*key).to_owned(), v.clone())))
                .collect();
            let bytes = serde_json::to_vec(&body).unwrap_or_else(|e| panic!("{e}"));
            match decode::event_create_body(&bytes, None) {
                Ok(again) => assert_eq!(again, new, "{body:?}"),
                Err(error) => panic!("the API's own answer {body:?} is refused: {error}"),
            }
        }
        Err(error) => client_error(&error),
    }
    match decode::event_patch_body(data) {
        Ok(changes) => {
            assert!(!changes.is_empty());
            assert_ne!(changes.status, Some(EventStatus::Cancelled));
            // The outbox stores the changes as JSON: they must read back.
            let stored = serde_json::to_string(&changes).unwrap_or_else(|e| panic!("{e}"));
            let read: EventChanges =
                serde_json::from_str(&stored).unwrap_or_else(|e| panic!("{stored}: {e}"));
            assert_eq!(read, changes, "{stored}");
        }
        Err(error) => client_error(&error),
    }
});
