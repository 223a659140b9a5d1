//! The input rules the OpenAPI document states and the routes enforce
//! beyond the domain's own checks: the exact shapes of instants, dates,
//! event ids, `eventType`, colours, page tokens and push headers. Patterns
//! too long to write by hand are built here; the rest are written in the
//! annotations beside the fields they describe. `tests/openapi.rs` holds
//! the document and the server to the same verdicts on each.

use chrono::NaiveDate;

/// A header value as HTTP carries it: visible ASCII and inner spaces, at
/// least one visible character (surrounding spaces are not part of it).
pub const HEADER_TEXT: &str = r"^[\x20-\x7E]*[\x21-\x7E][\x20-\x7E]*$";

/// A `recurrence` line names its kind first (RFC 5545 names are
/// case-insensitive); the rest is RFC 5545 and is checked when parsed.
pub const RECURRENCE_LINE: &str = r"^\s*([Rr][Rr][Uu][Ll][Ee]|[Ee][Xx][Rr][Uu][Ll][Ee]|[Rr][Dd][Aa][Tt][Ee]|[Ee][Xx][Dd][Aa][Tt][Ee])\s*[:;]";

/// Whether `line` names its kind as [`RECURRENCE_LINE`] states it (and
/// as `calsync_domain::recurrence` reads it: the name before the first
/// `:` and any `;`, trimmed, in any case).
pub fn is_recurrence_line(line: &str) -> bool {
    let Some((head, _)) = line.split_once(':') else {
        return false;
    };
    let name = head.split(';').next().unwrap_or_default().trim();
    ["RRULE", "EXRULE", "RDATE", "EXDATE"]
        .iter()
        .any(|kind| name.eq_ignore_ascii_case(kind))
}

