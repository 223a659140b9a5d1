//! The cases, each against a [`Contract`]: the provider under test and the
//! remote control arranging Google's side.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

use super::{
    Contract, WEBHOOK, by_id, cal, emails, id, kind, other_cal, rename, request, watch_request,
};
use crate::error::ProviderErrorKind as Kind;
use crate::event::{EventChanges, EventStatus};
use crate::ids::Etag;
use crate::ports::PatchCall;

pub async fn insert_get_patch_delete_round_trip(c: &Contract<'_>) {
    let event = c.local_event("1", 24);
    let event_id = event.google_event_id.clone();
    let created = c.google.insert_event(&event).await.unwrap();
    assert_eq!(created.id, event_id, "the client-chosen id");
    assert_eq!(created.status, EventStatus::Confirmed);
    assert_eq!(
        (
            created.summary.as_deref(),
            created.description.as_deref(),
            created.location.as_deref()
        ),
        (Some("Kick-off"), Some("Agenda"), Some("Room 1"))
    );
    assert_eq!(created.start.as_ref(), Some(&event.start));
    assert_eq!(created.end.as_ref(), Some(&event.end));
    assert_eq!(created.entity, event.entity, "the entity link is kept");
    assert_eq!(emails(&created.attendees), ["ann@example.com"]);
    assert_eq!(
        created.attendees[0].response_status.as_deref(),
        Some("needsAction"),
        "an invitee has not answered yet"
    );
    assert!(created.etag.is_some() && created.updated.is_some());
    assert!(created.ical_uid.is_some(), "Google assigns an iCalUID");
    assert!(created.html_link.is_some(), "and a link to the event");
    assert_eq!(
        created.organizer.as_ref().and_then(|o| o.email.as_deref()),
        Some(cal().as_str()),
        "the calendar inserted into organizes the event"
    );
    let fetched = c.google.get_event(&cal(), &event_id).await.unwrap();
    assert_eq!(fetched, created);

    let patched = c
        .google
        .patch_event(&rename(cal(), event_id.clone(), created.etag.clone()))
        .await
        .unwrap();
    assert_eq!(patched.summary.as_deref(), Some("Renamed"));
    assert_ne!(patched.etag, created.etag, "a write changes the etag");
    // Fields the patch does not name stay as Google has them.
    assert_eq!(
        (
            &patched.description,
            &patched.location,
            &patched.start,
            &patched.end,
            &patched.entity,
            patched.status,
            &patched.attendees,
        ),
        (
            &created.description,
            &created.location,
            &created.start,
            &created.end,
            &created.entity,
            EventStatus::Confirmed,
            &created.attendees,
        )
    );
    assert_eq!(
        c.google.get_event(&cal(), &event_id).await.unwrap(),
        patched
    );

    c.google
        .delete_event(&cal(), &event_id, patched.etag.as_ref())
        .await
        .unwrap();
    let deleted = c.google.get_event(&cal(), &event_id).await.unwrap();
    assert_eq!(
        deleted.status,
        EventStatus::Cancelled,
        "Google keeps a deleted event, cancelled"
    );
    let held = c.remote.held(&cal());
    assert_eq!(held.len(), 1);
    assert_eq!(
        (&held[0].id, held[0].status),
        (&event_id, EventStatus::Cancelled)
    );
}

pub async fn clearing_a_text_field_reads_back_as_absent(c: &Contract<'_>) {
    let event = c.local_event("1", 24);
    c.google.insert_event(&event).await.unwrap();
    let cleared = c
        .google
        .patch_event(&PatchCall {
            calendar_id: cal(),
            event_id: event.google_event_id.clone(),
            changes: EventChanges {
                description: Some(None),
                location: Some(None),
                ..EventChanges::default()
            },
            if_match: None,
        })
        .await
        .unwrap();
    // The domain's "no text" is `None`, as `EventChanges` clears it.
    assert_eq!((cleared.description, cleared.location), (None, None));
    assert_eq!(cleared.summary.as_deref(), Some("Kick-off"));
}

