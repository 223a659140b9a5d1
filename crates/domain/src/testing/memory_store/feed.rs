//! [`ChangeFeedStore`] for [`MemoryStore`]: the feed is appended to under
//! the store's one lock by every write (see `StoreState::record`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{MemoryStore, micros};
use crate::error::{Error, Result};
use crate::feed::{ChangeBatch, ChangeQuery, Cursor};
use crate::ports::ChangeFeedStore;
use crate::testing::lock;

#[async_trait]
impl ChangeFeedStore for MemoryStore {
    async fn read_changes(&self, query: &ChangeQuery) -> Result<ChangeBatch> {
        let state = lock(&self.state);
        let after = match query.after {
            Some(after) if after.seq() < state.purged_through => {
                return Err(Error::CursorExpired {
                    reason: format!(
                        "changes up to {} were purged; list the events, then read from GET /calendar/changes/latest",
                        Cursor::from_seq(state.purged_through)
                    ),
                });
            }
            Some(after) => after,
            None => Cursor::START,
        };
        let latest = Cursor::from_seq(state.last_change_seq);
        let items: Vec<_> = state
            .changes
            .iter()
            .filter(|c| c.cursor > after && query.matches(&c.change))
            .take(query.limit as usize)
            .cloned()
            .collect();
        let next_cursor = match items.last() {
            Some(last) if items.len() >= query.limit as usize => last.cursor,
            _ => latest.max(after),
        };
        Ok(ChangeBatch { items, next_cursor })
    }

    async fn latest_cursor(&self) -> Result<Cursor> {
        Ok(Cursor::from_seq(lock(&self.state).last_change_seq))
    }

    async fn purge_changes(&self, before: DateTime<Utc>, limit: u32) -> Result<u64> {
        let before = micros(before);
        let mut state = lock(&self.state);
        let due = state
            .changes
            .iter()
            .take(limit as usize)
            .take_while(|c| c.change.occurred_at < before)
            .count();
        if let Some(last) = due.checked_sub(1).and_then(|i| state.changes.get(i)) {
            state.purged_through = state.purged_through.max(last.cursor.seq());
        }
        state.changes.drain(..due);
        Ok(due as u64)
    }
}
