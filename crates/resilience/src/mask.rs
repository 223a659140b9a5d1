//! PII masking for logs: emails become `j***@example.com`, secrets vanish.

use std::borrow::Cow;

/// Replaces the local part of every email address with its first character
/// and `***`: `john.doe@example.com` -> `j***@example.com`. Addresses that
/// are URL-encoded (`user%40example.com`, common in Google resource URIs
/// since calendar ids are often emails) are masked the same way.
pub fn mask_emails(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    // `copied` is how much of `text` is already in `out`.
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let separator_len = if bytes[i] == b'@' {
            1
        } else if bytes[i] == b'%'
            && bytes.get(i + 1) == Some(&b'4')
            && bytes.get(i + 2) == Some(&b'0')
        {
            3
        } else {
            i += 1;
            continue;
        };
        let local_start = local_part_start(bytes, i);
        let domain_end = domain_end(bytes, i + separator_len);
        if local_start < i && is_domain(&bytes[i + separator_len..domain_end]) {
            let buffer = out.get_or_insert_with(|| String::with_capacity(text.len()));
            buffer.push_str(&text[copied..local_start]);
            // The first local character is ASCII (see `is_local_char`).
            buffer.push(char::from(bytes[local_start]));
            buffer.push_str("***");
            buffer.push_str(&text[i..domain_end]);
            copied = domain_end;
            i = domain_end;
        } else {
            i += separator_len;
        }
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut buffer) => {
            buffer.push_str(&text[copied..]);
            Cow::Owned(buffer)
        }
    }
}

fn is_local_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"._+-!#$&'=^`{|}~".contains(&b)
}

fn local_part_start(bytes: &[u8], separator: usize) -> usize {
    let mut start = separator;
    while start > 0 && is_local_char(bytes[start - 1]) {
        start -= 1;
    }
    start
}

fn domain_end(bytes: &[u8], from: usize) -> usize {
    let mut end = from;
    while end < bytes.len()
        && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'.' || bytes[end] == b'-')
    {
        end += 1;
    }
    // A trailing dot ends a sentence, not a domain.
    while end > from && bytes[end - 1] == b'.' {
        end -= 1;
    }
    end
}

fn is_domain(domain: &[u8]) -> bool {
    domain.contains(&b'.') && domain.first().is_some_and(u8::is_ascii_alphanumeric)
}

/// Whether a field of this name holds a secret that must never be logged.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "token",
        "secret",
        "password",
        "authorization",
        "api_key",
        "apikey",
        "private_key",
        "assertion",
        "credential",
        "cookie",
    ]
    .iter()
    .any(|needle| key.contains(needle))
}

pub const REDACTED: &str = "[redacted]";

/// Masks a JSON value in place: emails in every string (keys included),
/// and the whole value of any secret-named field.
pub fn mask_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(text) => {
            if let Cow::Owned(masked) = mask_emails(text) {
                *text = masked;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(mask_json),
        serde_json::Value::Object(map) => {
            let fields = std::mem::take(map);
            for (key, mut field) in fields {
                if is_secret_key(&key) {
                    field = serde_json::Value::String(REDACTED.into());
                } else {
                    mask_json(&mut field);
                }
                map.insert(mask_emails(&key).into_owned(), field);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_plain_addresses() {
        assert_eq!(mask_emails("john.doe@example.com"), "j***@example.com");
        assert_eq!(
            mask_emails("from a@b.co to Jane_Roe+x@mail.example.org."),
            "from a***@b.co to J***@mail.example.org."
        );
        assert_eq!(
            mask_emails("<team@group.calendar.google.com>"),
            "<t***@group.calendar.google.com>"
        );
    }

    #[test]
    fn masks_url_encoded_addresses() {
        assert_eq!(
            mask_emails(
                "https://www.googleapis.com/calendar/v3/calendars/user%40example.com/events?alt=json"
            ),
            "https://www.googleapis.com/calendar/v3/calendars/u***%40example.com/events?alt=json"
        );
    }

    #[test]
    fn leaves_non_addresses_alone() {
        for text in [
            "no email here",
            "@handle",
            "a@b",
            "50% off",
            "x%40",
            "j***@example.com",
            "weird@.com",
        ] {
            assert_eq!(mask_emails(text), text, "{text}");
            assert!(matches!(mask_emails(text), Cow::Borrowed(_)));
        }
        assert_eq!(
            mask_emails("ünïcode bob@example.com ok"),
            "ünïcode b***@example.com ok"
        );
    }

    #[test]
    fn masking_is_idempotent() {
        let once = mask_emails("john.doe@example.com and x%40y.org").into_owned();
        assert_eq!(mask_emails(&once), once);
    }

    #[test]
    fn json_masking_covers_strings_keys_and_secrets() {
        let mut value = serde_json::json!({
            "calendar_id": "ops@example.com",
            "nested": {"attendees": ["ann@example.com"]},
            "sync_token": "CPDAlvWDx70CEPDAlvWDx70CGAU=",
            "Authorization": "Bearer abc",
            "count": 3,
            "bob@example.com": true
        });
        mask_json(&mut value);
        assert_eq!(value["calendar_id"], "o***@example.com");
        assert_eq!(value["nested"]["attendees"][0], "a***@example.com");
        assert_eq!(value["sync_token"], REDACTED);
        assert_eq!(value["Authorization"], REDACTED);
        assert_eq!(value["count"], 3);
        assert_eq!(value["b***@example.com"], true);
    }
}
