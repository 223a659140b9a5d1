//! The rest of Google's event that calsync maps: its type, reminders,
//! visibility, colour and conference. Whatever else Google sends stays in
//! the row's verbatim copy ([`super::Event::google`]).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Google's `eventType` (events resource:
/// https://developers.google.com/workspace/calendar/api/v3/reference/events).
/// A type Google adds later is kept by name as `Other`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum EventType {
    #[default]
    Default,
    Birthday,
    FocusTime,
    FromGmail,
    OutOfOffice,
    WorkingLocation,
    Other(String),
}

impl EventType {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Default => "default",
            Self::Birthday => "birthday",
            Self::FocusTime => "focusTime",
            Self::FromGmail => "fromGmail",
            Self::OutOfOffice => "outOfOffice",
            Self::WorkingLocation => "workingLocation",
            Self::Other(name) => name,
        }
    }

    pub fn parse(value: &str) -> Self {
        match value {
            "" | "default" => Self::Default,
            "birthday" => Self::Birthday,
            "focusTime" => Self::FocusTime,
            "fromGmail" => Self::FromGmail,
            "outOfOffice" => Self::OutOfOffice,
            "workingLocation" => Self::WorkingLocation,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Whether calsync writes events of this type. Google restricts what
    /// may change on birthday and fromGmail events and ties focus time,
    /// out-of-office and working-location entries to their own properties
    /// (event types guide:
    /// https://developers.google.com/workspace/calendar/api/guides/event-types),
    /// so calsync, which writes ordinary meetings, refuses them up front
    /// instead of having Google refuse the push later.
    pub fn writable(&self) -> bool {
        matches!(self, Self::Default)
    }

    /// The refusal of a write to an event of a type calsync does not write.
    pub fn check_writable(&self) -> Result<()> {
        if self.writable() {
            Ok(())
        } else {
            Err(Error::unprocessable(
                "eventType",
                format!(
                    "{} events are managed by Google and cannot be changed through calsync",
                    self.as_str()
                ),
            ))
        }
    }
}

impl From<String> for EventType {
    fn from(value: String) -> Self {
        Self::parse(&value)
    }
}

impl From<EventType> for String {
    fn from(value: EventType) -> String {
        value.as_str().to_owned()
    }
}

/// One reminder override.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReminderOverride {
    /// `email` or `popup`.
    pub method: String,
    pub minutes: u32,
}

/// Google's `reminders`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reminders {
    #[serde(default)]
    pub use_default: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<ReminderOverride>,
}

/// How a conference request stands at Google (`createRequest.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConferenceStatus {
    /// Asked for here; not yet sent to, or not yet answered by, Google.
    Requested,
    Pending,
    Success,
    Failure,
}

/// A way into a conference (`conferenceData.entryPoints[]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryPoint {
    /// `video`, `phone`, `sip` or `more`.
    pub entry_point_type: String,
    pub uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// The event's conference (`conferenceData`), or a request for one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conference {
    /// The `createRequest.requestId` calsync sent: derived from the local
    /// id, so a retried insert asks for the same conference, and Google
    /// (idempotent per request id) creates it once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub status: ConferenceStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conference_id: Option<String>,
    /// `hangoutsMeet`, `addOn`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solution: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entry_points: Vec<EntryPoint>,
}

impl Conference {
    /// A Meet conference to ask Google for with the event's insert.
    pub fn meet_request(request_id: String) -> Self {
        Self {
            request_id: Some(request_id),
            status: ConferenceStatus::Requested,
            conference_id: None,
            solution: Some("hangoutsMeet".into()),
            entry_points: Vec::new(),
        }
    }

    /// Whether a push must still ask Google to create it.
    pub fn needs_creating(&self) -> bool {
        self.status == ConferenceStatus::Requested && self.conference_id.is_none()
    }
}

/// Google's fields beyond the core ones, mapped. All optional: an event
/// shows what Google (or its writer) set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminders: Option<Reminders>,
    /// `default`, `public`, `private` or `confidential`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
    /// `opaque` (busy) or `transparent` (free).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transparency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hangout_link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conference: Option<Conference>,
}

impl EventDetails {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// Checks what a caller may set: Google's value sets, and reminders
    /// Google accepts (at most 5 overrides, up to four weeks ahead).
    pub fn check(&self) -> Result<()> {
        one_of("visibility", self.visibility.as_deref(), &VISIBILITIES)?;
        one_of(
            "transparency",
            self.transparency.as_deref(),
            &TRANSPARENCIES,
        )?;
        if let Some(color) = &self.color_id
            && !(color.len() <= 2 && !color.is_empty() && color.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(Error::invalid(
                "colorId",
                "must be one of Google's event colour ids, \"1\" to \"11\"",
            ));
        }
        if let Some(reminders) = &self.reminders {
            if reminders.overrides.len() > 5 {
                return Err(Error::invalid("reminders", "at most 5 overrides"));
            }
            for reminder in &reminders.overrides {
                one_of(
                    "reminders.method",
                    Some(reminder.method.as_str()),
                    &["email", "popup"],
                )?;
                if reminder.minutes > 40_320 {
                    return Err(Error::invalid(
                        "reminders.minutes",
                        "must be 0 to 40320 (four weeks)",
                    ));
                }
            }
        }
        Ok(())
    }
}

const VISIBILITIES: [&str; 4] = ["default", "public", "private", "confidential"];
const TRANSPARENCIES: [&str; 2] = ["opaque", "transparent"];

fn one_of(field: &'static str, value: Option<&str>, allowed: &[&str]) -> Result<()> {
    match value {
        Some(value) if !allowed.contains(&value) => Err(Error::invalid(
            field,
            format!("must be one of {}", allowed.join(", ")),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_round_trip_by_googles_names() {
        for name in [
            "default",
            "birthday",
            "focusTime",
            "fromGmail",
            "outOfOffice",
            "workingLocation",
            "somethingNew",
        ] {
            assert_eq!(EventType::parse(name).as_str(), name);
        }
        assert_eq!(EventType::parse(""), EventType::Default);
        let json = serde_json::to_string(&EventType::FocusTime).unwrap();
        assert_eq!(json, "\"focusTime\"");
    }

    #[test]
    fn only_default_events_are_written() {
        assert!(EventType::Default.check_writable().is_ok());
        let err = EventType::Birthday.check_writable().unwrap_err();
        assert!(err.to_string().contains("birthday"), "{err}");
        assert!(EventType::Other("x".into()).check_writable().is_err());
    }

    #[test]
    fn details_are_checked_against_googles_value_sets() {
        let mut details = EventDetails {
            visibility: Some("private".into()),
            color_id: Some("11".into()),
            ..EventDetails::default()
        };
        assert!(details.check().is_ok());
        details.visibility = Some("secret".into());
        assert!(details.check().is_err());
        details.visibility = None;
        details.reminders = Some(Reminders {
            use_default: false,
            overrides: vec![ReminderOverride {
                method: "sms".into(),
                minutes: 10,
            }],
        });
        assert!(details.check().is_err());
    }
}
