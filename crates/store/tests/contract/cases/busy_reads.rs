//! Free/busy's reads: the longest span a window's rows can have, and the
//! single events of several calendars read at once, reduced to what the
//! busy rule needs (`busy_candidates`), against the per-calendar listing
//! they replace.

use calsync_domain::freebusy::rule::{BusyCalendar, BusyCandidate, BusyQuery};

use super::series::{exception, series};
use super::*;

fn on(calendar: &str, mut event: RemoteEvent) -> (CalendarId, RemoteEvent) {
    // Ids are per calendar; keep them apart anyway, for messages.
    event.id = EventId::new(format!("{}{}", &calendar[..2], event.id)).unwrap();
    (CalendarId::new(calendar).unwrap(), event)
}

/// Single events of every shape the busy rule tells apart, a series with
/// an exception, and a month-long single, over three calendars.
fn rows() -> Vec<(CalendarId, RemoteEvent)> {
    let mut rows = Vec::new();
    for (c, calendar) in ["aa@example.com", "bb@example.com", "cc@example.com"]
        .into_iter()
        .enumerate()
    {
        for hours in [-50, -3, 0, 2, 26, 70] {
            let hours = hours + i64::try_from(c).unwrap();
            rows.push(on(
                calendar,
                remote(&format!("t{}", hours + 100), "\"1\"", hours),
            ));
        }
        let mut all_day = remote("allday01", "\"1\"", 0);
        let day = now().date_naive();
        all_day.start = Some(EventTime::date(day));
        all_day.end = Some(EventTime::date(day + Duration::days(2)));
        rows.push(on(calendar, all_day));
        let mut transparent = remote("transp01", "\"1\"", 5);
        transparent.details.transparency = Some("transparent".into());
        rows.push(on(calendar, transparent));
        let mut declined = remote("declin01", "\"1\"", 6);
        let mut own = Attendee::new(calendar).unwrap();
        own.response_status = Some("declined".into());
        declined.attendees = vec![own];
        rows.push(on(calendar, declined));
        let mut marked = remote("marked01", "\"1\"", 7);
        marked.event_type = EventType::OutOfOffice;
        marked.google = Some(serde_json::json!({
            "id": "marked01",
            "summary": "a long copy nobody needs here",
            "attendees": [
                {"email": "alias@example.com", "self": true, "responseStatus": "tentative"},
                {"email": "boss@example.com", "responseStatus": "accepted"},
            ],
        }));
        rows.push(on(calendar, marked));
        let mut plain_copy = remote("copy0001", "\"1\"", 8);
        plain_copy.google = Some(serde_json::json!({"id": "copy0001"}));
        rows.push(on(calendar, plain_copy));
        let mut cancelled = remote("cancel01", "\"1\"", 9);
        cancelled.status = EventStatus::Cancelled;
        rows.push(on(calendar, cancelled));
        // A month long, started three weeks ago: it overlaps every window
        // below, and only a bound at least its length finds it.
        let mut long = remote("longone1", "\"1\"", -21 * 24);
        long.end = Some(EventTime::at(now() + Duration::days(9), None));
        if c != 2 {
            rows.push(on(calendar, long));
        }
        let master = series("weekly01", -14, "RRULE:FREQ=WEEKLY");
        rows.push(on(calendar, master));
        let mut moved = exception("weekly01", now() - Duration::days(7));
        moved.recurring_event_id =
            Some(EventId::new(format!("{}weekly01", &calendar[..2])).unwrap());
        rows.push(on(calendar, moved));
    }
    rows
}

async fn seed(store: &Arc<dyn Store>) -> Vec<CalendarId> {
    let mut calendars: Vec<CalendarId> = Vec::new();
    let all = rows();
    for (calendar, _) in &all {
        if !calendars.contains(calendar) {
            calendars.push(calendar.clone());
        }
    }
    for calendar in &calendars {
        let events = all
            .iter()
            .filter(|(c, _)| c == calendar)
            .map(|(_, e)| e.clone())
            .collect();
        store
            .apply_sync_page(&SyncPage {
                calendar_id: calendar.clone(),
                ..page(events, SyncRun::Incremental, None)
            })
            .await
            .unwrap();
    }
    calendars
}

fn sorted(mut candidates: Vec<BusyCandidate>) -> Vec<BusyCandidate> {
    candidates.sort_by_key(|c| {
        (
            c.calendar_id.to_string(),
            c.start.sort_key(),
            c.end.sort_key(),
            format!("{c:?}"),
        )
    });
    candidates
}

/// What the per-calendar listing of live single events reads, as candidates.
async fn per_calendar(store: &Arc<dyn Store>, query: &BusyQuery) -> Vec<BusyCandidate> {
    let mut out = Vec::new();
    for calendar in &query.calendars {
        let events = store
            .list_events(&EventQuery {
                calendar_id: Some(calendar.calendar_id.clone()),
                kind: Some(EventKind::Single),
                ends_after: Some(query.ends_after),
                starts_before: Some(query.starts_before),
                starts_from: calendar.starts_from,
                limit: 10_000,
                ..EventQuery::default()
            })
            .await
            .unwrap();
        out.extend(
            events
                .iter()
                .filter(|e| e.status != EventStatus::Cancelled)
                .map(BusyCandidate::of),
        );
    }
    sorted(out)
}

