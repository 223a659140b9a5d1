//! One occurrence of a series, and the instance id Google names it by.

use super::time::EventTime;

/// One occurrence of a series: when it was scheduled (`original_start`,
/// which names it) and when it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    pub original_start: EventTime,
    pub start: EventTime,
    pub end: EventTime,
}

impl Occurrence {
    /// The suffix Google gives the occurrence's id: `{masterId}_{suffix}`.
    pub fn suffix(&self) -> String {
        instance_suffix(&self.original_start)
    }
}

/// `YYYYMMDDTHHMMSSZ` (the original start in UTC), or `YYYYMMDD` for an
/// all-day series: Google's instance id is `{masterId}_{suffix}` (field notes).
pub fn instance_suffix(original_start: &EventTime) -> String {
    match original_start {
        EventTime::AllDay { date } => date.format("%Y%m%d").to_string(),
        EventTime::At { at, .. } => at.format("%Y%m%dT%H%M%SZ").to_string(),
    }
}

/// Splits `{masterId}_{suffix}` into its parts if `suffix` has an
/// instance suffix's shape.
pub fn split_instance_id(id: &str) -> Option<(&str, &str)> {
    let (master, suffix) = id.rsplit_once('_')?;
    let shaped = match suffix.len() {
        8 => suffix.bytes().all(|b| b.is_ascii_digit()),
        16 => {
            let b = suffix.as_bytes();
            b[..8].iter().all(u8::is_ascii_digit)
                && b[8] == b'T'
                && b[9..15].iter().all(u8::is_ascii_digit)
                && b[15] == b'Z'
        }
        _ => false,
    };
    (shaped && !master.is_empty()).then_some((master, suffix))
}
