//! The times a series is anchored at and yields: an event boundary and the
//! IANA zone it is expressed in. They sit below both series and events (a
//! series needs nothing else of an event), and `crate::event` re-exports
//! them: that is their public home.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Longest time zone name accepted (re-exported in `event::limits`).
pub const TIME_ZONE_CHARS: usize = 64;

/// An IANA time zone name such as `Europe/Berlin`, one the IANA database
/// (chrono-tz) knows.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeZoneName(String);

impl TimeZoneName {
    pub fn new(value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        let well_formed = !value.is_empty()
            && value.len() <= TIME_ZONE_CHARS
            && value.split('/').all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_+-".contains(&b))
            });
        // Google refuses a zone it does not know ("Invalid time zone
        // definition"), so an unknown name is refused here, not dead-lettered.
        if !well_formed || value.parse::<chrono_tz::Tz>().is_err() {
            return Err(Error::invalid(
                "timeZone",
                "must be an IANA time zone name such as Europe/Berlin",
            ));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TimeZoneName {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::new(value)
    }
}

impl From<TimeZoneName> for String {
    fn from(value: TimeZoneName) -> String {
        value.0
    }
}

/// An event boundary: a whole day (Google's `date`) or an instant (`dateTime`)
/// with the time zone it was expressed in. All-day ends are *exclusive*: a
/// one-day event on 1 March ends on 2 March. Dates stay dates: they are never
/// turned into UTC midnights, which would shift them for anyone not on UTC.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", untagged)]
pub enum EventTime {
    AllDay {
        date: NaiveDate,
    },
    At {
        #[serde(rename = "dateTime")]
        at: DateTime<Utc>,
        #[serde(rename = "timeZone", default, skip_serializing_if = "Option::is_none")]
        time_zone: Option<TimeZoneName>,
    },
}

impl EventTime {
    pub fn date(date: NaiveDate) -> Self {
        Self::AllDay { date }
    }

    pub fn at(at: DateTime<Utc>, time_zone: Option<TimeZoneName>) -> Self {
        Self::At { at, time_zone }
    }

    pub fn is_all_day(&self) -> bool {
        matches!(self, Self::AllDay { .. })
    }

    /// An instant to sort and index by: the instant itself, or the date's
    /// start at UTC. Only for ordering and range indexes, never for display.
    pub fn sort_key(&self) -> DateTime<Utc> {
        match self {
            Self::AllDay { date } => date.and_time(NaiveTime::MIN).and_utc(),
            Self::At { at, .. } => *at,
        }
    }
}
