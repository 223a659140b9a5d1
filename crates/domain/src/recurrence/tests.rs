use chrono::{NaiveDate, TimeZone, Utc};

use super::time::{EventTime, TimeZoneName};
use super::{Occurrence, Series, split_instance_id};
use crate::error::Error;

fn berlin_nine(y: i32, m: u32, d: u32) -> EventTime {
    let at = chrono_tz::Europe::Berlin
        .with_ymd_and_hms(y, m, d, 9, 0, 0)
        .unwrap()
        .with_timezone(&Utc);
    EventTime::at(at, Some(TimeZoneName::new("Europe/Berlin").unwrap()))
}

fn lines(all: &[&str]) -> Vec<String> {
    all.iter().map(|l| (*l).to_owned()).collect()
}

#[test]
fn weekly_series_keeps_wall_clock_across_dst() {
    let start = berlin_nine(2026, 3, 16);
    let end = berlin_nine(2026, 3, 16);
    let series = Series::new(&lines(&["RRULE:FREQ=WEEKLY;BYDAY=MO"]), &start, &end).unwrap();
    let hours: Vec<u32> = series
        .occurrences()
        .take(3)
        .map(|o| {
            use chrono::Timelike;
            o.start
                .sort_key()
                .with_timezone(&chrono_tz::Europe::Berlin)
                .hour()
        })
        .collect();
    assert_eq!(hours, [9, 9, 9]);
    let utc: Vec<u32> = series
        .occurrences()
        .take(3)
        .map(|o| {
            use chrono::Timelike;
            o.start.sort_key().hour()
        })
        .collect();
    // 29 March 2026 moves Berlin from UTC+1 to UTC+2.
    assert_eq!(utc, [8, 8, 7]);
    assert!(!series.is_bounded());
    assert_eq!(series.last_end(), None);
}

#[test]
fn exdates_with_tzid_and_counts_bound_the_series() {
    let start = berlin_nine(2026, 3, 2);
    let series = Series::new(
        &lines(&[
            "RRULE:FREQ=WEEKLY;COUNT=3",
            "EXDATE;TZID=Europe/Berlin:20260309T090000",
        ]),
        &start,
        &start,
    )
    .unwrap();
    let suffixes: Vec<String> = series.occurrences().map(|o| o.suffix()).collect();
    assert_eq!(suffixes, ["20260302T080000Z", "20260316T080000Z"]);
    assert_eq!(series.last_end(), Some(berlin_nine(2026, 3, 16).sort_key()));
    assert!(series.find("20260316T080000Z").is_some());
    assert!(series.find("20260309T080000Z").is_none(), "excluded");
}

#[test]
fn all_day_series_recur_as_dates_with_date_until() {
    let day = |y, m, d| EventTime::date(NaiveDate::from_ymd_opt(y, m, d).unwrap());
    let series = Series::new(
        &lines(&["RRULE:FREQ=YEARLY;UNTIL=20290512"]),
        &day(2026, 5, 12),
        &day(2026, 5, 13),
    )
    .unwrap();
    let all: Vec<Occurrence> = series.occurrences().collect();
    assert_eq!(all.len(), 4);
    assert_eq!(all[3].start, day(2029, 5, 12));
    assert_eq!(all[3].end, day(2029, 5, 13));
    assert_eq!(all[0].suffix(), "20260512");
    let window: Vec<String> = series
        .between(
            Some(Utc.with_ymd_and_hms(2027, 5, 12, 12, 0, 0).unwrap()),
            Some(Utc.with_ymd_and_hms(2028, 6, 1, 0, 0, 0).unwrap()),
        )
        .map(|o| o.suffix())
        .collect();
    assert_eq!(window, ["20270512", "20280512"]);
}

#[test]
fn a_bad_line_is_named() {
    let start = berlin_nine(2026, 3, 2);
    let err = Series::new(
        &lines(&["RRULE:FREQ=WEEKLY", "RRULE:FREQ=SOMETIMES"]),
        &start,
        &start,
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("line 2") && text.contains("SOMETIMES"),
        "{text}"
    );
    assert!(Series::new(&lines(&["FOO:BAR"]), &start, &start).is_err());
    assert!(Series::new(&lines(&["EXDATE:20260309T080000Z"]), &start, &start).is_err());
}

fn tokyo_eight(y: i32, m: u32, d: u32) -> EventTime {
    let at = chrono_tz::Asia::Tokyo
        .with_ymd_and_hms(y, m, d, 8, 0, 0)
        .unwrap()
        .with_timezone(&Utc);
    EventTime::at(at, Some(TimeZoneName::new("Asia/Tokyo").unwrap()))
}

fn suffixes(series: &Series) -> Vec<String> {
    series.occurrences().take(100).map(|o| o.suffix()).collect()
}

#[test]
fn until_dates_and_floating_times_are_read_in_the_series_zone() {
    let start = tokyo_eight(2030, 3, 1);
    let daily = |until: &str| {
        let line = format!("RRULE:FREQ=DAILY;UNTIL={until}");
        suffixes(&Series::new(&lines(&[&line]), &start, &start).unwrap())
    };
    // Google lists five: the end of 5 March in Tokyo is before 6 March 08:00.
    let five = [
        "20300228T230000Z",
        "20300301T230000Z",
        "20300302T230000Z",
        "20300303T230000Z",
        "20300304T230000Z",
    ];
    assert_eq!(daily("20300305"), five);
    // A floating time is wall-clock time in Tokyo, UTC only with a Z.
    assert_eq!(daily("20300305T080000"), five);
    assert_eq!(daily("20300305T075959"), five[..4]);
    assert_eq!(daily("20300304T230000Z"), five);
    assert_eq!(daily("20300304T225959Z"), five[..4]);
}

