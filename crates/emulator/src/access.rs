//! Access roles per calendar and principal: who may write.
//!
//! calendarList reference, `accessRole`
//! (<https://developers.google.com/workspace/calendar/api/v3/reference/calendarList>):
//! "freeBusyReader - Provides read access to free/busy information.
//! reader - Provides read access to the calendar. ... writer - Provides read
//! and write access to the calendar. ... owner - Provides ownership of the
//! calendar." A write from a principal below `writer` is answered 403
//! `requiredAccessLevel`, "You need to have writer access to this
//! calendar." (see `error::google_message`).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// A principal's access role on a calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AccessRole {
    /// Free/busy only. Here it reads like `reader` (Google would show such
    /// a principal only busy times; not emulated) and cannot write.
    FreeBusyReader,
    /// May read, not write.
    Reader,
    /// May read and write events.
    Writer,
    /// Everything `writer` may, and more; every principal's role unless set.
    Owner,
}

impl AccessRole {
    /// The name Google uses (`accessRole` in events.list answers).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FreeBusyReader => "freeBusyReader",
            Self::Reader => "reader",
            Self::Writer => "writer",
            Self::Owner => "owner",
        }
    }

    /// Whether events may be inserted, changed and deleted.
    pub fn can_write(self) -> bool {
        self >= Self::Writer
    }
}

/// The principal that stands for every principal without a role of its own.
pub const ANY_PRINCIPAL: &str = "*";

/// Roles set through the admin handle, by calendar then principal.
#[derive(Debug, Default)]
pub struct Roles {
    by_calendar: HashMap<String, HashMap<String, AccessRole>>,
}

impl Roles {
    pub fn set(&mut self, calendar_id: &str, principal: &str, role: AccessRole) {
        self.by_calendar
            .entry(calendar_id.to_owned())
            .or_default()
            .insert(principal.to_owned(), role);
    }

    /// The principal's own role, else the calendar's role for any
    /// principal (`*`), else `owner` (what every caller had before roles
    /// existed here).
    pub fn of(&self, calendar_id: &str, principal: &str) -> AccessRole {
        self.by_calendar
            .get(calendar_id)
            .and_then(|roles| {
                roles
                    .get(principal)
                    .or_else(|| roles.get(ANY_PRINCIPAL))
                    .copied()
            })
            .unwrap_or(AccessRole::Owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_role_then_any_principal_then_owner() {
        let mut roles = Roles::default();
        assert_eq!(roles.of("cal", "ada"), AccessRole::Owner);
        roles.set("cal", ANY_PRINCIPAL, AccessRole::Reader);
        roles.set("cal", "ada", AccessRole::Writer);
        assert_eq!(roles.of("cal", "ada"), AccessRole::Writer);
        assert_eq!(roles.of("cal", "bob"), AccessRole::Reader);
        assert_eq!(roles.of("other", "bob"), AccessRole::Owner);
        assert!(!AccessRole::FreeBusyReader.can_write());
        assert!(!AccessRole::Reader.can_write());
        assert!(AccessRole::Writer.can_write() && AccessRole::Owner.can_write());
    }
}
