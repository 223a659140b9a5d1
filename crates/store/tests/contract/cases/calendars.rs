//! The managed calendars: which calendars calsync mirrors, and whom it acts as for each.

use calsync_domain::calendar::{ManagedCalendar, Subject};
use calsync_domain::ports::CalendarStore;

use super::*;

pub fn calendar_id(id: &str) -> CalendarId {
    CalendarId::new(id).unwrap()
}

pub fn managed(id: &str, subject: Option<&str>, at: DateTime<Utc>) -> ManagedCalendar {
    ManagedCalendar {
        calendar_id: calendar_id(id),
        subject: subject.map(|s| Subject::new(s).unwrap()),
        grant: None,
        created_at: at,
        updated_at: at,
    }
}

/// A time with nanoseconds: the store keeps microseconds.
fn precise(at: DateTime<Utc>) -> DateTime<Utc> {
    at + Duration::nanoseconds(123_456_789)
}

fn to_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::SubsecRound;
    at.trunc_subsecs(6)
}

pub async fn a_managed_calendar_is_upserted_and_read_back(store: &Arc<dyn Store>) {
    let first = managed(
        "team@example.com",
        Some("alice@example.com"),
        precise(now()),
    );
    let stored = store.upsert_calendar(&first).await.unwrap();
    assert_eq!(
        stored,
        ManagedCalendar {
            created_at: to_micros(first.created_at),
            updated_at: to_micros(first.updated_at),
            ..first.clone()
        }
    );
    assert_eq!(
        store.get_calendar(&first.calendar_id).await.unwrap(),
        Some(stored.clone())
    );
    assert_eq!(
        store
            .get_calendar(&calendar_id("other@example.com"))
            .await
            .unwrap(),
        None
    );

    // Upserting again replaces the subject and `updated_at`, and keeps
    // `created_at` whatever the new record says.
    let later = precise(now() + Duration::hours(1));
    let mut second = managed("team@example.com", Some("bob@example.com"), later);
    second.created_at = later + Duration::days(1);
    let replaced = store.upsert_calendar(&second).await.unwrap();
    assert_eq!(
        replaced,
        ManagedCalendar {
            calendar_id: first.calendar_id.clone(),
            subject: Some(Subject::new("bob@example.com").unwrap()),
            grant: None,
            created_at: stored.created_at,
            updated_at: to_micros(later),
        }
    );
    assert_eq!(
        store.get_calendar(&first.calendar_id).await.unwrap(),
        Some(replaced.clone())
    );
    assert_eq!(store.list_calendars().await.unwrap(), [replaced]);
}

pub async fn a_managed_calendar_without_a_subject_round_trips(store: &Arc<dyn Store>) {
    let plain = managed("plain@example.com", None, now());
    assert_eq!(store.upsert_calendar(&plain).await.unwrap(), plain);
    assert_eq!(
        store.get_calendar(&plain.calendar_id).await.unwrap(),
        Some(plain.clone())
    );
    // A subject set, then cleared again: `None` replaces it too.
    let with = managed(
        "plain@example.com",
        Some("carol@example.com"),
        now() + Duration::minutes(1),
    );
    store.upsert_calendar(&with).await.unwrap();
    let without = managed("plain@example.com", None, now() + Duration::minutes(2));
    let cleared = store.upsert_calendar(&without).await.unwrap();
    assert_eq!(cleared.subject, None);
    assert_eq!(cleared.created_at, now());
    assert_eq!(
        store.get_calendar(&plain.calendar_id).await.unwrap(),
        Some(cleared.clone())
    );
    assert_eq!(store.list_calendars().await.unwrap(), [cleared]);
}

pub async fn managed_calendars_are_listed_by_id(store: &Arc<dyn Store>) {
    assert_eq!(store.list_calendars().await.unwrap(), []);
    // Inserted out of order, and in mixed case: listed by the id's bytes,
    // as `CalendarId` orders (upper case first), whatever the collation.
    for (i, id) in [
        "b@example.com",
        "a@example.com",
        "B@example.com",
        "c@group.calendar.google.com",
    ]
    .into_iter()
    .enumerate()
    {
        let at = now() - Duration::minutes(i64::try_from(i).unwrap());
        store.upsert_calendar(&managed(id, None, at)).await.unwrap();
    }
    let ids: Vec<String> = store
        .list_calendars()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.calendar_id.to_string())
        .collect();
    assert_eq!(
        ids,
        [
            "B@example.com",
            "a@example.com",
            "b@example.com",
            "c@group.calendar.google.com"
        ]
    );
}

pub async fn deleting_a_managed_calendar_reports_whether_it_was_there(store: &Arc<dyn Store>) {
    // Its sync state stays when it is forgotten.
    store.mark_dirty(&cal(), true).await.unwrap();
    store
        .upsert_calendar(&managed(cal().as_str(), Some("dana@example.com"), now()))
        .await
        .unwrap();
    store
        .upsert_calendar(&managed("kept@example.com", None, now()))
        .await
        .unwrap();

    assert!(store.delete_calendar(&cal()).await.unwrap());
    assert_eq!(store.get_calendar(&cal()).await.unwrap(), None);
    assert!(!store.delete_calendar(&cal()).await.unwrap());
    assert!(
        !store
            .delete_calendar(&calendar_id("never@example.com"))
            .await
            .unwrap()
    );
    let left: Vec<CalendarId> = store
        .list_calendars()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.calendar_id)
        .collect();
    assert_eq!(left, [calendar_id("kept@example.com")]);
    assert!(store.sync_state(&cal()).await.unwrap().is_some());

    // Managed again afresh.
    let again = managed(cal().as_str(), None, now() + Duration::hours(2));
    assert_eq!(store.upsert_calendar(&again).await.unwrap(), again);
}