#[test]
fn exrule_takes_its_occurrences_out() {
    let start = tokyo_eight(2030, 3, 1); // a Friday
    let series = Series::new(
        &lines(&["RRULE:FREQ=DAILY;COUNT=7", "EXRULE:FREQ=WEEKLY;BYDAY=SA,SU"]),
        &start,
        &start,
    )
    .unwrap();
    assert_eq!(
        suffixes(&series),
        [
            "20300228T230000Z",
            "20300303T230000Z",
            "20300304T230000Z",
            "20300305T230000Z",
            "20300306T230000Z"
        ]
    );
    assert_eq!(
        series.last_end(),
        Some(Utc.with_ymd_and_hms(2030, 3, 6, 23, 0, 0).unwrap())
    );
}

#[test]
fn dtstart_is_the_first_instance_and_an_rdate_on_a_rule_date_counts_once() {
    let start = tokyo_eight(2030, 3, 1); // a Friday; the rule says Mondays
    let series = Series::new(
        &lines(&[
            "RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=2",
            "RDATE;TZID=Asia/Tokyo:20300304T080000,20300301T080000",
            "RDATE:20300320T120000Z",
        ]),
        &start,
        &start,
    )
    .unwrap();
    assert_eq!(
        suffixes(&series),
        [
            "20300228T230000Z",
            "20300303T230000Z",
            "20300310T230000Z",
            "20300320T120000Z"
        ]
    );
}

#[test]
fn floating_exdates_and_rdates_are_wall_clock_in_the_series_zone() {
    // Not the machine's zone: these read the same wherever calsync runs.
    let start = berlin_nine(2030, 3, 25);
    let series = Series::new(
        &lines(&[
            "RRULE:FREQ=DAILY;COUNT=4",
            "EXDATE:20300326T090000",
            "EXDATE;TZID=America/New_York:20300327T040000",
            "RDATE:20300331T023000",
        ]),
        &start,
        &start,
    )
    .unwrap();
    // 31 March 2030 02:30 does not exist in Berlin: the hour after it.
    assert_eq!(
        suffixes(&series),
        ["20300325T080000Z", "20300328T080000Z", "20300331T013000Z"]
    );
}

#[test]
fn a_date_on_a_timed_series_is_that_date_at_the_start_time() {
    // Not documented by Google; read as the emulator reads it.
    let start = tokyo_eight(2030, 3, 1);
    let series = Series::new(
        &lines(&[
            "RRULE:FREQ=DAILY;COUNT=3",
            "EXDATE;VALUE=DATE:20300302",
            "RDATE;VALUE=DATE:20300310",
        ]),
        &start,
        &start,
    )
    .unwrap();
    assert_eq!(
        suffixes(&series),
        ["20300228T230000Z", "20300302T230000Z", "20300309T230000Z"]
    );
}

#[test]
fn lines_calsync_cannot_expand_are_refused() {
    let start = tokyo_eight(2030, 3, 1);
    for bad in [
        &["EXRULE:FREQ=WEEKLY;BYDAY=SA"][..],
        &[
            "RRULE:FREQ=DAILY",
            "RDATE;VALUE=PERIOD:20300301T000000Z/PT1H",
        ],
        &["RRULE:FREQ=DAILY;UNTIL=2030"],
        &["RRULE:FREQ=DAILY;UNTIL=20200101"],
        &["RRULE;X-FOO=1:FREQ=DAILY"],
        &["RDATE;TZID=Mars/Olympus:20300301T080000"],
    ] {
        let err = Series::new(&lines(bad), &start, &start).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Unprocessable {
                    field: "recurrence",
                    ..
                }
            ),
            "{bad:?}: {err}"
        );
    }
}

#[test]
fn a_rule_that_never_matches_ends_instead_of_spinning() {
    let start = tokyo_eight(2030, 3, 1);
    for (rule, last_end) in [
        (
            "RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30;COUNT=2",
            Some(start.sort_key()),
        ),
        // Finer than daily: the walk's end is not trusted, kept as endless.
        ("RRULE:FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30;COUNT=2", None),
    ] {
        let series = Series::new(&lines(&[rule]), &start, &start).unwrap();
        assert_eq!(suffixes(&series), ["20300228T230000Z"], "{rule}");
        assert_eq!(series.last_end(), last_end, "{rule}");
    }
}

#[test]
fn instance_ids_split_only_on_an_instance_suffix() {
    assert_eq!(
        split_instance_id("abc_20260302T080000Z"),
        Some(("abc", "20260302T080000Z"))
    );
    assert_eq!(split_instance_id("abc_20260302"), Some(("abc", "20260302")));
    assert_eq!(split_instance_id("abc_def"), None);
    assert_eq!(split_instance_id("_20260302"), None);
    assert_eq!(split_instance_id("abc"), None);
}