pub async fn inserting_a_taken_id_is_a_duplicate(c: &Contract<'_>) {
    let event = c.local_event("1", 24);
    c.google.insert_event(&event).await.unwrap();
    assert_eq!(
        kind(c.google.insert_event(&event).await),
        Kind::Duplicate,
        "a retried insert"
    );
    c.google
        .delete_event(&cal(), &event.google_event_id, None)
        .await
        .unwrap();
    assert_eq!(
        kind(c.google.insert_event(&event).await),
        Kind::Duplicate,
        "a deleted event's id stays reserved"
    );
    let theirs = c.remote.put(&cal(), c.remote_event("theirs0001", 2));
    let mut ours = c.local_event("2", 24);
    ours.google_event_id = theirs.id.clone();
    assert_eq!(
        kind(c.google.insert_event(&ours).await),
        Kind::Duplicate,
        "an id another user took"
    );
    // Ids are per calendar.
    let mut elsewhere = c.local_event("3", 24);
    elsewhere.calendar_id = other_cal();
    elsewhere.google_event_id = event.google_event_id.clone();
    let created = c.google.insert_event(&elsewhere).await.unwrap();
    assert_eq!(created.id, event.google_event_id);
}

pub async fn an_id_google_cannot_assign_is_refused(c: &Contract<'_>) {
    // Client ids are base32hex (`[a-v0-9]`), 5 to 1024 characters.
    for bad in ["Upper0001", "with_underscore", "abcd", "wxyz0001"] {
        let mut event = c.local_event("1", 24);
        event.google_event_id = id(bad);
        assert_eq!(
            kind(c.google.insert_event(&event).await),
            Kind::Permanent,
            "{bad}"
        );
    }
    assert!(c.remote.held(&cal()).is_empty());
}

pub async fn an_empty_calendar_lists_nothing_and_gives_a_sync_token(c: &Contract<'_>) {
    let (pages, token) = c.list_pages(&cal(), None, 10).await;
    assert_eq!(pages.len(), 1);
    assert!(pages[0].events.is_empty());
    let (pages, _) = c.list_pages(&cal(), Some(token), 10).await;
    assert!(pages[0].events.is_empty(), "nothing changed since");
}

pub async fn listing_pages_then_continues_from_the_sync_token(c: &Contract<'_>) {
    for i in 0..5 {
        c.remote
            .put(&cal(), c.remote_event(&format!("seed{i:04}"), i));
    }
    c.remote.put(&other_cal(), c.remote_event("other00001", 1));
    let (pages, token) = c.list_pages(&cal(), None, 2).await;
    assert_eq!(
        pages.iter().map(|p| p.events.len()).collect::<Vec<_>>(),
        [2, 2, 1]
    );
    let seen = by_id(&pages);
    assert_eq!(
        seen.keys().map(String::as_str).collect::<Vec<_>>(),
        ["seed0000", "seed0001", "seed0002", "seed0003", "seed0004"],
        "each event once, only this calendar's"
    );
    assert!(seen.values().all(|e| e.etag.is_some()));

    // Changes made at Google since the token: a rename, a deletion, a new event.
    c.remote.modify(&cal(), &id("seed0001"), "renamed");
    c.remote.remove(&cal(), &id("seed0002"));
    c.remote.put(&cal(), c.remote_event("late00001", 9));
    c.remote.put(&other_cal(), c.remote_event("other00002", 1));
    let (pages, next) = c.list_pages(&cal(), Some(token), 2).await;
    let changes = by_id(&pages);
    assert_eq!(
        changes.keys().map(String::as_str).collect::<Vec<_>>(),
        ["late00001", "seed0001", "seed0002"],
        "only what changed, only in this calendar"
    );
    assert_eq!(changes["seed0001"].summary.as_deref(), Some("renamed"));
    assert_eq!(changes["seed0001"].status, EventStatus::Confirmed);
    let removed = &changes["seed0002"];
    assert_eq!(
        removed.status,
        EventStatus::Cancelled,
        "a deletion comes as cancelled"
    );
    assert_eq!(
        (&removed.start, &removed.summary),
        (&None, &None),
        "a bare stub"
    );
    assert_eq!(changes["late00001"].status, EventStatus::Confirmed);

    let (pages, _) = c.list_pages(&cal(), Some(next), 2).await;
    assert!(by_id(&pages).is_empty(), "nothing changed since");

    // A full listing leaves the deleted event out.
    let (pages, _) = c.list_pages(&cal(), None, 100).await;
    assert_eq!(
        by_id(&pages).keys().map(String::as_str).collect::<Vec<_>>(),
        ["late00001", "seed0000", "seed0001", "seed0003", "seed0004"]
    );
}

