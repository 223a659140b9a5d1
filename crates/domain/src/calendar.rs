//! Managed calendars: the calendars calsync mirrors, each read and written
//! as its own principal.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::Result;
use crate::event::check_email;
use crate::grant::GrantId;
use crate::ids::CalendarId;

/// A user a Workspace service account acts as through domain-wide
/// delegation (the JWT's `sub`): Google counts quota per principal, and
/// only a user may invite attendees.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Subject(String);

impl Subject {
    pub fn new(email: impl Into<String>) -> Result<Self> {
        let email = email.into();
        check_email("subject", &email)?;
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A calendar calsync mirrors, and whom it acts as for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedCalendar {
    pub calendar_id: CalendarId,
    /// The user calls for this calendar act as; `None`: the deployment's
    /// default (`CALSYNC_GOOGLE_SUBJECT`, else the service account itself).
    pub subject: Option<Subject>,
    /// The connected account calls for this calendar act as (its own
    /// OAuth grant), instead of the service account; never with `subject`.
    pub grant: Option<GrantId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
