//! Writes to events: insert, patch and update, delete, and the change a
//! conference becoming ready makes.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::{Calendars, Notification, WriteOptions, timestamp};
use crate::error::ApiError;
use crate::event_types;
use crate::invited;
use crate::recurrence::{Series, normalize_times, require_zone};

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

/// Google accepts client ids of base32hex characters, 5 to 1024 long.
fn valid_client_id(id: &str) -> bool {
    (5..=1024).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'v').contains(&b))
}

impl Calendars {
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
