//! The domain's recurrence expansion against an independent RFC 5545
//! implementation: every case of `fixtures/recurrence/corpus.json`
//! (occurrences computed with Python's `dateutil.rrule` by `generate.py`,
//! whose header says how Google's semantics map onto it) goes through
//! [`Series`], and the occurrences' instance id suffixes must match exactly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

use calsync_domain::event::{EventTime, TimeZoneName};
use calsync_domain::recurrence::Series;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

const CORPUS: &str = include_str!("fixtures/recurrence/corpus.json");

/// Google's `start`/`end` shape: `{"date"}` or `{"dateTime", "timeZone"}`.
fn event_time(value: &Value) -> EventTime {
    if let Some(date) = value["date"].as_str() {
        return EventTime::date(NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap());
    }
    let at = DateTime::parse_from_rfc3339(value["dateTime"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc);
    let zone = value["timeZone"]
        .as_str()
        .map(|name| TimeZoneName::new(name).unwrap());
    EventTime::at(at, zone)
}

fn instant(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_domain_expands_every_corpus_series_as_dateutil_does() {
    let corpus: Value = serde_json::from_str(CORPUS).unwrap();
    let cases = corpus["cases"].as_array().unwrap();
    assert!(cases.len() >= 200, "the corpus has {} cases", cases.len());
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let start = event_time(&case["start"]);
        let end = event_time(&case["end"]);
        let expected = strings(&case["expected"]);
        let series = match Series::new(&strings(&case["recurrence"]), &start, &end) {
            Ok(series) => series,
            Err(error) => {
                failures.push(format!("{name}: refused: {error}"));
                continue;
            }
        };
        // One more than expected, so an extra occurrence shows.
        let got: Vec<String> = match &case["window"] {
            Value::String(all) if all == "all" => series
                .occurrences()
                .take(expected.len() + 1)
                .map(|o| o.suffix())
                .collect(),
            window => series
                .between(
                    Some(instant(&window["timeMin"])),
                    Some(instant(&window["timeMax"])),
                )
                .take(expected.len() + 1)
                .map(|o| o.suffix())
                .collect(),
        };
        if got != expected {
            failures.push(format!(
                "{name}:\n  expected {expected:?}\n  got      {got:?}"
            ));
            continue;
        }
        // A whole bounded series: retention reads its end from the last
        // occurrence (a rule finer than daily is kept as endless).
        if case["window"] == "all" && series.is_bounded() {
            let last = series.occurrences().last().unwrap();
            let text = case["recurrence"].to_string();
            let sub_daily = ["HOURLY", "MINUTELY", "SECONDLY"]
                .iter()
                .any(|freq| text.contains(freq));
            let want = (!sub_daily).then(|| last.end.sort_key());
            if series.last_end() != want {
                failures.push(format!(
                    "{name}: last_end {:?}, expected {want:?}",
                    series.last_end()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from dateutil:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
