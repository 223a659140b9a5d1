//! Identifiers and small validated values. Each has a fallible constructor;
//! only validated values cross a port.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};

fn check_text(field: &'static str, value: &str, max_chars: usize) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.chars().count() > max_chars {
        return Err(Error::invalid(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(value: String) -> Result<Self> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(value: &str) -> Result<Self> {
                Self::new(value)
            }
        }
    };
}

string_id! {
    /// A Google calendar id: often an email address, or `...@group.calendar.google.com`.
    CalendarId
}

impl CalendarId {
    pub fn new(value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        check_text("calendarId", &value, 1024)?;
        if value.chars().any(char::is_whitespace) {
            return Err(Error::invalid("calendarId", "must not contain whitespace"));
        }
        Ok(Self(value))
    }
}

string_id! {
    /// A Google event id as Google reports it. Google's own ids may contain `_`
    /// and upper-case letters (recurring instances: `abc_20240101T100000Z`), so
    /// this accepts any visible ASCII; ids *we* choose are stricter, see
    /// [`EventId::for_local`] and [`EventId::is_client_assignable`].
    EventId
}

impl EventId {
    pub const MIN_CLIENT_LEN: usize = 5;
    pub const MAX_LEN: usize = 1024;

    pub fn new(value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        if value.is_empty() || value.len() > Self::MAX_LEN {
            return Err(Error::invalid(
                "googleEventId",
                "must be 1 to 1024 characters",
            ));
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid(
                "googleEventId",
                "must contain only visible ASCII characters",
            ));
        }
        Ok(Self(value))
    }

    /// Parses an id a client wants Google to use: base32hex (`[a-v0-9]`),
    /// 5 to 1024 characters, as Google requires for client-chosen ids.
    pub fn client_assigned(value: impl Into<String>) -> Result<Self> {
        let id = Self::new(value)?;
        if !id.is_client_assignable() {
            return Err(Error::invalid(
                "googleEventId",
                "must be 5 to 1024 characters of a-v and 0-9",
            ));
        }
        Ok(id)
    }

    /// The id calsync asks Google to use for a local event. It is derived from
    /// the local id alone, so every retry of an insert names the same event and
    /// a retried insert cannot create a duplicate.
    pub fn for_local(local: LocalEventId) -> Self {
        Self(base32hex_lower(local.0.as_bytes()))
    }

    pub fn is_client_assignable(&self) -> bool {
        (Self::MIN_CLIENT_LEN..=Self::MAX_LEN).contains(&self.0.len())
            && self
                .0
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'v').contains(&b))
    }
}

/// RFC 4648 "extended hex" base32, lower case, without padding.
pub fn base32hex_lower(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 0x1f) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(
            ALPHABET[((buffer << (5 - bits)) & 0x1f) as usize],
        ));
    }
    out
}

/// calsync's own id for a mirrored event (stable across Google id changes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LocalEventId(Uuid);