pub async fn busy_candidates_equal_the_per_calendar_reads(store: &Arc<dyn Store>) {
    let calendars = seed(store).await;
    let mut unknown = calendars.clone();
    unknown.push(CalendarId::new("nobody@example.com").unwrap());
    let mut checked = 0;
    for (from_hours, hours) in [(-1, 24), (-72, 200), (25, 1), (-24 * 30, 24 * 60)] {
        let from = now() + Duration::hours(from_hours);
        for bound in [None, Some(Duration::zero()), Some(Duration::days(40))] {
            let query = BusyQuery {
                calendars: unknown
                    .iter()
                    .map(|c| BusyCalendar {
                        calendar_id: c.clone(),
                        starts_from: bound.map(|b| from - b),
                    })
                    .collect(),
                ends_after: from,
                starts_before: from + Duration::hours(hours),
            };
            let expected = per_calendar(store, &query).await;
            let read = sorted(store.busy_candidates(&query).await.unwrap());
            assert_eq!(
                read, expected,
                "window {from_hours}h +{hours}h, bound {bound:?}"
            );
            checked += read.len();
        }
    }
    assert!(checked > 50, "the windows must hold rows: {checked}");
    // Google's copy is reduced to its attendees, as stored.
    let query = BusyQuery {
        calendars: vec![BusyCalendar {
            calendar_id: calendars[0].clone(),
            starts_from: None,
        }],
        ends_after: now() + Duration::hours(7),
        starts_before: now() + Duration::hours(9),
    };
    let read = sorted(store.busy_candidates(&query).await.unwrap());
    let marked = read
        .iter()
        .find(|c| c.event_type == EventType::OutOfOffice)
        .unwrap();
    assert_eq!(marked.google_attendees.len(), 2);
    assert_eq!(marked.google_attendees[0]["self"], serde_json::json!(true));
    // A copy without attendees, and rows without a copy, read none.
    assert!(
        read.iter()
            .filter(|c| c.event_type != EventType::OutOfOffice)
            .all(|c| c.google_attendees.is_empty()),
        "{read:?}"
    );
    assert!(read.iter().all(|c| c.status != EventStatus::Cancelled));
    // No calendar: nothing, and no error.
    let none = BusyQuery {
        calendars: Vec::new(),
        ..query
    };
    assert!(store.busy_candidates(&none).await.unwrap().is_empty());
}

/// At least the exact span, and at most a couple of milliseconds more (the
/// SQL stores take the maximum in the database, as floats).
fn assert_span(found: Option<Duration>, exact: Option<Duration>, what: &str) {
    match (found, exact) {
        (Some(found), Some(exact)) => assert!(
            found >= exact && found <= exact + Duration::milliseconds(2),
            "{what}: {found} for an exact {exact}"
        ),
        (found, exact) => assert_eq!(found, exact, "{what}"),
    }
}

pub async fn the_longest_span_covers_every_row_but_masters(store: &Arc<dyn Store>) {
    assert_eq!(store.longest_span(None).await.unwrap(), None);
    let calendars = seed(store).await;
    let all = all_events(store).await;
    let longest = |calendar: Option<&CalendarId>| {
        all.iter()
            .filter(|e| calendar.is_none_or(|c| *c == e.calendar_id))
            .filter(|e| e.kind() != EventKind::Master)
            .map(|e| e.end.sort_key() - e.start.sort_key())
            .max()
    };
    for calendar in &calendars {
        assert_span(
            store.longest_span(Some(calendar)).await.unwrap(),
            longest(Some(calendar)),
            calendar.as_str(),
        );
    }
    // The month-long single is not in the third calendar.
    assert_span(
        store.longest_span(Some(&calendars[0])).await.unwrap(),
        Some(Duration::days(30)),
        "the first calendar",
    );
    assert_span(
        store.longest_span(Some(&calendars[2])).await.unwrap(),
        Some(Duration::days(2)),
        "the third calendar",
    );
    assert_span(
        store.longest_span(None).await.unwrap(),
        Some(Duration::days(30)),
        "every calendar",
    );
    // A cancelled row still counts (a listing of every status shows it).
    let mut hundred_days = remote("ccancel2", "\"1\"", -24 * 100);
    hundred_days.end = Some(EventTime::at(now(), None));
    for status in [EventStatus::Confirmed, EventStatus::Cancelled] {
        hundred_days.status = status;
        store
            .apply_sync_page(&SyncPage {
                calendar_id: calendars[2].clone(),
                ..page(vec![hundred_days.clone()], SyncRun::Incremental, None)
            })
            .await
            .unwrap();
    }
    let stored = store
        .find_by_google_id(&calendars[2], &hundred_days.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, EventStatus::Cancelled);
    assert_span(
        store.longest_span(Some(&calendars[2])).await.unwrap(),
        Some(stored.end.sort_key() - stored.start.sort_key()),
        "with the cancelled row",
    );
    assert!(stored.end.sort_key() - stored.start.sort_key() >= Duration::days(30));
    assert_eq!(
        store
            .longest_span(Some(&CalendarId::new("nobody@example.com").unwrap()))
            .await
            .unwrap(),
        None
    );
}
