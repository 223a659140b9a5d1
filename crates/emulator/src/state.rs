//! The emulated calendars: events with a change sequence, sync and page
//! tokens, channels. Everything here is synchronous and runs under one lock.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use chrono::{DateTime, SecondsFormat, Utc};
use rand::Rng;
use serde_json::{Map, Value, json};
use sha2::Digest;

use crate::access::Roles;
use crate::conference::Conferences;
use crate::error::ApiError;
use crate::event_types;
use crate::invited;
use crate::recurrence::{Series, normalize_times, require_zone};

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

#[derive(Debug, Clone)]
pub struct Channel {
    pub id: String,
    pub calendar_id: String,
    pub resource_id: String,
    pub resource_uri: String,
    pub token: Option<String>,
    pub address: String,
    pub expiration: DateTime<Utc>,
    pub next_message: u64,
    /// The watch's `eventTypes`: only changes to these types notify
    /// (all types when empty).
    pub event_types: Vec<String>,
    /// The principal that made the watch: only it may stop the channel.
    pub principal: String,
}

/// A notification to deliver, in order, for one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub channel_id: String,
    pub token: Option<String>,
    pub address: String,
    pub resource_id: String,
    pub resource_uri: String,
    pub expiration: DateTime<Utc>,
    pub state: &'static str,
    pub message_number: u64,
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

/// A body's `status` that restores a deleted event. Google keeps a deleted
/// event as `status: cancelled` (events resource, `status`:
/// https://developers.google.com/workspace/calendar/api/v3/reference/events),
/// and an update or patch setting the status back undeletes it: behaviour
/// observed of Google (our field notes), not spelled out in the reference.
fn restores(changes: &Map<String, Value>) -> bool {
    matches!(
        changes.get("status").and_then(Value::as_str),
        Some("confirmed" | "tentative")
    )
}

