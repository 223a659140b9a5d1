//! [`CalendarStore`] for [`MemoryStore`].

use async_trait::async_trait;

use super::{MemoryStore, micros};
use crate::calendar::ManagedCalendar;
use crate::error::Result;
use crate::ids::CalendarId;
use crate::ports::CalendarStore;
use crate::testing::lock;

#[async_trait]
impl CalendarStore for MemoryStore {
    async fn upsert_calendar(&self, calendar: &ManagedCalendar) -> Result<ManagedCalendar> {
        let mut state = lock(&self.state);
        let created_at = state
            .calendars
            .get(&calendar.calendar_id)
            .map_or(micros(calendar.created_at), |known| known.created_at);
        let stored = ManagedCalendar {
            calendar_id: calendar.calendar_id.clone(),
            subject: calendar.subject.clone(),
            grant: calendar.grant.clone(),
            created_at,
            updated_at: micros(calendar.updated_at),
        };
        state
            .calendars
            .insert(calendar.calendar_id.clone(), stored.clone());
        Ok(stored)
    }

    async fn get_calendar(&self, calendar_id: &CalendarId) -> Result<Option<ManagedCalendar>> {
        Ok(lock(&self.state).calendars.get(calendar_id).cloned())
    }

    async fn list_calendars(&self) -> Result<Vec<ManagedCalendar>> {
        // A BTreeMap: in calendar id order.
        Ok(lock(&self.state).calendars.values().cloned().collect())
    }

    async fn delete_calendar(&self, calendar_id: &CalendarId) -> Result<bool> {
        Ok(lock(&self.state).calendars.remove(calendar_id).is_some())
    }
}