impl LocalEventId {
    #[allow(clippy::new_without_default)] // a random id is not a "default"
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }

    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    pub fn parse(value: &str) -> Result<Self> {
        Uuid::parse_str(value)
            .map(Self)
            .map_err(|_| Error::invalid("id", "must be a UUID"))
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl std::fmt::Display for LocalEventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

string_id! {
    /// A push channel id: at most 64 characters of `[A-Za-z0-9-_+/=]`, as Google requires.
    ChannelId
}

impl ChannelId {
    pub const MAX_LEN: usize = 64;

    pub fn new(value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        if value.is_empty() || value.len() > Self::MAX_LEN {
            return Err(Error::invalid("channelId", "must be 1 to 64 characters"));
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_+/=".contains(&b))
        {
            return Err(Error::invalid(
                "channelId",
                "must contain only letters, digits and - _ + / =",
            ));
        }
        Ok(Self(value))
    }

    /// A fresh channel id (a UUID: 36 characters).
    pub fn random() -> Self {
        Self(Uuid::new_v4().to_string())
    }
}

string_id! {
    /// The opaque id Google gives the watched resource (`X-Goog-Resource-ID`).
    ResourceId
}

impl ResourceId {
    pub fn new(value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        check_text("resourceId", &value, 256)?;
        Ok(Self(value))
    }
}

string_id! {
    /// An HTTP entity tag as Google returns it, quotes included (`"3181161784712000"`).
    Etag
}

impl Etag {
    pub fn new(value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        check_text("etag", &value, 256)?;
        Ok(Self(value))
    }
}

/// The business entity an event belongs to, e.g. `("deal", "4711")`. It is also
/// written to Google as the event's private extended properties.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityRef {
    entity_type: String,
    entity_id: String,
}

impl EntityRef {
    /// Google caps an extended property value at 1024 characters; the type is
    /// kept short and simple so it can be used in indexes and URLs.
    pub fn new(entity_type: impl Into<String>, entity_id: impl Into<String>) -> Result<Self> {
        let entity_type = entity_type.into();
        let entity_id = entity_id.into();
        if entity_type.is_empty() || entity_type.len() > 64 {
            return Err(Error::invalid("entityType", "must be 1 to 64 characters"));
        }
        if !entity_type
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b))
        {
            return Err(Error::invalid(
                "entityType",
                "must contain only letters, digits and _ - . :",
            ));
        }
        check_text("entityId", &entity_id, 256)?;
        Ok(Self {
            entity_type,
            entity_id,
        })
    }

    pub fn entity_type(&self) -> &str {
        &self.entity_type
    }

    pub fn entity_id(&self) -> &str {
        &self.entity_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32hex_matches_rfc4648_vectors() {
        // RFC 4648 section 10, extended hex alphabet, lower-cased and unpadded.
        assert_eq!(base32hex_lower(b""), "");
        assert_eq!(base32hex_lower(b"f"), "co");
        assert_eq!(base32hex_lower(b"fo"), "cpng");
        assert_eq!(base32hex_lower(b"foo"), "cpnmu");
        assert_eq!(base32hex_lower(b"foob"), "cpnmuog");
        assert_eq!(base32hex_lower(b"fooba"), "cpnmuoj1");
        assert_eq!(base32hex_lower(b"foobar"), "cpnmuoj1e8");
    }

    #[test]
    fn generated_event_ids_are_valid_and_deterministic() {
        for _ in 0..200 {
            let local = LocalEventId::new();
            let id = EventId::for_local(local);
            assert!(id.is_client_assignable(), "{id} is not base32hex");
            assert_eq!(id.as_str().len(), 26);
            assert_eq!(
                id,
                EventId::for_local(local),
                "same local id, same Google id"
            );
            assert!(EventId::client_assigned(id.as_str()).is_ok());
        }
        assert_ne!(
            EventId::for_local(LocalEventId::new()),
            EventId::for_local(LocalEventId::new())
        );
    }

    #[test]
    fn client_assigned_ids_follow_googles_alphabet_and_length() {
        assert!(EventId::client_assigned("abcd").is_err(), "too short");
        assert!(EventId::client_assigned("abcde").is_ok());
        assert!(
            EventId::client_assigned("abcdw").is_err(),
            "w is not base32hex"
        );
        assert!(EventId::client_assigned("ABCDE").is_err(), "upper case");
        assert!(EventId::client_assigned("a".repeat(1024)).is_ok());
        assert!(EventId::client_assigned("a".repeat(1025)).is_err());
        // Google's own instance ids are accepted as ids, but are not client-assignable.
        let instance = EventId::new("abc123_20240101T100000Z").unwrap();
        assert!(!instance.is_client_assignable());
        assert!(EventId::new("has space").is_err());
        assert!(EventId::new("").is_err());
    }

    #[test]
    fn channel_ids_are_bounded() {
        assert!(ChannelId::new("a".repeat(64)).is_ok());
        assert!(ChannelId::new("a".repeat(65)).is_err());
        assert!(ChannelId::new("bad id").is_err());
        assert!(ChannelId::new(ChannelId::random().as_str()).is_ok());
    }

    #[test]
    fn calendar_and_entity_validation() {
        assert!(CalendarId::new("team@example.com").is_ok());
        assert!(CalendarId::new("").is_err());
        assert!(CalendarId::new("a b").is_err());
        assert!(EntityRef::new("deal", "4711").is_ok());
        assert!(EntityRef::new("", "4711").is_err());
        assert!(EntityRef::new("deal type", "1").is_err());
        assert!(EntityRef::new("deal", "").is_err());
        assert!(EntityRef::new("deal", "x".repeat(257)).is_err());
        let err = EntityRef::new("deal", "a\nb").unwrap_err();
        assert!(matches!(
            err,
            Error::Invalid {
                field: "entityId",
                ..
            }
        ));
    }

    #[test]
    fn ids_deserialize_through_validation() {
        let ok: CalendarId = serde_json::from_str("\"a@b.c\"").unwrap();
        assert_eq!(ok.as_str(), "a@b.c");
        assert!(serde_json::from_str::<CalendarId>("\"\"").is_err());
    }
}