pub async fn an_invalidated_sync_token_needs_a_full_sync(c: &Contract<'_>) {
    c.remote.put(&cal(), c.remote_event("seed0001", 1));
    let (_, token) = c.list_pages(&cal(), None, 10).await;
    c.remote.invalidate_sync_tokens();
    assert_eq!(
        kind(
            c.google
                .list_events(&cal(), &request(Some(token), None, 10))
                .await
        ),
        Kind::SyncTokenExpired
    );
    // A full listing starts over, and its token works.
    let (pages, fresh) = c.list_pages(&cal(), None, 10).await;
    assert_eq!(by_id(&pages).len(), 1);
    c.remote.put(&cal(), c.remote_event("seed0002", 2));
    let (pages, _) = c.list_pages(&cal(), Some(fresh), 10).await;
    assert_eq!(
        by_id(&pages).keys().map(String::as_str).collect::<Vec<_>>(),
        ["seed0002"]
    );
}

pub async fn a_stale_etag_fails_the_precondition(c: &Contract<'_>) {
    let event = c.local_event("1", 24);
    let event_id = event.google_event_id.clone();
    let created = c.google.insert_event(&event).await.unwrap();
    let stale = Etag::new("\"0\"").unwrap();
    assert_eq!(
        kind(
            c.google
                .patch_event(&rename(cal(), event_id.clone(), Some(stale.clone())))
                .await
        ),
        Kind::PreconditionFailed
    );
    assert_eq!(
        kind(c.google.delete_event(&cal(), &event_id, Some(&stale)).await),
        Kind::PreconditionFailed
    );
    // Another user's edit makes the etag we hold stale.
    c.remote.modify(&cal(), &event_id, "theirs");
    assert_eq!(
        kind(
            c.google
                .patch_event(&rename(cal(), event_id.clone(), created.etag.clone()))
                .await
        ),
        Kind::PreconditionFailed
    );
    assert_eq!(
        kind(
            c.google
                .delete_event(&cal(), &event_id, created.etag.as_ref())
                .await
        ),
        Kind::PreconditionFailed
    );
    let current = c.google.get_event(&cal(), &event_id).await.unwrap();
    assert_eq!(
        current.summary.as_deref(),
        Some("theirs"),
        "nothing was written"
    );
    assert_eq!(current.status, EventStatus::Confirmed);
    let patched = c
        .google
        .patch_event(&rename(cal(), event_id.clone(), current.etag.clone()))
        .await
        .unwrap();
    assert_eq!(patched.summary.as_deref(), Some("Renamed"));
    // `*` matches whatever etag Google holds.
    let any = Etag::new("*").unwrap();
    c.google
        .patch_event(&rename(cal(), event_id.clone(), Some(any.clone())))
        .await
        .unwrap();
    c.google
        .delete_event(&cal(), &event_id, Some(&any))
        .await
        .unwrap();
}

pub async fn writes_to_an_unknown_event_are_not_found(c: &Contract<'_>) {
    let unknown = id("unknown001");
    assert_eq!(
        kind(c.google.get_event(&cal(), &unknown).await),
        Kind::NotFound
    );
    assert_eq!(
        kind(
            c.google
                .patch_event(&rename(cal(), unknown.clone(), None))
                .await
        ),
        Kind::NotFound
    );
    assert_eq!(
        kind(c.google.delete_event(&cal(), &unknown, None).await),
        Kind::NotFound
    );
    assert!(
        c.google.calendar_accessible(&cal()).await.unwrap(),
        "the calendar is there: the event is what is missing"
    );
}