/// Years 0001 to 9999.
const YEAR: &str = "(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})";

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Whether `value` is `YYYY-MM-DD` in digits (`format: date`'s shape):
/// chrono alone also takes `2030-1-5` and `+2030-01-05`.
pub fn is_date_shaped(value: &str) -> bool {
    date_shaped(value.as_bytes())
}

fn date_shaped(b: &[u8]) -> bool {
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && [0, 1, 2, 3, 5, 6, 8, 9]
            .iter()
            .all(|&i| b[i].is_ascii_digit())
}

/// Whether `value` has `format: date-time`'s shape without a leap second
/// (as `EventTimeBody.dateTime`'s pattern states it): chrono also takes a
/// space for the `T`, and a leap second anywhere.
pub fn is_date_time_shaped(value: &str) -> bool {
    let b = value.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let fixed = b.len() >= 20
        && date_shaped(&b[..10])
        && matches!(b[10], b'T' | b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[17] <= b'5';
    if !fixed {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let count = fraction.iter().take_while(|d| d.is_ascii_digit()).count();
        if count == 0 {
            return false;
        }
        rest = &fraction[count..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit()),
        _ => false,
    }
}

/// Whether `value` is an event path id (a hyphenated UUID, optionally with
/// an occurrence suffix `_YYYYMMDD` or `_YYYYMMDDTHHMMSSZ`); any other form
/// `uuid` reads (braced, `urn:uuid:`, unhyphenated) is not one.
pub fn is_event_id(value: &str) -> bool {
    let (uuid, suffix) = match value.split_once('_') {
        Some((uuid, suffix)) => (uuid, Some(suffix)),
        None => (value, None),
    };
    let hyphenated = uuid.len() == 36
        && uuid.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    let suffix_ok = suffix.is_none_or(|s| {
        let b = s.as_bytes();
        match b.len() {
            8 => b.iter().all(u8::is_ascii_digit),
            16 => {
                b[..8].iter().all(u8::is_ascii_digit)
                    && b[8] == b'T'
                    && b[9..15].iter().all(u8::is_ascii_digit)
                    && b[15] == b'Z'
            }
            _ => false,
        }
    });
    hyphenated && suffix_ok
}

/// Whether `value` is an `eventType` filter: 1 to 64 letters, as Google's
/// names are (`default`, `outOfOffice`, ...).
pub fn is_event_type(value: &str) -> bool {
    (1..=64).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphabetic())
}

/// Google's event colours: `colorId` "1" to "11" (colors reference:
/// <https://developers.google.com/workspace/calendar/api/v3/reference/colors>).
pub const COLOR_IDS: [&str; 11] = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"];

/// A regex alternation for the decimal numbers 1 to `max`, no leading zero.
fn up_to(max: u64) -> String {
    let digits: Vec<u8> = max.to_string().into_bytes();
    let n = digits.len();
    let mut options = Vec::new();
    match n {
        0 | 1 => {}
        2 => options.push("[1-9]".to_owned()),
        _ => options.push(format!("[1-9][0-9]{{0,{}}}", n - 2)),
    }
    let tail = |left: usize| match left {
        0 => String::new(),
        1 => "[0-9]".to_owned(),
        _ => format!("[0-9]{{{left}}}"),
    };
    for i in 0..n {
        let lowest = if i == 0 { b'1' } else { b'0' };
        let digit = digits[i];
        if digit > lowest {
            let prefix = String::from_utf8_lossy(&digits[..i]);
            let class = if digit - 1 == lowest {
                char::from(lowest).to_string()
            } else {
                format!("[{}-{}]", char::from(lowest), char::from(digit - 1))
            };
            options.push(format!("{prefix}{class}{}", tail(n - i - 1)));
        }
    }
    options.push(String::from_utf8_lossy(&digits).into_owned());
    options.join("|")
}

/// Microseconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z:
/// a page token's start is one an event can have.
const EARLIEST_MICROS: u64 = 62_135_596_800_000_000;
const LATEST_MICROS: u64 = 253_402_300_799_999_999;

/// A `pageToken` as the API writes it: `{start micros}.{id}`, the id a
/// lower-case UUID, with an occurrence suffix in `singleEvents` listings.
pub fn page_token_pattern() -> String {
    format!(
        "^(0|{}|-({}))\\.[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}}(_[0-9]{{8}}(T[0-9]{{6}}Z)?)?$",
        up_to(LATEST_MICROS),
        up_to(EARLIEST_MICROS)
    )
}

/// `X-Goog-Channel-Expiration` as Google sends it: an IMF-fixdate (RFC
/// 9110, section 5.6.7), a real date in the years 0001 to 9999.
pub fn http_date_pattern() -> String {
    let months = |list: &[usize]| {
        list.iter()
            .map(|&m| MONTHS[m - 1])
            .collect::<Vec<_>>()
            .join("|")
    };
    let leap_year = "([0-9]{2}(0[48]|[2468][048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00)";
    format!(
        "^({}), ((0[1-9]|1[0-9]|2[0-8]) ({}) {YEAR}|(29|30) ({}) {YEAR}|31 ({}) {YEAR}|29 Feb {leap_year}) ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9] GMT$",
        DAYS.join("|"),
        MONTHS.join("|"),
        months(&[1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
        months(&[1, 3, 5, 7, 8, 10, 12]),
    )
}

/// Reads an IMF-fixdate ([`http_date_pattern`]) and answers it without its
/// day name, which the date already says: a sender's wrong day name is
/// not worth refusing a notification for.
pub fn http_date_without_day_name(value: &str) -> Option<&str> {
    let b = value.as_bytes();
    let shaped = b.len() == 29
        && value.is_ascii()
        && DAYS.iter().any(|d| b.starts_with(d.as_bytes()))
        && &b[3..5] == b", "
        && b[7] == b' '
        && b[11] == b' '
        && b[16] == b' '
        && b[19] == b':'
        && b[22] == b':'
        && &b[25..] == b" GMT"
        && [5, 6, 12, 13, 14, 15, 17, 18, 20, 21, 23, 24]
            .iter()
            .all(|&i| b[i].is_ascii_digit());
    if !shaped {
        return None;
    }
    let number = |range: std::ops::Range<usize>| value[range].parse::<u32>().ok();
    let month = MONTHS.iter().position(|m| &value[8..11] == *m)?;
    let year = i32::try_from(number(12..16)?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()? + 1, number(5..7)?)?;
    let in_range = (1..=9999).contains(&chrono::Datelike::year(&date))
        && number(17..19)? < 24
        && number(20..22)? < 60
        && number(23..25)? < 60;
    in_range.then(|| &value[5..])
}

/// `X-Goog-Changed`: at most 16 comma-separated values of at most 64
/// characters (visible ASCII and spaces).
pub const CHANGED: &str = r"^[\x20-\x2B\x2D-\x7E]{0,64}(,[\x20-\x2B\x2D-\x7E]{0,64}){0,15}$";

/// Whether an `X-Goog-Changed` value is as [`CHANGED`] states it.
pub fn is_changed_list(value: &[u8]) -> bool {
    let parts: Vec<&[u8]> = value.split(|b| *b == b',').collect();
    parts.len() <= 16
        && parts
            .iter()
            .all(|part| part.len() <= 64 && part.iter().all(|b| (0x20..=0x7E).contains(b)))
}

/// A change-feed cursor as `calsync_domain::feed::Cursor` writes and reads
/// it: `c` and a base-36 number (lower case, leading zeros allowed) of at
/// most 13 digits that fits in 64 bits.
pub fn cursor_pattern() -> String {
    const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    const DIGITS: &str = "[0-9a-z]";
    // u64::MAX in base 36: the largest 13-digit cursor.
    let max = calsync_domain::feed::Cursor::from_seq(u64::MAX).encode();
    let max = max.strip_prefix('c').unwrap_or(&max).as_bytes().to_vec();
    let below = |digit: u8| -> Option<String> {
        let index = ALPHABET.iter().position(|d| *d == digit)?;
        Some(match index {
            0 => return None,
            1 => "0".to_owned(),
            2..=10 => format!("[0-{}]", char::from(ALPHABET[index - 1])),
            11 => "[0-9a]".to_owned(),
            _ => format!("[0-9a-{}]", char::from(ALPHABET[index - 1])),
        })
    };
    let mut options = vec![format!("{DIGITS}{{1,{}}}", max.len() - 1)];
    for (i, digit) in max.iter().enumerate() {
        if let Some(class) = below(*digit) {
            let rest = max.len() - i - 1;
            let tail = match rest {
                0 => String::new(),
                1 => DIGITS.to_owned(),
                n => format!("{DIGITS}{{{n}}}"),
            };
            options.push(format!(
                "{}{class}{tail}",
                String::from_utf8_lossy(&max[..i])
            ));
        }
    }
    options.push(String::from_utf8_lossy(&max).into_owned());
    format!("^c({})$", options.join("|"))
}

/// `types` in a feed read: change type names separated by commas (no
/// spaces); empty means every type.
pub fn change_types_pattern() -> String {
    let names: Vec<String> = calsync_domain::feed::ChangeType::FEED
        .iter()
        .map(|kind| kind.as_str().replace('.', r"\."))
        .collect();
    let one = format!("({})", names.join("|"));
    format!("^({one}(,{one})*)?$")
}

/// Reads a `types` list as [`change_types_pattern`] states it: each name
/// exactly a feed type (no spaces, no empty entries); empty: every type.
pub fn change_types(value: &str) -> calsync_domain::Result<Vec<calsync_domain::feed::ChangeType>> {
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let mut types = Vec::new();
    for name in value.split(',') {
        let kind = calsync_domain::feed::ChangeType::parse(name)?;
        if !types.contains(&kind) {
            types.push(kind);
        }
    }
    Ok(types)
}

/// A webhook URL's shape as the document states it (the sender then
/// decides on its scheme, host and addresses): `http://` or `https://` in
/// any case, then visible ASCII only (an IDN host in its `xn--` form).
pub const WEBHOOK_URL: &str = r"^[Hh][Tt][Tt][Pp]([Ss])?://[\x21-\x7E]+$";

/// Whether `value` is shaped as [`WEBHOOK_URL`] states.
pub fn is_webhook_url(value: &str) -> bool {
    let Some(scheme_end) = value.find("://") else {
        return false;
    };
    let scheme = &value[..scheme_end];
    let rest = &value[scheme_end + 3..];
    (scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
        && !rest.is_empty()
        && rest.bytes().all(|b| (0x21..=0x7E).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_match_their_pattern_exactly() {
        assert_eq!(
            cursor_pattern(),
            "^c([0-9a-z]{1,12}|[0-2][0-9a-z]{12}|3[0-9a-v][0-9a-z]{11}|3w[0-4][0-9a-z]{10}|3w5[0-9a-d][0-9a-z]{9}|3w5e0[0-9a-z]{8}|3w5e10[0-9a-z]{7}|3w5e11[0-1][0-9a-z]{6}|3w5e112[0-5][0-9a-z]{5}|3w5e1126[0-3][0-9a-z]{4}|3w5e11264[0-9a-r][0-9a-z]{3}|3w5e11264s[0-9a-f][0-9a-z]{2}|3w5e11264sg[0-9a-r][0-9a-z]|3w5e11264sgs[0-9a-e]|3w5e11264sgsf)$"
        );
        assert_eq!(
            change_types("event.created,event.created,drive.changed")
                .map(|t| t.len())
                .ok(),
            Some(2)
        );
        assert_eq!(change_types("").map(|t| t.len()).ok(), Some(0));
        for bad in [
            "event.created, drive.changed",
            ",",
            "event.created,",
            "webhook.test",
        ] {
            assert!(change_types(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn webhook_urls_are_visible_ascii_after_their_scheme() {
        for good in [
            "https://a.example/x?y=1",
            "HTTP://127.0.0.1:9/h",
            "https://[::1]/",
        ] {
            assert!(is_webhook_url(good), "{good}");
        }
        for bad in [
            "",
            "https://",
            " https://a",
            "https://a b",
            "ftp://a",
            "https:/a",
            "https://\u{e9}",
        ] {
            assert!(!is_webhook_url(bad), "{bad}");
        }
    }

    #[test]
    fn numeric_ranges_are_exact() {
        assert_eq!(up_to(9), "[1-8]|9");
        assert_eq!(
            up_to(253),
            "[1-9][0-9]{0,1}|1[0-9]{2}|2[0-4][0-9]|25[0-2]|253"
        );
        assert_eq!(up_to(10), "[1-9]|10");
        assert_eq!(up_to(100), "[1-9][0-9]{0,1}|100");
    }

    #[test]
    fn http_dates_are_read_without_their_day_name() {
        assert_eq!(
            http_date_without_day_name("Tue, 19 Nov 2013 01:13:52 GMT"),
            Some("19 Nov 2013 01:13:52 GMT")
        );
        assert!(http_date_without_day_name("Wed, 19 Nov 2013 01:13:52 GMT").is_some());
        assert!(http_date_without_day_name("Sat, 29 Feb 2020 00:00:00 GMT").is_some());
        for bad in [
            "Tue, 29 Feb 2021 00:00:00 GMT",
            "Tue, 31 Apr 2021 00:00:00 GMT",
            "Tue, 19 Nov 2013 24:00:00 GMT",
            "Tue, 19 Nov 2013 01:13:60 GMT",
            "Tue, 19 Nov 2013 01:13:52 +0000",
            "tue, 19 nov 2013 01:13:52 GMT",
            "19 Nov 2013 01:13:52 GMT",
            "Sat, 01 Jan 0000 00:00:00 GMT",
            "Tue, 9 Nov 2013 01:13:52 GMT",
            "",
        ] {
            assert_eq!(http_date_without_day_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn instants_need_their_documented_shape() {
        assert!(is_date_time_shaped("2030-01-15T10:00:00Z"));
        assert!(is_date_time_shaped("2030-01-15t10:00:00.5+01:00"));
        for bad in [
            "2030-01-15 10:00:00Z",
            "2030-01-15T10:00:60Z",
            "2030-01-15T10:00:00",
            "2030-1-15T10:00:00Z",
            "2030-01-15T10:00:00.Z",
            "2030-01-15T10:00:00+0100",
        ] {
            assert!(!is_date_time_shaped(bad), "{bad}");
        }
    }

    #[test]
    fn recurrence_lines_name_their_kind() {
        for good in [
            "RRULE:FREQ=DAILY",
            " rrule : freq=daily",
            "RDATE;VALUE=DATE:20300101",
            "exdate;TZID=Europe/Berlin:20300101T100000",
            "EXRULE:FREQ=WEEKLY",
        ] {
            assert!(is_recurrence_line(good), "{good}");
        }
        for bad in [
            "FREQ=DAILY",
            "RRULE",
            ";RRULE:FREQ=DAILY",
            "RRULES:FREQ=DAILY",
            "",
        ] {
            assert!(!is_recurrence_line(bad), "{bad}");
        }
    }

    #[test]
    fn event_ids_are_hyphenated_uuids_with_an_optional_suffix() {
        let id = "0b4c3c1e-5f7e-4f7a-9a57-6f1d2f3e4a5b";
        assert!(is_event_id(id));
        assert!(is_event_id(&id.to_ascii_uppercase()));
        assert!(is_event_id(&format!("{id}_20300115")));
        assert!(is_event_id(&format!("{id}_20300115T100000Z")));
        for bad in [
            format!("{{{id}}}"),
            format!("urn:uuid:{id}"),
            id.replace('-', ""),
            format!("{id}_2030"),
            format!("{id}_"),
        ] {
            assert!(!is_event_id(&bad), "{bad}");
        }
    }
}
