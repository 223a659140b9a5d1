//! Occurrences and exceptions of recurring series in the emulated
//! calendars. An occurrence not stored is computed from its master; a
//! write to one stores it as an exception (its own id, `recurringEventId`,
//! `originalStartTime`), as Google does (recurring events guide, "Modify
//! instances": https://developers.google.com/workspace/calendar/api/guides/recurringevents).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::recurrence::{Series, split_instance_id};
use crate::state::{Calendars, StoredEvent};

impl Calendars {
    /// The master and series of a stored recurring event.
    pub(crate) fn series(
        &self,
        calendar_id: &str,
        master_id: &str,
    ) -> Option<(&StoredEvent, Series)> {
        let master = self.stored(calendar_id, master_id)?;
        let series = Series::of(&master.body).ok()??;
        Some((master, series))
    }

    /// An occurrence of a stored series by its id, computed from the
    /// master. An occurrence of a deleted series is `cancelled`.
    pub(crate) fn occurrence(
        &self,
        calendar_id: &str,
        event_id: &str,
    ) -> Option<Map<String, Value>> {
        let (master_id, key) = split_instance_id(event_id)?;
        let (master, series) = self.series(calendar_id, master_id)?;
        let start = series.parse_key(key)?;
        let mut body = series.instance(&master.body, start);
        if master.cancelled() {
            body.insert("status".into(), json!("cancelled"));
        }
        Some(body)
    }

    /// The stored exceptions of a series.
    pub(crate) fn exceptions<'a>(
        &'a self,
        calendar_id: &str,
        master_id: &'a str,
    ) -> impl Iterator<Item = &'a StoredEvent> + 'a {
        self.events
            .get(calendar_id)
            .into_iter()
            .flat_map(|events| events.values())
            .filter(move |e| {
                e.body.get("recurringEventId").and_then(Value::as_str) == Some(master_id)
            })
    }

    /// Deleting a series deletes its exceptions with it: each becomes a
    /// cancelled change of its own.
    pub(crate) fn cancel_exceptions(
        &mut self,
        calendar_id: &str,
        master_id: &str,
        now: DateTime<Utc>,
    ) {
        let live: Vec<Map<String, Value>> = self
            .exceptions(calendar_id, master_id)
            .filter(|e| !e.cancelled())
            .map(|e| e.body.clone())
            .collect();
        for mut body in live {
            body.insert("status".into(), json!("cancelled"));
            let seq = self.stamp(&mut body, now);
            self.store(calendar_id, body, seq);
        }
    }
}
