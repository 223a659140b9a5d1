//! Calendar events as the mirror holds them: the event and its parts
//! ([`types`]), a new event ([`new`]), a change to one ([`changes`]).

mod apply;
mod changes;
mod copies;
mod details;
mod new;
mod query;
mod types;

pub use changes::EventChanges;
pub use copies::{CopyRights, check_copy_change};
pub use details::{
    Conference, ConferenceStatus, EntryPoint, EventDetails, EventType, ReminderOverride, Reminders,
};
pub use new::{NewEvent, NewEventFields};
pub use query::EventQuery;
pub(crate) use types::ends_before;
pub use types::*;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, Result};
    use crate::ids::{CalendarId, EntityRef, EventId};
    use chrono::{DateTime, NaiveDate, TimeZone, Utc};

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn new_event(start: EventTime, end: EventTime) -> Result<NewEvent> {
        NewEvent::new(
            CalendarId::new("cal@example.com").unwrap(),
            EntityRef::new("deal", "1").unwrap(),
            start,
            end,
            NewEventFields::default(),
        )
    }

    #[test]
    fn end_before_start_is_rejected() {
        let t = Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap();
        let err = new_event(
            EventTime::at(t, None),
            EventTime::at(t - chrono::Duration::minutes(1), None),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Invalid { field: "end", .. }));
        assert!(new_event(EventTime::at(t, None), EventTime::at(t, None)).is_ok());
    }

    #[test]
    fn all_day_end_is_exclusive() {
        let err = new_event(
            EventTime::date(day(2026, 3, 1)),
            EventTime::date(day(2026, 3, 1)),
        );
        assert!(err.is_err(), "an all-day event must end on a later date");
        assert!(
            new_event(
                EventTime::date(day(2026, 3, 1)),
                EventTime::date(day(2026, 3, 2))
            )
            .is_ok()
        );
    }

    #[test]
    fn times_outside_years_1_to_9999_are_refused() {
        let far = "+10000-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let t = Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap();
        let err = new_event(EventTime::at(t, None), EventTime::at(far, None)).unwrap_err();
        assert!(matches!(err, Error::Invalid { field: "end", .. }), "{err}");
        // 9999-12-31T23:30-01:00 is in the year 10000 in UTC.
        let late = chrono::DateTime::parse_from_rfc3339("9999-12-31T23:30:00-01:00")
            .unwrap()
            .with_timezone(&Utc);
        assert!(!in_supported_range(late));
        let early = Utc.with_ymd_and_hms(0, 12, 31, 0, 0, 0).unwrap();
        assert!(!in_supported_range(early));
        assert!(
            new_event(
                EventTime::date(day(9999, 12, 30)),
                EventTime::date(day(9999, 12, 31))
            )
            .is_ok()
        );
    }

    #[test]
    fn text_with_nul_is_refused() {
        let fields = NewEventFields {
            description: Some("a\u{0}b".into()),
            ..NewEventFields::default()
        };
        let err = NewEvent::new(
            CalendarId::new("c@x.y").unwrap(),
            EntityRef::new("deal", "1").unwrap(),
            EventTime::date(day(2026, 1, 1)),
            EventTime::date(day(2026, 1, 2)),
            fields,
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Invalid {
                    field: "description",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn mixed_kinds_are_rejected() {
        let t = Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap();
        assert!(new_event(EventTime::date(day(2026, 3, 1)), EventTime::at(t, None)).is_err());
    }

    #[test]
    fn lengths_are_bounded() {
        let fields = NewEventFields {
            summary: Some("x".repeat(limits::SUMMARY_CHARS + 1)),
            ..NewEventFields::default()
        };
        let err = NewEvent::new(
            CalendarId::new("c@x.y").unwrap(),
            EntityRef::new("deal", "1").unwrap(),
            EventTime::date(day(2026, 1, 1)),
            EventTime::date(day(2026, 1, 2)),
            fields,
        )
        .unwrap_err();
        assert!(matches!(
            err,
            Error::Invalid {
                field: "summary",
                ..
            }
        ));
        assert!(Attendee::new("not-an-email").is_err());
        assert!(Attendee::new("a@b.c").is_ok());
        assert!(TimeZoneName::new("Europe/Berlin").is_ok());
        assert!(TimeZoneName::new("America/Argentina/Buenos_Aires").is_ok());
        assert!(TimeZoneName::new("Etc/GMT+5").is_ok());
        assert!(TimeZoneName::new("../etc").is_err());
        assert!(TimeZoneName::new("").is_err());
    }

    #[test]
    fn new_events_get_a_derived_google_id_and_pending_state() {
        let now = Utc::now();
        let event = new_event(
            EventTime::date(day(2026, 3, 1)),
            EventTime::date(day(2026, 3, 2)),
        )
        .unwrap()
        .into_event(now);
        assert_eq!(event.google_event_id, EventId::for_local(event.id));
        assert_eq!(event.push_state, PushState::Pending);
        assert_eq!(event.entity, Some(EntityRef::new("deal", "1").unwrap()));
    }

    #[test]
    fn event_time_json_uses_googles_shape() {
        let date: EventTime = serde_json::from_str(r#"{"date":"2026-03-01"}"#).unwrap();
        assert_eq!(date, EventTime::date(day(2026, 3, 1)));
        let at: EventTime = serde_json::from_str(
            r#"{"dateTime":"2026-03-01T10:00:00+01:00","timeZone":"Europe/Berlin"}"#,
        )
        .unwrap();
        assert_eq!(
            at,
            EventTime::at(
                Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap(),
                Some(TimeZoneName::new("Europe/Berlin").unwrap())
            )
        );
        assert_eq!(
            serde_json::to_string(&EventTime::date(day(2026, 3, 1))).unwrap(),
            r#"{"date":"2026-03-01"}"#
        );
    }

    #[test]
    fn changes_are_validated_against_the_whole_event() {
        let now = Utc::now();
        let event = new_event(
            EventTime::date(day(2026, 3, 1)),
            EventTime::date(day(2026, 3, 3)),
        )
        .unwrap()
        .into_event(now);
        let moved_past_end = EventChanges {
            start: Some(EventTime::date(day(2026, 3, 5))),
            ..EventChanges::default()
        };
        assert!(moved_past_end.apply_to(&event, now).is_err());
        let renamed = EventChanges {
            summary: Some(Some("Kick-off".into())),
            ..EventChanges::default()
        }
        .apply_to(&event, now)
        .unwrap();
        assert_eq!(renamed.summary.as_deref(), Some("Kick-off"));
        assert_eq!(renamed.push_state, PushState::Pending);
    }

    fn series(start: EventTime, end: EventTime, rule: &str) -> Result<NewEvent> {
        NewEvent::new(
            CalendarId::new("cal@example.com").unwrap(),
            EntityRef::new("deal", "1").unwrap(),
            start,
            end,
            NewEventFields {
                recurrence: vec![rule.into()],
                ..NewEventFields::default()
            },
        )
    }

    #[test]
    fn a_timed_series_needs_a_zone_on_start_and_end() {
        let t = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
        let berlin = || Some(TimeZoneName::new("Europe/Berlin").unwrap());
        let hour = chrono::Duration::hours(1);
        let rule = "RRULE:FREQ=WEEKLY";
        let err = series(EventTime::at(t, None), EventTime::at(t + hour, None), rule).unwrap_err();
        let Error::Unprocessable { field, reason } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(*field, "start.timeZone");
        assert!(
            reason.contains("required") || reason.contains("requires"),
            "{reason}"
        );
        let err = series(
            EventTime::at(t, berlin()),
            EventTime::at(t + hour, None),
            rule,
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Unprocessable {
                    field: "end.timeZone",
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            series(
                EventTime::at(t, berlin()),
                EventTime::at(t + hour, berlin()),
                rule
            )
            .is_ok()
        );
        assert!(
            series(
                EventTime::date(day(2026, 3, 2)),
                EventTime::date(day(2026, 3, 3)),
                "RRULE:FREQ=YEARLY"
            )
            .is_ok(),
            "an all-day series needs no zone"
        );
        assert!(
            new_event(EventTime::at(t, None), EventTime::at(t + hour, None)).is_ok(),
            "a single event needs no zone"
        );
    }

    #[test]
    fn changes_are_judged_on_the_series_they_leave() {
        let now = Utc::now();
        let t = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
        let hour = chrono::Duration::hours(1);
        let single = new_event(EventTime::at(t, None), EventTime::at(t + hour, None))
            .unwrap()
            .into_event(now);
        let made_recurring = EventChanges {
            recurrence: Some(vec!["RRULE:FREQ=DAILY".into()]),
            ..EventChanges::default()
        };
        let err = made_recurring.apply_to(&single, now).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Unprocessable {
                    field: "start.timeZone",
                    ..
                }
            ),
            "{err}"
        );
        let zone = Some(TimeZoneName::new("Europe/Berlin").unwrap());
        let zoned = EventChanges {
            start: Some(EventTime::at(t, zone.clone())),
            end: Some(EventTime::at(t + hour, zone.clone())),
            ..made_recurring.clone()
        };
        let master = zoned.apply_to(&single, now).unwrap();
        assert!(master.is_master());
        let unzoned_move = EventChanges {
            end: Some(EventTime::at(t + hour + hour, None)),
            ..EventChanges::default()
        };
        let err = unzoned_move.apply_to(&master, now).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Unprocessable {
                    field: "end.timeZone",
                    ..
                }
            ),
            "{err}"
        );
        let ended = EventChanges {
            recurrence: Some(vec![]),
            start: Some(EventTime::at(t, None)),
            ..EventChanges::default()
        };
        assert!(ended.apply_to(&master, now).is_ok(), "no longer a series");
        let all_day = EventChanges {
            start: Some(EventTime::date(day(2026, 3, 2))),
            end: Some(EventTime::date(day(2026, 3, 3))),
            ..EventChanges::default()
        };
        assert!(all_day.apply_to(&master, now).is_ok());
    }

    #[test]
    fn ended_before_treats_all_day_end_as_exclusive() {
        let now = Utc::now();
        let mut event = new_event(
            EventTime::date(day(2026, 3, 1)),
            EventTime::date(day(2026, 3, 2)),
        )
        .unwrap()
        .into_event(now);
        let cutoff = Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap();
        assert!(
            event.ended_before(cutoff),
            "a 1 March event is over on 2 March"
        );
        let cutoff_earlier = Utc.with_ymd_and_hms(2026, 3, 1, 23, 0, 0).unwrap();
        assert!(!event.ended_before(cutoff_earlier));
        event.end = EventTime::at(cutoff, None);
        assert!(
            !event.ended_before(cutoff),
            "an instant end equal to the cutoff is not before it"
        );
    }
}