/// Google delivers push notifications only to HTTPS addresses and refuses
/// others at watch time ("an HTTPS server", push guide:
/// https://developers.google.com/workspace/calendar/api/guides/push).
/// Plain HTTP to a loopback host stays allowed: the emulator delivers only
/// over plain HTTP, to local receivers.
fn webhook_address_allowed(address: &str) -> bool {
    if address.starts_with("https://") {
        return true;
    }
    let Some(rest) = address.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Google accepts client ids of base32hex characters, 5 to 1024 long.
fn valid_client_id(id: &str) -> bool {
    (5..=1024).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'v').contains(&b))
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

    /// Queues an `exists` notification on every live channel of the
    /// calendar that watches events of this type.
    pub(crate) fn announce(
        &mut self,
        calendar_id: &str,
        event_type: &str,
        now: DateTime<Utc>,
    ) -> Vec<Notification> {
        let mut out = Vec::new();
        for channel in self.channels.values_mut() {
            if channel.calendar_id == calendar_id
                && channel.expiration > now
                && (channel.event_types.is_empty()
                    || channel.event_types.iter().any(|t| t == event_type))
            {
                out.push(notification(channel, "exists"));
            }
        }
        out
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

    pub fn insert(
        &mut self,
        calendar_id: &str,
        mut body: Map<String, Value>,
        now: DateTime<Utc>,
        options: WriteOptions,
    ) -> Result<(Value, Vec<Notification>), ApiError> {
        normalize_times(&mut body)?;
        let id = match body.get("id").and_then(Value::as_str) {
            Some(id) if !valid_client_id(id) => {
                return Err(ApiError::bad_request(
                    "invalid",
                    "Invalid resource id value.",
                ));
            }
            Some(id) => id.to_owned(),
            None => uuid::Uuid::new_v4().simple().to_string(),
        };
        // Deleted events keep their ids reserved, purged ones too (field
        // notes: a deleted id re-inserted is 409; Google documents no end to
        // that reservation).
        if self.stored(calendar_id, &id).is_some()
            || self
                .purged
                .get(calendar_id)
                .is_some_and(|ids| ids.contains(&id))
        {
            return Err(ApiError::new(
                409,
                "duplicate",
                "The requested identifier already exists.",
            ));
        }
        event_types::check_insert(&mut body, options.admin)?;
        Series::of(&body)?;
        if !options.admin {
            require_zone(&body)?;
            // Events reference: `organizer` is "Read-only, except when
            // importing an event" and `locked` is read-only, so an API
            // insert makes this calendar the organizer of an unlocked event.
            // The admin handle seeds invited copies and locked events.
            body.remove("organizer");
            body.remove("locked");
            self.conferences.apply(
                calendar_id,
                &id,
                &mut body,
                None,
                options.conference_data_version,
            )?;
        }
        body.insert("id".into(), json!(id));
        body.insert("kind".into(), json!("calendar#event"));
        body.entry("status").or_insert(json!("confirmed"));
        body.insert("created".into(), json!(timestamp(now)));
        body.insert("iCalUID".into(), json!(format!("{id}@google.com")));
        body.insert(
            "htmlLink".into(),
            json!(format!("{}/event?eid={id}", self.base_url)),
        );
        body.entry("organizer")
            .or_insert(json!({"email": calendar_id, "self": true}));
        let seq = self.stamp(&mut body, now);
        let value = Value::Object(body.clone());
        let event_type = event_types::of(&body).to_owned();
        self.store(calendar_id, body, seq);
        Ok((value, self.announce(calendar_id, &event_type, now)))
    }

    /// The event a write applies to: stored, or an occurrence of a stored
    /// series (the write then makes it an exception). A deleted event
    /// answers 410 `deleted` unless the write `restores` it; an occurrence
    /// of a deleted series always does. Returns the body and whether it is
    /// stored.
    fn writable(
        &self,
        calendar_id: &str,
        event_id: &str,
        if_match: Option<&str>,
        restores: bool,
    ) -> Result<(Map<String, Value>, bool), ApiError> {
        let (body, stored) = match self.stored(calendar_id, event_id) {
            Some(event) => (event.body.clone(), true),
            None => (
                self.occurrence(calendar_id, event_id)
                    .ok_or_else(ApiError::not_found)?,
                false,
            ),
        };
        let cancelled = body.get("status").and_then(Value::as_str) == Some("cancelled");
        if cancelled && !(restores && stored) {
            return Err(ApiError::new(410, "deleted", "Resource has been deleted"));
        }
        if let Some(expected) = if_match
            && expected != "*"
            && body.get("etag").and_then(Value::as_str) != Some(expected)
        {
            return Err(ApiError::new(412, "conditionNotMet", "Precondition Failed"));
        }
        Ok((body, stored))
    }

    /// `events.patch` (merge) or `events.update` (replace). A body setting
    /// `status` to `confirmed` or `tentative` restores a deleted event. On
    /// an occurrence id, the write makes (or changes) an exception.
    #[allow(clippy::too_many_arguments)]
    pub fn modify(
        &mut self,
        calendar_id: &str,
        event_id: &str,
        changes: Map<String, Value>,
        replace: bool,
        if_match: Option<&str>,
        now: DateTime<Utc>,
        options: WriteOptions,
    ) -> Result<(Value, Vec<Notification>), ApiError> {
        let mut changes = changes;
        if !options.admin {
            // Read-only fields (events reference): the stored ones stay.
            changes.remove("organizer");
            changes.remove("locked");
        }
        let restoring = restores(&changes);
        let (old, _) = self.writable(calendar_id, event_id, if_match, restoring)?;
        if !options.admin {
            event_types::check_change(&old, &changes, replace)?;
        }
        let instance = old.contains_key("recurringEventId");
        if instance
            && changes
                .get("recurrence")
                .and_then(Value::as_array)
                .is_some_and(|lines| !lines.is_empty())
        {
            return Err(ApiError::bad_request(
                "invalid",
                "An instance of a recurring event cannot have a recurrence.",
            ));
        }
        let mut body = old.clone();
        if replace {
            let keep: Vec<(String, Value)> = [
                "id",
                "kind",
                "created",
                "iCalUID",
                "htmlLink",
                "organizer",
                "locked",
                "recurringEventId",
                "originalStartTime",
                "birthdayProperties",
            ]
            .iter()
            .filter_map(|k| body.get(*k).map(|v| ((*k).to_owned(), v.clone())))
            .collect();
            body = changes;
            body.extend(keep);
            body.entry("status").or_insert(json!("confirmed"));
        } else {
            merge(&mut body, changes);
        }
        if instance {
            body.remove("recurrence");
        }
        body.insert("id".into(), json!(event_id));
        body.insert("eventType".into(), json!(event_types::of(&old)));
        normalize_times(&mut body)?;
        Series::of(&body)?;
        if !options.admin {
            require_zone(&body)?;
            // Conference data a version-0 write carries is not applied, so
            // it is no change of the attendee's either.
            let ignored: &[&str] = if options.conference_data_version == 0 {
                &["conferenceData", "hangoutLink"]
            } else {
                &[]
            };
            invited::keep_read_only_attendee_keys(&old, &mut body);
            invited::check_change(calendar_id, &old, &body, ignored)?;
            self.conferences.apply(
                calendar_id,
                event_id,
                &mut body,
                Some(&old),
                options.conference_data_version,
            )?;
        }
        let seq = self.stamp(&mut body, now);
        let value = Value::Object(body.clone());
        let event_type = event_types::of(&body).to_owned();
        self.store(calendar_id, body, seq);
        Ok((value, self.announce(calendar_id, &event_type, now)))
    }

    /// `events.delete`: the event stays, as `cancelled`. `If-Match` is
    /// checked as for patch. Deleting an occurrence makes a cancelled
    /// exception; deleting a series cancels its exceptions with it.
    pub fn delete(
        &mut self,
        calendar_id: &str,
        event_id: &str,
        if_match: Option<&str>,
        now: DateTime<Utc>,
        options: WriteOptions,
    ) -> Result<Vec<Notification>, ApiError> {
        let (mut body, stored) = self.writable(calendar_id, event_id, if_match, false)?;
        if !options.admin {
            event_types::check_delete(&body)?;
        }
        body.insert("status".into(), json!("cancelled"));
        let seq = self.stamp(&mut body, now);
        let series = stored && body.contains_key("recurrence");
        let event_type = event_types::of(&body).to_owned();
        self.store(calendar_id, body, seq);
        if series {
            self.cancel_exceptions(calendar_id, event_id, now);
        }
        Ok(self.announce(calendar_id, &event_type, now))
    }

    /// Conferences created by earlier writes are ready now: their events
    /// change (new etag) and watchers hear of it.
    pub fn settle_conferences(
        &mut self,
        calendar_id: &str,
        now: DateTime<Utc>,
    ) -> Vec<Notification> {
        let mut out = Vec::new();
        for id in self.conferences.settle(calendar_id) {
            let Some(mut body) = self.stored(calendar_id, &id).map(|e| e.body.clone()) else {
                continue;
            };
            if self.conferences.ready_form(calendar_id, &mut body) {
                let seq = self.stamp(&mut body, now);
                let event_type = event_types::of(&body).to_owned();
                self.store(calendar_id, body, seq);
                out.extend(self.announce(calendar_id, &event_type, now));
            }
        }
        out
    }

    /// A channel on `calendar_id`'s events, made by `principal`.
    pub fn watch(
        &mut self,
        calendar_id: &str,
        principal: &str,
        request: &Value,
        now: DateTime<Utc>,
        max_ttl: chrono::Duration,
        event_types: Vec<String>,
    ) -> Result<(Value, Notification), ApiError> {
        let text = |key: &str| request.get(key).and_then(Value::as_str).map(str::to_owned);
        let id = text("id")
            .filter(|id| !id.is_empty() && id.len() <= 64)
            .ok_or_else(|| {
                ApiError::bad_request("invalid", "Channel id must be 1 to 64 characters.")
            })?;
        if text("type").as_deref() != Some("web_hook") {
            return Err(ApiError::bad_request(
                "invalid",
                "Channel type must be web_hook.",
            ));
        }
        let address = text("address")
            .filter(|a| a.starts_with("http://") || a.starts_with("https://"))
            .ok_or_else(|| {
                ApiError::bad_request("invalid", "Channel address must be an http(s) URL.")
            })?;
        if !webhook_address_allowed(&address) {
            // Google's reason and message for an http address.
            return Err(ApiError::bad_request(
                "push.webhookUrlNotHttps",
                format!("WebHook callback must be HTTPS: {address}"),
            ));
        }
        let token = text("token");
        if token.as_ref().is_some_and(|t| t.len() > 256) {
            return Err(ApiError::bad_request(
                "invalid",
                "Channel token is longer than 256 characters.",
            ));
        }
        if self.channels.contains_key(&id) {
            return Err(ApiError::bad_request(
                "channelIdNotUnique",
                "Channel id not unique.",
            ));
        }
        let requested = request
            .get("params")
            .and_then(|p| p.get("ttl"))
            .and_then(Value::as_str)
            .and_then(|ttl| ttl.parse::<i64>().ok())
            .map_or(chrono::Duration::days(7), chrono::Duration::seconds);
        let expiration = now + requested.min(max_ttl).max(chrono::Duration::seconds(1));
        let resource_id = format!("res{}", uuid::Uuid::new_v4().simple());
        let resource_uri = format!(
            "{}/calendar/v3/calendars/{}/events?alt=json",
            self.base_url,
            crate::encode_path(calendar_id)
        );
        let mut channel = Channel {
            id: id.clone(),
            calendar_id: calendar_id.to_owned(),
            resource_id: resource_id.clone(),
            resource_uri: resource_uri.clone(),
            token: token.clone(),
            address: address.clone(),
            expiration,
            next_message: 1,
            event_types,
            principal: principal.to_owned(),
        };
        let sync = notification(&mut channel, "sync");
        self.channels.insert(id.clone(), channel);
        let mut body = json!({
            "kind": "api#channel",
            "id": id,
            "resourceId": resource_id,
            "resourceUri": resource_uri,
            // Unix milliseconds as a string, as Google sends it.
            "expiration": expiration.timestamp_millis().to_string(),
        });
        if let Some(token) = token {
            body["token"] = json!(token);
        }
        Ok((body, sync))
    }

    /// `channels.stop` by `principal`. The channel must be named by its id
    /// and resource id, and stopped by the principal that watched: Google's
    /// channels.stop reference
    /// (<https://developers.google.com/calendar/api/v3/reference/channels/stop>)
    /// says nothing of who may stop a channel, and the push guide
    /// (<https://developers.google.com/calendar/api/guides/push>) only that a
    /// channel "is associated both with a particular user and a particular
    /// resource" and that its id is unique within the project. Refusing any
    /// other principal is the conservative reading; the refusal is the
    /// answer for an unknown channel (404 `notFound`, "Channel '<id>' not
    /// found for project."), so a caller cannot tell the two apart.
    pub fn stop(&mut self, principal: &str, request: &Value) -> Result<(), ApiError> {
        let id = request
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let resource_id = request
            .get("resourceId")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match self.channels.get(id) {
            Some(channel)
                if channel.resource_id == resource_id && channel.principal == principal =>
            {
                self.channels.remove(id);
                Ok(())
            }
            _ => Err(ApiError::new(
                404,
                "notFound",
                format!("Channel '{id}' not found for project."),
            )),
        }
    }
}

