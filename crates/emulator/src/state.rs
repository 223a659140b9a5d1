//! The emulated calendars: events with a change sequence, sync and page
//! tokens, channels. Everything here is synchronous and runs under one lock.
//! Writes to events live in `writes`, watch channels in `channels`.

mod channels;
mod writes;

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use sha2::Digest;

use crate::access::Roles;
use crate::conference::Conferences;
use crate::error::ApiError;

pub use channels::{Channel, Notification};

#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub body: Map<String, Value>,
    pub seq: u64,
}

impl StoredEvent {
    pub fn cancelled(&self) -> bool {
        self.body.get("status").and_then(Value::as_str) == Some("cancelled")
    }
}

/// A deleted event as listings return it: ids, status and, for an
/// occurrence, `recurringEventId` + `originalStartTime`.
pub fn stub(body: &Map<String, Value>) -> Value {
    let mut stub = Map::new();
    for key in [
        "kind",
        "etag",
        "id",
        "status",
        "recurringEventId",
        "originalStartTime",
    ] {
        if let Some(value) = body.get(key) {
            stub.insert(key.to_owned(), value.clone());
        }
    }
    Value::Object(stub)
}

#[derive(Debug, Default)]
pub struct Calendars {
    pub events: HashMap<String, BTreeMap<String, StoredEvent>>,
    pub seq: u64,
    pub token_generation: u64,
    pub channels: HashMap<String, Channel>,
    pub base_url: String,
    /// Calendars our principal has lost access to (shared no more, deleted).
    pub revoked: HashSet<String>,
    /// Access roles per calendar and principal (`owner` unless set).
    pub roles: Roles,
    pub conferences: Conferences,
    /// How long a deleted event stays before it is purged (`None`: for ever).
    pub purge_after: Option<chrono::Duration>,
    /// Ids of purged events, by calendar: still reserved for inserts.
    pub purged: HashMap<String, HashSet<String>>,
    /// The highest change sequence purged, by calendar: a sync token from
    /// before it would miss a deletion, so it is answered 410.
    pub purged_seq: HashMap<String, u64>,
    /// The seed of ragged paging (short or empty pages while more remain),
    /// `None` when pages are full.
    pub ragged_seed: Option<u64>,
}

/// How a write is made.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOptions {
    /// The request's `conferenceDataVersion` (0 or 1).
    pub conference_data_version: u8,
    /// Made "in Google" through the admin handle ([`crate::Emulator::change`]):
    /// event-type restrictions do not apply and bodies are taken verbatim.
    pub admin: bool,
}

pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Calendars {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub(crate) fn stamp(&mut self, body: &mut Map<String, Value>, now: DateTime<Utc>) -> u64 {
        let seq = self.next_seq();
        body.insert("etag".into(), json!(format!("\"{seq}\"")));
        body.insert("updated".into(), json!(timestamp(now)));
        seq
    }

    /// Google answers 404 `notFound` both for a calendar that does not exist
    /// and for one the principal cannot access (errors guide, "404: Not
    /// found": https://developers.google.com/workspace/calendar/api/guides/errors).
    pub fn reachable(&self, calendar_id: &str) -> Result<(), ApiError> {
        if self.revoked.contains(calendar_id) {
            Err(ApiError::not_found())
        } else {
            Ok(())
        }
    }

    /// `calendars.get`: every calendar id names a calendar here, in UTC.
    pub fn calendar(&self, calendar_id: &str) -> Result<Value, ApiError> {
        self.reachable(calendar_id)?;
        let digest = sha2::Sha256::digest(calendar_id.as_bytes());
        let etag: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Ok(json!({
            "kind": "calendar#calendar",
            "etag": format!("\"{etag}\""),
            "id": calendar_id,
            "summary": calendar_id,
            "timeZone": "UTC",
        }))
    }

    pub(crate) fn stored(&self, calendar_id: &str, event_id: &str) -> Option<&StoredEvent> {
        self.events.get(calendar_id).and_then(|c| c.get(event_id))
    }

    /// `events.get`: a stored event, or an occurrence of a stored series.
    pub fn get(&self, calendar_id: &str, event_id: &str) -> Result<Value, ApiError> {
        match self.stored(calendar_id, event_id) {
            Some(event) => Ok(Value::Object(event.body.clone())),
            None => self
                .occurrence(calendar_id, event_id)
                .map(Value::Object)
                .ok_or_else(ApiError::not_found),
        }
    }

    pub(crate) fn store(&mut self, calendar_id: &str, body: Map<String, Value>, seq: u64) {
        let id = body
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        self.events
            .entry(calendar_id.to_owned())
            .or_default()
            .insert(id, StoredEvent { body, seq });
    }
}
