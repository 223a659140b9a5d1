//! Push-notification header parsing (`calsync_domain::webhook`): any set of
//! headers either parses into an envelope within every bound the webhook
//! documents, or is refused with an error naming one of those headers.
//! Never a panic.
#![no_main]

use calsync_domain::Error;
use calsync_domain::ids::ChannelId;
use calsync_domain::webhook::{
    MAX_TOKEN_LEN, PushEnvelope, headers, parse_calendar_notification, parse_drive_notification,
};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 8] = [
    headers::CHANNEL_ID,
    headers::CHANNEL_TOKEN,
    headers::CHANNEL_EXPIRATION,
    headers::RESOURCE_ID,
    headers::RESOURCE_URI,
    headers::RESOURCE_STATE,
    headers::MESSAGE_NUMBER,
    headers::CHANGED,
];

fn check_envelope(envelope: &PushEnvelope) {
    assert!(envelope.message_number > 0, "{envelope:?}");
    assert!(
        ChannelId::new(envelope.channel_id.as_str()).is_ok(),
        "{envelope:?}"
    );
    assert!(!envelope.resource_id.as_str().is_empty(), "{envelope:?}");
    if let Some(token) = &envelope.token {
        assert!(
            !token.is_empty() && token.len() <= MAX_TOKEN_LEN,
            "{envelope:?}"
        );
    }
    let uri = &envelope.resource_uri;
    assert!(
        (uri.starts_with("https://") || uri.starts_with("http://"))
            && uri.len() <= 2048
            && !uri.chars().any(|c| c.is_whitespace() || c.is_control()),
        "{envelope:?}"
    );
}

fn check_refusal(error: &Error) {
    match error {
        Error::MissingHeader { header } | Error::InvalidHeader { header, .. } => {
            assert!(NAMES.contains(header), "{error:?} names an unknown header")
        }
        other => panic!("a header problem reported as {other:?}"),
    }
}

fuzz_target!(|input: Vec<(u8, String)>| {
    // One header per pair: mostly a known name (the byte picks it), any value.
    let pairs: Vec<(String, String)> = input
        .into_iter()
        .map(|(which, value)| {
            let name = NAMES
                .get(usize::from(which) % (NAMES.len() + 2))
                .map_or_else(|| format!("X-Other-{which}"), |name| (*name).to_owned());
            (name, value)
        })
        .collect();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    };
    let calendar = parse_calendar_notification(get);
    let drive = parse_drive_notification(get);
    match &calendar {
        Ok(notification) => check_envelope(&notification.envelope),
        Err(error) => check_refusal(error),
    }
    match &drive {
        Ok(notification) => check_envelope(&notification.envelope),
        Err(error) => check_refusal(error),
    }
    // Both read the same envelope.
    if let (Ok(calendar), Ok(drive)) = (&calendar, &drive) {
        assert_eq!(calendar.envelope, drive.envelope);
    }
    // Parsing is a function of the headers.
    assert_eq!(
        format!("{calendar:?}"),
        format!("{:?}", parse_calendar_notification(get))
    );
});
