//! A change applied to an event: what Google lets this calendar change
//! (`copies`), then the merged event (`changes`). Kept apart so the rules
//! about copies may read changes without changes depending on them.

use chrono::{DateTime, Utc};

use crate::error::Result;

use super::changes::EventChanges;
use super::copies::check_copy_change;
use super::types::Event;

impl EventChanges {
    /// Applies the changes to a copy of `event`, validating the result as a
    /// whole (a new start must still precede the old end, and so on), and
    /// the change itself against what Google lets this calendar change
    /// ([`check_copy_change`]: invitations, locked copies).
    pub fn apply_to(&self, event: &Event, now: DateTime<Utc>) -> Result<Event> {
        check_copy_change(event, self)?;
        self.merged_into(event, now)
    }
}