pub async fn writes_to_an_event_deleted_at_google_are_gone(c: &Contract<'_>) {
    let event = c.local_event("1", 24);
    let event_id = event.google_event_id.clone();
    let created = c.google.insert_event(&event).await.unwrap();
    c.remote.remove(&cal(), &event_id);
    assert_eq!(
        kind(
            c.google
                .patch_event(&rename(cal(), event_id.clone(), None))
                .await
        ),
        Kind::Gone
    );
    assert_eq!(
        kind(
            c.google
                .patch_event(&rename(cal(), event_id.clone(), created.etag.clone()))
                .await
        ),
        Kind::Gone,
        "the deletion is reported before the etag"
    );
    assert_eq!(
        kind(c.google.delete_event(&cal(), &event_id, None).await),
        Kind::Gone
    );
    let held = c.google.get_event(&cal(), &event_id).await.unwrap();
    assert_eq!(
        held.status,
        EventStatus::Cancelled,
        "a patch without status does not undelete"
    );
    // A patch that sets a live status restores it, as at Google.
    let restored = c
        .google
        .patch_event(&PatchCall {
            calendar_id: cal(),
            event_id: event_id.clone(),
            changes: EventChanges {
                status: Some(EventStatus::Confirmed),
                ..EventChanges::default()
            },
            if_match: None,
        })
        .await
        .unwrap();
    assert_eq!(restored.status, EventStatus::Confirmed);
    assert_eq!(restored.summary.as_deref(), Some("Kick-off"));
    assert_eq!(
        c.google.get_event(&cal(), &event_id).await.unwrap().status,
        EventStatus::Confirmed
    );
}

pub async fn watch_then_stop_a_channel(c: &Contract<'_>) {
    let first = watch_request(WEBHOOK);
    let grant = c.google.watch(&cal(), &first).await.unwrap();
    let expected = c.now + chrono::Duration::hours(1);
    assert!(
        (grant.expiration - expected).num_seconds().abs() < 60,
        "the requested lifetime: {} vs {expected}",
        grant.expiration
    );
    let second = watch_request(WEBHOOK);
    let other = c.google.watch(&cal(), &second).await.unwrap();
    assert_ne!(other.resource_id, grant.resource_id);
    assert_eq!(
        kind(c.google.watch(&cal(), &first).await),
        Kind::Permanent,
        "a channel id is used once"
    );
    assert_eq!(
        kind(
            c.google
                .watch(
                    &cal(),
                    &watch_request("http://calsync.example.com/webhooks/calendar")
                )
                .await
        ),
        Kind::Permanent,
        "Google delivers over HTTPS only"
    );
    assert_eq!(
        kind(
            c.google
                .stop_channel(&cal(), &first.channel_id, &other.resource_id)
                .await
        ),
        Kind::NotFound,
        "stop needs the channel's own resource id"
    );
    c.google
        .stop_channel(&cal(), &first.channel_id, &grant.resource_id)
        .await
        .unwrap();
    assert_eq!(
        kind(
            c.google
                .stop_channel(&cal(), &first.channel_id, &grant.resource_id)
                .await
        ),
        Kind::NotFound,
        "stopped already"
    );
    c.google
        .stop_channel(&cal(), &second.channel_id, &other.resource_id)
        .await
        .unwrap();
}

pub async fn an_unreachable_calendar_is_not_accessible(c: &Contract<'_>) {
    let event = c.local_event("1", 24);
    let event_id = event.google_event_id.clone();
    c.google.insert_event(&event).await.unwrap();
    assert!(c.google.calendar_accessible(&cal()).await.unwrap());
    c.remote.set_unreachable(&cal(), true);
    assert!(!c.google.calendar_accessible(&cal()).await.unwrap());
    assert!(
        c.google.calendar_accessible(&other_cal()).await.unwrap(),
        "only that calendar"
    );
    // Google answers 404 to every call on it: listing and watching need
    // the calendar reconnected; to a write the event looks missing.
    assert_eq!(
        kind(c.google.list_events(&cal(), &request(None, None, 10)).await),
        Kind::ReconnectRequired
    );
    assert_eq!(
        kind(c.google.watch(&cal(), &watch_request(WEBHOOK)).await),
        Kind::ReconnectRequired
    );
    assert_eq!(
        kind(c.google.get_event(&cal(), &event_id).await),
        Kind::NotFound
    );
    assert_eq!(
        kind(
            c.google
                .patch_event(&rename(cal(), event_id.clone(), None))
                .await
        ),
        Kind::NotFound
    );
    assert_eq!(
        kind(c.google.delete_event(&cal(), &event_id, None).await),
        Kind::NotFound
    );
    assert_eq!(
        kind(c.google.insert_event(&c.local_event("2", 24)).await),
        Kind::NotFound
    );
    c.remote.set_unreachable(&cal(), false);
    assert!(c.google.calendar_accessible(&cal()).await.unwrap());
    assert_eq!(
        c.google
            .get_event(&cal(), &event_id)
            .await
            .unwrap()
            .summary
            .as_deref(),
        Some("Kick-off"),
        "nothing was lost meanwhile"
    );
}
