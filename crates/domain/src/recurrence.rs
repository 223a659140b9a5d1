//! Recurring series (RFC 5545 RRULE, EXRULE, RDATE and EXDATE lines, as
//! Google's `recurrence` holds them: "List of RRULE, EXRULE, RDATE and
//! EXDATE lines for a recurring event, as specified in RFC5545", events
//! reference: https://developers.google.com/workspace/calendar/api/v3/reference/events),
//! expanded with the `rrule` crate in the series' time zone, so wall-clock
//! times hold across DST as Google keeps them (recurring events guide:
//! https://developers.google.com/workspace/calendar/api/guides/recurringevents).
//!
//! Values without a `Z` are read in the series' zone, as Google expands
//! them: an `UNTIL` date is the end of that day there, a floating `UNTIL`,
//! `RDATE` or `EXDATE` that wall-clock time there (a `TZID` names another
//! zone). A wall-clock time a DST change skips is the hour after it; one it
//! repeats is the earlier. `tests/recurrence_corpus.rs` checks all of this
//! against Python's `dateutil.rrule` (docs/RECURRENCE.md).
//!
//! The parts: `series` expands a master's lines, `lines` reads each line
//! against the series' anchor, `occurrence` is what a series yields and
//! the instance id Google gives it, `time` holds the event times all use.

mod lines;
mod occurrence;
mod series;
pub(crate) mod time;

#[cfg(test)]
mod tests;

pub use occurrence::{Occurrence, instance_suffix, split_instance_id};
pub use series::{MAX_LINES, Series};
