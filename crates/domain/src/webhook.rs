//! Google push notifications: channel tokens and header parsing.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::ids::{CalendarId, ChannelId, ResourceId};

pub mod headers {
    pub const CHANNEL_ID: &str = "X-Goog-Channel-ID";
    pub const CHANNEL_TOKEN: &str = "X-Goog-Channel-Token";
    pub const CHANNEL_EXPIRATION: &str = "X-Goog-Channel-Expiration";
    pub const RESOURCE_ID: &str = "X-Goog-Resource-ID";
    pub const RESOURCE_URI: &str = "X-Goog-Resource-URI";
    pub const RESOURCE_STATE: &str = "X-Goog-Resource-State";
    pub const MESSAGE_NUMBER: &str = "X-Goog-Message-Number";
    pub const CHANGED: &str = "X-Goog-Changed";
}

/// Google's cap on a channel token's length.
pub const MAX_TOKEN_LEN: usize = 256;
const MAX_RESOURCE_URI_LEN: usize = 2048;

/// The server's webhook secret. Its `Debug` never shows the value.
#[derive(Clone)]
pub struct WebhookSecret(Hmac<Sha256>);

impl WebhookSecret {
    pub const MIN_LEN: usize = 16;

    pub fn new(secret: impl Into<String>) -> Result<Self> {
        let secret = secret.into();
        if secret.len() < Self::MIN_LEN {
            return Err(Error::invalid(
                "WEBHOOK_SECRET",
                format!("must be at least {} characters", Self::MIN_LEN),
            ));
        }
        let keyed = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
            .map_err(|_| Error::invalid("WEBHOOK_SECRET", "unusable as an HMAC key"))?;
        Ok(Self(keyed))
    }

