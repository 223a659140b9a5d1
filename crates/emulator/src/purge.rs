//! Deleted events disappear after a while.
//!
//! Events reference, `status`
//! (<https://developers.google.com/workspace/calendar/api/v3/reference/events>):
//! deleted events "are only guaranteed to have the id field"; Google keeps
//! them for a while and publishes no retention time (our field notes: they
//! eventually disappear, and are then 404).
//! Here a deleted event is purged once it has been deleted for
//! [`crate::EmulatorConfig::deleted_event_purge_after`] (never by default):
//! it is gone from get, writes (404 `notFound`) and every listing. Its id
//! stays reserved (an insert with it is 409 `duplicate`, as for a deleted
//! event: Google documents no end to the reservation, so the stricter
//! reading). A sync token from before a purged deletion can no longer
//! report it, so it is answered 410 `fullSyncRequired`, as Google answers
//! a token it will not serve.
//!
//! Cancelled exceptions of a live series are never purged: Google tells
//! clients to store them for the lifetime of the parent series (field
//! notes, "Recurring events"), and they are what removes an occurrence. A series purged takes its exceptions
//! with it.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::state::{Calendars, StoredEvent};

/// When a cancelled event was deleted: its last `updated`.
fn deleted_at(event: &StoredEvent) -> Option<DateTime<Utc>> {
    if !event.cancelled() {
        return None;
    }
    event
        .body
        .get("updated")
        .and_then(Value::as_str)
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .map(|at| at.with_timezone(&Utc))
}

impl Calendars {
    /// Purges the calendar's events deleted longer ago than the purge age.
    /// Costs a pass over the calendar, only when a purge age is set.
    pub fn purge(&mut self, calendar_id: &str, now: DateTime<Utc>) {
        let Some(age) = self.purge_after else {
            return;
        };
        let Some(events) = self.events.get(calendar_id) else {
            return;
        };
        let Some(cutoff) = now.checked_sub_signed(age) else {
            return;
        };
        let due = |event: &StoredEvent| deleted_at(event).is_some_and(|at| at <= cutoff);
        let parent = |event: &StoredEvent| {
            event
                .body
                .get("recurringEventId")
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let mut gone: HashSet<String> = events
            .iter()
            .filter(|(_, event)| parent(event).is_none() && due(event))
            .map(|(id, _)| id.clone())
            .collect();
        let exceptions: Vec<String> = events
            .iter()
            .filter(|(_, event)| due(event))
            .filter(|(_, event)| {
                parent(event)
                    .is_some_and(|master| gone.contains(&master) || !events.contains_key(&master))
            })
            .map(|(id, _)| id.clone())
            .collect();
        gone.extend(exceptions);
        if gone.is_empty() {
            return;
        }
        let mut highest = 0;
        if let Some(events) = self.events.get_mut(calendar_id) {
            for id in &gone {
                if let Some(event) = events.remove(id) {
                    highest = highest.max(event.seq);
                }
            }
        }
        let seq = self.purged_seq.entry(calendar_id.to_owned()).or_default();
        *seq = (*seq).max(highest);
        self.purged
            .entry(calendar_id.to_owned())
            .or_default()
            .extend(gone);
    }
}