/// Patch semantics as Google documents them (performance guide, "Patch
/// (partial update)":
/// https://developers.google.com/workspace/calendar/api/guides/performance#patch):
/// fields given replace the stored ones, nested objects merge key by key
/// (so `{"start": {"dateTime": ..}}` keeps `start.timeZone`, and
/// extended properties merge their keys), arrays are replaced whole, and
/// an explicit `null` deletes the field.
fn merge(body: &mut Map<String, Value>, changes: Map<String, Value>) {
    for (key, value) in changes {
        match value {
            Value::Null => {
                body.remove(&key);
            }
            Value::Object(incoming) => {
                // Merged into what is stored; into nothing when the stored
                // value is absent or not an object, so nulls inside still
                // only delete.
                let slot = body.entry(key).or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(existing) = slot {
                    merge(existing, incoming);
                }
            }
            value => {
                body.insert(key, value);
            }
        }
    }
}

fn notification(channel: &mut Channel, state: &'static str) -> Notification {
    // Google: message numbers "increase but are not sequential" (push guide,
    // https://developers.google.com/workspace/calendar/api/guides/push), so
    // receivers must not expect +1 steps. The first (`sync`) one is 1.
    let message_number = channel.next_message;
    channel.next_message += rand::rng().random_range(1..=3u64);
    Notification {
        channel_id: channel.id.clone(),
        token: channel.token.clone(),
        address: channel.address.clone(),
        resource_id: channel.resource_id.clone(),
        resource_uri: channel.resource_uri.clone(),
        expiration: channel.expiration,
        state,
        message_number,
    }
}
