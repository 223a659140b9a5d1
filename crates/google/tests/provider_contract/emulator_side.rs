//! The adapter's side of the contract: an emulator per test, the adapter
//! pointed at it, and a [`RemoteControl`] over the emulator's admin handle.

use calsync_domain::event::{Attendee, EventStatus, EventTime, TimeZoneName};
use calsync_domain::ids::{CalendarId, EntityRef, Etag, EventId};
use calsync_domain::sync::RemoteEvent;
use calsync_domain::testing::provider_contract::{Contract, RemoteControl};
use calsync_emulator::{Change, Emulator, RunningEmulator};
use calsync_google::{ENTITY_ID_KEY, ENTITY_TYPE_KEY, GoogleCalendar};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value, json};

pub struct EmulatorSide {
    running: RunningEmulator,
    google: GoogleCalendar,
    remote: EmulatorRemote,
    now: DateTime<Utc>,
}

impl EmulatorSide {
    pub fn contract(&self) -> Contract<'_> {
        Contract {
            google: &self.google,
            remote: &self.remote,
            now: self.now,
        }
    }

    pub async fn finish(self) {
        self.running.stop().await;
    }
}

pub async fn setup() -> EmulatorSide {
    let setup = crate::support::setup().await;
    let google = crate::support::adapter(&setup, crate::support::fast_retries(2)).await;
    EmulatorSide {
        remote: EmulatorRemote(setup.emulator.emulator.clone()),
        running: setup.emulator,
        google,
        now: Utc::now(),
    }
}

/// Google's side, arranged through the emulator as another user would.
pub struct EmulatorRemote(Emulator);

impl RemoteControl for EmulatorRemote {
    fn put(&self, calendar_id: &CalendarId, event: RemoteEvent) -> RemoteEvent {
        let created = self
            .0
            .change(calendar_id.as_str(), Change::Insert(to_json(&event)))
            .unwrap();
        from_json(&created)
    }

    fn modify(&self, calendar_id: &CalendarId, id: &EventId, summary: &str) {
        let mut fields = Map::new();
        fields.insert("summary".into(), json!(summary));
        self.0
            .change(
                calendar_id.as_str(),
                Change::Patch {
                    id: id.to_string(),
                    fields,
                },
            )
            .unwrap();
    }

    fn remove(&self, calendar_id: &CalendarId, id: &EventId) {
        self.0
            .change(calendar_id.as_str(), Change::Delete { id: id.to_string() })
            .unwrap();
    }

    fn invalidate_sync_tokens(&self) {
        self.0.invalidate_sync_tokens();
    }

    fn set_unreachable(&self, calendar_id: &CalendarId, unreachable: bool) {
        self.0
            .set_calendar_revoked(calendar_id.as_str(), unreachable);
    }

    fn held(&self, calendar_id: &CalendarId) -> Vec<RemoteEvent> {
        self.0
            .events(calendar_id.as_str())
            .iter()
            .map(from_json)
            .collect()
    }
}

fn time_to_json(time: &EventTime) -> Value {
    match time {
        EventTime::AllDay { date } => json!({ "date": date.to_string() }),
        EventTime::At { at, time_zone } => {
            let mut value = json!({ "dateTime": at.to_rfc3339() });
            if let Some(zone) = time_zone {
                value["timeZone"] = json!(zone.as_str());
            }
            value
        }
    }
}

/// The event as another client would send it to `events.insert`.
fn to_json(event: &RemoteEvent) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("id".into(), json!(event.id.as_str()));
    body.insert("status".into(), json!(event.status.as_str()));
    for (key, value) in [
        ("summary", &event.summary),
        ("description", &event.description),
        ("location", &event.location),
    ] {
        if let Some(text) = value {
            body.insert(key.into(), json!(text));
        }
    }
    for (key, value) in [("start", &event.start), ("end", &event.end)] {
        if let Some(time) = value {
            body.insert(key.into(), time_to_json(time));
        }
    }
    if !event.attendees.is_empty() {
        let attendees: Vec<Value> = event
            .attendees
            .iter()
            .map(|a| json!({ "email": a.email }))
            .collect();
        body.insert("attendees".into(), Value::Array(attendees));
    }
    if let Some(entity) = &event.entity {
        body.insert(
            "extendedProperties".into(),
            json!({ "private": {
                ENTITY_TYPE_KEY: entity.entity_type(),
                ENTITY_ID_KEY: entity.entity_id(),
            }}),
        );
    }
    body
}

fn time_from_json(value: Option<&Value>) -> Option<EventTime> {
    let value = value?;
    if let Some(date) = value.get("date").and_then(Value::as_str) {
        return Some(EventTime::date(date.parse::<NaiveDate>().unwrap()));
    }
    let at = value.get("dateTime").and_then(Value::as_str)?;
    let zone = value
        .get("timeZone")
        .and_then(Value::as_str)
        .map(|tz| TimeZoneName::new(tz).unwrap());
    Some(EventTime::at(
        DateTime::parse_from_rfc3339(at)
            .unwrap()
            .with_timezone(&Utc),
        zone,
    ))
}

/// What the emulator holds, read back for assertions (the fields the
/// contract looks at; the adapter's own mapping is what is under test).
fn from_json(value: &Value) -> RemoteEvent {
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    let status = match text("status").as_deref() {
        Some("cancelled") => EventStatus::Cancelled,
        Some("tentative") => EventStatus::Tentative,
        _ => EventStatus::Confirmed,
    };
    let private = value.pointer("/extendedProperties/private");
    let entity = private.and_then(|p| {
        let kind = p.get(ENTITY_TYPE_KEY)?.as_str()?;
        let id = p.get(ENTITY_ID_KEY)?.as_str()?;
        EntityRef::new(kind, id).ok()
    });
    RemoteEvent {
        status,
        ical_uid: text("iCalUID"),
        summary: text("summary"),
        description: text("description"),
        location: text("location"),
        start: time_from_json(value.get("start")),
        end: time_from_json(value.get("end")),
        attendees: value
            .get("attendees")
            .and_then(Value::as_array)
            .map(|all| {
                all.iter()
                    .filter_map(|a| a.get("email")?.as_str())
                    .map(|email| Attendee::new(email).unwrap())
                    .collect()
            })
            .unwrap_or_default(),
        etag: text("etag").map(|etag| Etag::new(etag).unwrap()),
        updated: text("updated").map(|at| {
            DateTime::parse_from_rfc3339(&at)
                .unwrap()
                .with_timezone(&Utc)
        }),
        html_link: text("htmlLink"),
        entity,
        ..RemoteEvent::cancelled_stub(EventId::new(text("id").unwrap()).unwrap())
    }
}