    fn mac(&self, channel_id: &ChannelId) -> [u8; 32] {
        let mut mac = self.0.clone();
        mac.update(channel_id.as_str().as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The token to register with a channel: hex HMAC-SHA256 of its id. Tokens
    /// are derived, not stored, so the database holds no webhook secrets.
    pub fn channel_token(&self, channel_id: &ChannelId) -> String {
        let mut hex = String::with_capacity(64);
        for byte in self.mac(channel_id) {
            hex.push(char::from(HEX[usize::from(byte >> 4)]));
            hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        hex
    }

    /// Constant-time check of a presented token against the channel's.
    pub fn verify(&self, channel_id: &ChannelId, presented: &str) -> bool {
        let Some(bytes) = decode_hex_32(presented) else {
            return false;
        };
        bool::from(self.mac(channel_id).ct_eq(&bytes))
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn decode_hex_32(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let nibble = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

/// `X-Goog-Resource-State` for Calendar channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CalendarResourceState {
    /// The first message on a new channel; confirms it, carries no change.
    Sync,
    Exists,
    NotExists,
}

/// `X-Goog-Resource-State` for Drive channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriveResourceState {
    Sync,
    Add,
    Remove,
    Update,
    Trash,
    Untrash,
    Change,
}

impl DriveResourceState {
    pub fn parse(value: &str) -> Result<Self> {
        Ok(match value {
            "sync" => Self::Sync,
            "add" => Self::Add,
            "remove" => Self::Remove,
            "update" => Self::Update,
            "trash" => Self::Trash,
            "untrash" => Self::Untrash,
            "change" => Self::Change,
            _ => {
                return Err(invalid(
                    headers::RESOURCE_STATE,
                    "must be sync, add, remove, update, trash, untrash or change",
                ));
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sync => "sync",
            Self::Add => "add",
            Self::Remove => "remove",
            Self::Update => "update",
            Self::Trash => "trash",
            Self::Untrash => "untrash",
            Self::Change => "change",
        }
    }
}

/// The headers every push notification carries, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushEnvelope {
    pub channel_id: ChannelId,
    /// Absent when the sender sent none; verification then fails.
    pub token: Option<String>,
    pub message_number: u64,
    pub resource_id: ResourceId,
    pub resource_uri: String,
    pub channel_expiration: Option<DateTime<Utc>>,
}

impl PushEnvelope {
    /// The calendar an events channel watches, as its resource URI names it
    /// (`.../calendar/v3/calendars/{calendarId}/events?...`, the id
    /// percent-encoded); `None` for any other URI.
    pub fn calendar_id(&self) -> Option<CalendarId> {
        calendar_of_resource_uri(&self.resource_uri)
    }
}

fn calendar_of_resource_uri(uri: &str) -> Option<CalendarId> {
    let (_, rest) = uri.split_once("/calendar/v3/calendars/")?;
    let (segment, rest) = rest.split_once('/')?;
    if !(rest == "events" || rest.starts_with("events?")) {
        return None;
    }
    CalendarId::new(percent_decode(segment)?).ok()
}

/// `%XX` escapes decoded; `None` for a malformed escape or non-UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarNotification {
    pub envelope: PushEnvelope,
    pub state: CalendarResourceState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriveNotification {
    pub envelope: PushEnvelope,
    pub state: DriveResourceState,
    /// `X-Goog-Changed`: e.g. `content`, `properties`, `parents`.
    pub changed: Vec<String>,
}

impl DriveNotification {
    /// What a `drive.changed` change carries: the notification's headers
    /// (its token left out: it is a secret of the channel).
    pub fn feed_detail(&self) -> serde_json::Value {
        serde_json::json!({
            "channelId": self.envelope.channel_id.as_str(),
            "messageNumber": self.envelope.message_number,
            "resourceId": self.envelope.resource_id.as_str(),
            "resourceUri": self.envelope.resource_uri,
            "resourceState": self.state.as_str(),
            "changed": self.changed,
        })
    }
}

fn required<'a>(header: &'static str, get: &impl Fn(&str) -> Option<&'a str>) -> Result<&'a str> {
    match get(header) {
        Some(value) if !value.trim().is_empty() => Ok(value.trim()),
        _ => Err(Error::MissingHeader { header }),
    }
}

fn invalid(header: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidHeader {
        header,
        reason: reason.into(),
    }
}

fn parse_envelope<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Result<PushEnvelope> {
    let channel_id = ChannelId::new(required(headers::CHANNEL_ID, get)?).map_err(|_| {
        invalid(
            headers::CHANNEL_ID,
            "must be 1 to 64 characters of letters, digits and - _ + / =",
        )
    })?;
    let token = match get(headers::CHANNEL_TOKEN).map(str::trim) {
        None | Some("") => None,
        Some(token) if token.len() > MAX_TOKEN_LEN => {
            return Err(invalid(
                headers::CHANNEL_TOKEN,
                "longer than 256 characters",
            ));
        }
        Some(token) => Some(token.to_owned()),
    };
    let message_number = required(headers::MESSAGE_NUMBER, get)?
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| invalid(headers::MESSAGE_NUMBER, "must be a positive integer"))?;
    let resource_id = ResourceId::new(required(headers::RESOURCE_ID, get)?)
        .map_err(|_| invalid(headers::RESOURCE_ID, "must be 1 to 256 visible characters"))?;
    let resource_uri = required(headers::RESOURCE_URI, get)?;
    if resource_uri.len() > MAX_RESOURCE_URI_LEN
        || !(resource_uri.starts_with("https://") || resource_uri.starts_with("http://"))
        || resource_uri
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(invalid(
            headers::RESOURCE_URI,
            "must be an http(s) URL of at most 2048 characters",
        ));
    }
    let channel_expiration = match get(headers::CHANNEL_EXPIRATION).map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(
            DateTime::parse_from_rfc2822(text)
                .map(|at| at.with_timezone(&Utc))
                .map_err(|_| {
                    invalid(
                        headers::CHANNEL_EXPIRATION,
                        "must be an HTTP date such as 'Tue, 19 Nov 2013 01:13:52 GMT'",
                    )
                })?,
        ),
    };
    Ok(PushEnvelope {
        channel_id,
        token,
        message_number,
        resource_id,
        resource_uri: resource_uri.to_owned(),
        channel_expiration,
    })
}

/// Parses a Calendar push notification's headers. `get` looks a header up
/// case-insensitively (HTTP header names are), returning its value as text.
pub fn parse_calendar_notification<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
) -> Result<CalendarNotification> {
    let envelope = parse_envelope(&get)?;
    let state = match required(headers::RESOURCE_STATE, &get)? {
        "sync" => CalendarResourceState::Sync,
        "exists" => CalendarResourceState::Exists,
        "not_exists" => CalendarResourceState::NotExists,
        _ => {
            return Err(invalid(
                headers::RESOURCE_STATE,
                "must be sync, exists or not_exists",
            ));
        }
    };
    Ok(CalendarNotification { envelope, state })
}

/// Parses a Drive push notification's headers.
pub fn parse_drive_notification<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
) -> Result<DriveNotification> {
    let envelope = parse_envelope(&get)?;
    let state = DriveResourceState::parse(required(headers::RESOURCE_STATE, &get)?)?;
    let changed = get(headers::CHANGED)
        .map(|value| {
            value
                .split(',')
                .map(str::trim)
                .filter(|part| !part.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    if changed.len() > 16 || changed.iter().any(|part| part.len() > 64) {
        return Err(invalid(headers::CHANGED, "too many or too long values"));
    }
    Ok(DriveNotification {
        envelope,
        state,
        changed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn an_events_resource_uri_names_its_calendar() {
        let of = |uri: &str| calendar_of_resource_uri(uri).map(|c| c.as_str().to_owned());
        assert_eq!(
            of("https://www.googleapis.com/calendar/v3/calendars/team%40example.com/events?alt=json")
                .as_deref(),
            Some("team@example.com")
        );
        assert_eq!(
            of("http://127.0.0.1:1/calendar/v3/calendars/en.german%23holiday@group.v.calendar.google.com/events")
                .as_deref(),
            Some("en.german#holiday@group.v.calendar.google.com")
        );
        assert_eq!(of("https://www.googleapis.com/drive/v3/files/1"), None);
        assert_eq!(
            of("https://www.googleapis.com/calendar/v3/calendars/a%4/events"),
            None,
            "a malformed escape"
        );
        assert_eq!(
            of("https://www.googleapis.com/calendar/v3/calendars/a@b.c/acl"),
            None
        );
        assert_eq!(
            of("https://www.googleapis.com/calendar/v3/calendars//events"),
            None
        );
    }

    fn secret() -> WebhookSecret {
        WebhookSecret::new("a-secret-of-sufficient-length").unwrap()
    }

    fn calendar_headers() -> HashMap<String, String> {
        [
            (headers::CHANNEL_ID, "0b4c3c1e-5f7e-4f7a-9a57-6f1d2f3e4a5b"),
            (headers::CHANNEL_TOKEN, "tok"),
            (headers::MESSAGE_NUMBER, "7"),
            (headers::RESOURCE_ID, "ret08u3rv24htgh289g"),
            (
                headers::RESOURCE_URI,
                "https://www.googleapis.com/calendar/v3/calendars/user%40example.com/events",
            ),
            (headers::RESOURCE_STATE, "exists"),
            (headers::CHANNEL_EXPIRATION, "Tue, 19 Nov 2013 01:13:52 GMT"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect()
    }

    fn parse(map: &HashMap<String, String>) -> Result<CalendarNotification> {
        parse_calendar_notification(|name| map.get(&name.to_ascii_lowercase()).map(String::as_str))
    }

    #[test]
    fn token_round_trip_and_rejections() {
        let id = ChannelId::new("chan-1").unwrap();
        let token = secret().channel_token(&id);
        assert_eq!(token.len(), 64);
        assert!(secret().verify(&id, &token));
        assert!(
            secret().verify(&id, &token.to_ascii_uppercase()),
            "hex case does not matter"
        );
        assert!(
            !secret().verify(&ChannelId::new("chan-2").unwrap(), &token),
            "bound to the channel"
        );
        let other = WebhookSecret::new("another-secret-of-good-length").unwrap();
        assert!(!other.verify(&id, &token), "bound to the secret");
        let mut flipped = token.clone().into_bytes();
        flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
        assert!(!secret().verify(&id, std::str::from_utf8(&flipped).unwrap()));
        assert!(!secret().verify(&id, ""));
        assert!(!secret().verify(&id, &token[..63]));
        assert!(!secret().verify(&id, "zz".repeat(32).as_str()));
    }

    #[test]
    fn short_secrets_are_refused_and_never_printed() {
        assert!(WebhookSecret::new("short").is_err());
        assert!(!format!("{:?}", secret()).contains("sufficient"));
    }

    #[test]
    fn a_complete_calendar_notification_parses() {
        let n = parse(&calendar_headers()).unwrap();
        assert_eq!(n.state, CalendarResourceState::Exists);
        assert_eq!(n.envelope.message_number, 7);
        assert_eq!(n.envelope.token.as_deref(), Some("tok"));
        assert_eq!(
            n.envelope.channel_expiration.unwrap().to_rfc3339(),
            "2013-11-19T01:13:52+00:00"
        );
    }

    fn with(name: &str, value: Option<&str>) -> Result<CalendarNotification> {
        let mut map = calendar_headers();
        match value {
            Some(v) => map.insert(name.to_ascii_lowercase(), v.to_owned()),
            None => map.remove(&name.to_ascii_lowercase()),
        };
        parse(&map)
    }

    #[test]
    fn every_malformed_header_is_a_typed_error() {
        let missing = |h: &'static str| {
            assert_eq!(
                with(h, None).unwrap_err(),
                Error::MissingHeader { header: h },
                "{h}"
            );
        };
        missing(headers::CHANNEL_ID);
        missing(headers::MESSAGE_NUMBER);
        missing(headers::RESOURCE_ID);
        missing(headers::RESOURCE_URI);
        missing(headers::RESOURCE_STATE);

        let bad = |h: &'static str, v: &str| {
            assert!(
                matches!(with(h, Some(v)), Err(Error::InvalidHeader { header, .. }) if header == h),
                "{h}={v}"
            );
        };
        bad(headers::CHANNEL_ID, &"a".repeat(65));
        bad(headers::CHANNEL_ID, "has space");
        bad(headers::CHANNEL_TOKEN, &"t".repeat(257));
        bad(headers::MESSAGE_NUMBER, "abc");
        bad(headers::MESSAGE_NUMBER, "0");
        bad(headers::MESSAGE_NUMBER, "-3");
        bad(headers::RESOURCE_STATE, "add");
        bad(headers::RESOURCE_URI, "ftp://x");
        bad(headers::CHANNEL_EXPIRATION, "1384823632000");
        bad(headers::RESOURCE_ID, &"r".repeat(300));
    }

    #[test]
    fn token_and_expiration_are_optional_in_parsing() {
        let n = with(headers::CHANNEL_TOKEN, None).unwrap();
        assert_eq!(n.envelope.token, None);
        let n = with(headers::CHANNEL_EXPIRATION, None).unwrap();
        assert_eq!(n.envelope.channel_expiration, None);
        assert_eq!(
            with(headers::RESOURCE_STATE, Some("sync")).unwrap().state,
            CalendarResourceState::Sync
        );
        assert_eq!(
            with(headers::RESOURCE_STATE, Some("not_exists"))
                .unwrap()
                .state,
            CalendarResourceState::NotExists
        );
    }

    #[test]
    fn drive_states_and_changed_header() {
        let mut map = calendar_headers();
        map.insert(
            headers::RESOURCE_STATE.to_ascii_lowercase(),
            "update".into(),
        );
        map.insert(
            headers::CHANGED.to_ascii_lowercase(),
            "content, properties".into(),
        );
        let get = |name: &str| map.get(&name.to_ascii_lowercase()).map(String::as_str);
        let n = parse_drive_notification(get).unwrap();
        assert_eq!(n.state, DriveResourceState::Update);
        assert_eq!(
            n.changed,
            vec!["content".to_owned(), "properties".to_owned()]
        );
        for state in ["sync", "add", "remove", "trash", "untrash", "change"] {
            map.insert(headers::RESOURCE_STATE.to_ascii_lowercase(), state.into());
            let get = |name: &str| map.get(&name.to_ascii_lowercase()).map(String::as_str);
            assert_eq!(parse_drive_notification(get).unwrap().state.as_str(), state);
        }
        map.insert(
            headers::RESOURCE_STATE.to_ascii_lowercase(),
            "exists".into(),
        );
        let get = |name: &str| map.get(&name.to_ascii_lowercase()).map(String::as_str);
        assert!(
            parse_drive_notification(get).is_err(),
            "exists is a Calendar state"
        );
    }
}
