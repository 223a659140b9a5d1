//! PII masking for logs: emails become `j***@example.com`, secrets vanish.

use std::borrow::Cow;

/// Replaces the local part of every email address with its first character
/// and `***`: `john.doe@example.com` -> `j***@example.com`. "Email" means
/// anything the API accepts as one (something, `@`, something): Unicode
/// local parts and domains (`rené@bücher.example`), dotless hosts
/// (`carol@localhost`) and address literals (`dave@[192.0.2.1]`) included.
/// Addresses that are URL-encoded (`user%40example.com`, common in Google
/// resource URIs since calendar ids are often emails) are masked the same way.
pub fn mask_emails(text: &str) -> Cow<'_, str> {
    let mut out: Option<String> = None;
    // `copied` is how much of `text` is already in `out`.
    let mut copied = 0;
    let mut i = 0;
    while let Some(offset) = text[i..].find(['@', '%']) {
        let at = i + offset;
        let rest = &text[at..];
        let separator_len = if rest.starts_with('@') {
            1
        } else if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case("%40") {
            3
        } else {
            i = at + 1;
            continue;
        };
        let local_start = local_part_start(text, at);
        let domain_end = domain_end(text, at + separator_len);
        let local = &text[local_start..at];
        let already_masked = local.chars().count() == 4 && local.ends_with("***");
        if local_start < at && domain_end > at + separator_len && !already_masked {
            let buffer = out.get_or_insert_with(|| String::with_capacity(text.len()));
            buffer.push_str(&text[copied..local_start]);
            if let Some(first) = text[local_start..].chars().next() {
                buffer.push(first);
            }
            buffer.push_str("***");
            buffer.push_str(&text[at..domain_end]);
            copied = domain_end;
            i = domain_end;
        } else {
            i = at + separator_len;
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

/// Characters that end an address in running text, JSON, URLs and headers.
fn is_delimiter(c: char) -> bool {
    c.is_whitespace() || c.is_control() || "<>()[],;:\"'/\\?#&=%@*".contains(c)
}

fn local_part_start(text: &str, separator: usize) -> usize {
    text[..separator]
        .char_indices()
        .rev()
        .take_while(|(_, c)| !is_delimiter(*c) || *c == '*')
        .last()
        .map_or(separator, |(start, _)| start)
}

fn domain_end(text: &str, from: usize) -> usize {
    let rest = &text[from..];
    // An address literal: `[192.0.2.1]`, `[IPv6:2001:db8::1]`.
    if rest.starts_with('[')
        && let Some(close) = rest.find(']')
    {
        return from + close + 1;
    }
    let len = rest
        .char_indices()
        .find(|(_, c)| is_delimiter(*c))
        .map_or(rest.len(), |(end, _)| end);
    // A trailing dot ends a sentence, not a domain.
    from + rest[..len].trim_end_matches('.').len()
}

/// Whether a field of this name holds a secret that must never be logged:
/// one of the known names, or a name ending in one (`sync_token`,
/// `webhook_secret`). Whole words only: `token_present` is not a secret.
pub fn is_secret_key(key: &str) -> bool {
    const NAMES: [&str; 11] = [
        "token",
        "secret",
        "password",
        "authorization",
        "api_key",
        "apikey",
        "private_key",
        "assertion",
        "credential",
        "credentials",
        "cookie",
    ];
    // Every log line's every key passes here: compared in place (ASCII
    // case and `-`/`_` folded), without allocating.
    let same = |a: u8, b: u8| {
        let fold = |c: u8| {
            if c == b'-' {
                b'_'
            } else {
                c.to_ascii_lowercase()
            }
        };
        fold(a) == fold(b)
    };
    let key = key.as_bytes();
    NAMES.iter().any(|name| {
        let name = name.as_bytes();
        let matches_tail = |tail: &[u8]| tail.iter().zip(name).all(|(a, b)| same(*a, *b));
        if key.len() == name.len() {
            matches_tail(key)
        } else if key.len() > name.len() {
            let at = key.len() - name.len();
            same(key[at - 1], b'_') && matches_tail(&key[at..])
        } else {
            false
        }
    })
}

pub const REDACTED: &str = "[redacted]";

/// Masks a JSON value in place: emails in every string (keys included),
/// and the whole value of any secret-named field. Returns whether anything
/// changed (a caller holding the value's text can then reuse it).
pub fn mask_json(value: &mut serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(text) => {
            if let Cow::Owned(masked) = mask_emails(text) {
                *text = masked;
                true
            } else {
                false
            }
        }
        serde_json::Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, item| mask_json(item) | changed),
        serde_json::Value::Object(map) => {
            let mut changed = false;
            for (key, field) in map.iter_mut() {
                if is_secret_key(key) {
                    // Changed even if already redacted: the text may hold
                    // the same key twice, the other one not redacted.
                    *field = serde_json::Value::String(REDACTED.into());
                    changed = true;
                } else {
                    changed |= mask_json(field);
                }
            }
            // Keys are rebuilt only when one holds an address.
            if map
                .keys()
                .any(|key| matches!(mask_emails(key), Cow::Owned(_)))
            {
                let fields = std::mem::take(map);
                for (key, field) in fields {
                    map.insert(mask_emails(&key).into_owned(), field);
                }
                changed = true;
            }
            changed
        }
        _ => false,
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
            "50% off",
            "x%40",
            "j***@example.com",
            "a @ b",
            "@@",
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
    fn masks_everything_the_api_accepts_as_an_email() {
        for (raw, masked) in [
            ("rené@bücher.example", "r***@bücher.example"),
            ("用户@例子.广告", "用***@例子.广告"),
            ("carol@localhost", "c***@localhost"),
            ("dave@[192.0.2.1]", "d***@[192.0.2.1]"),
            ("a@b", "a***@b"),
            ("weird@.com", "w***@.com"),
            ("\"émile@exämple.org\"", "\"é***@exämple.org\""),
            (
                "calendars/ünï%40host/events",
                "calendars/ü***%40host/events",
            ),
        ] {
            assert_eq!(mask_emails(raw), masked, "{raw}");
        }
    }

    #[test]
    fn secret_names_match_whole_words() {
        for key in [
            "token",
            "sync_token",
            "X-Goog-Channel-Token",
            "webhook_secret",
            "Authorization",
            "api_key",
            "password",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in [
            "token_present",
            "tokens_issued",
            "secretary",
            "passwordless_login",
            "calendar_id",
        ] {
            assert!(!is_secret_key(key), "{key}");
        }
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
