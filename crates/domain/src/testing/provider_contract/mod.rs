//! The provider contract: cases written once against the domain's
//! [`CalendarProvider`] port, run on [`FakeCalendar`] (calsync-domain's
//! `tests/provider_contract.rs`) and on the Google adapter against the
//! emulator over HTTP (calsync-google's `tests/provider_contract/main.rs`), so
//! the fake is held to what the real adapter does.
//!
//! Each side hands the cases a [`Contract`]: the provider under test and a
//! [`RemoteControl`] that arranges Google's side (what another Google user,
//! or Google itself, does). [`provider_contract!`](crate::provider_contract)
//! declares one test per case; a side that cannot pass a case lists it as
//! skipped, with why, and a guard test checks every case in [`CASES`] is
//! either run or skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

mod cases;

pub use cases::*;

use super::FakeCalendar;
use crate::channel::WatchRequest;
use crate::error::{ProviderErrorKind as Kind, Result};
use crate::event::{
    Attendee, Event, EventChanges, EventStatus, EventTime, NewEvent, NewEventFields,
};
use crate::ids::{CalendarId, ChannelId, EntityRef, Etag, EventId};
use crate::ports::{CalendarProvider, PatchCall};
use crate::sync::{ChangePage, ListRequest, RemoteEvent};

/// Arranges and reads Google's side of a case, bypassing the provider.
pub trait RemoteControl: Send + Sync {
    /// Creates an event with the given id as another Google user would
    /// (Google stamps its etag and `updated`); answers it as Google holds it.
    fn put(&self, calendar_id: &CalendarId, event: RemoteEvent) -> RemoteEvent;

    /// Renames an existing event as another Google user would.
    fn modify(&self, calendar_id: &CalendarId, id: &EventId, summary: &str);

    /// Deletes an event as another Google user would (it stays, cancelled).
    fn remove(&self, calendar_id: &CalendarId, id: &EventId);

    /// Makes every outstanding sync token expire (their next use is a 410).
    fn invalidate_sync_tokens(&self);

    /// Takes away (or gives back) this principal's access to the calendar:
    /// Google then answers 404 to every call on it.
    fn set_unreachable(&self, calendar_id: &CalendarId, unreachable: bool);

    /// Every event Google holds for the calendar, cancelled ones included.
    fn held(&self, calendar_id: &CalendarId) -> Vec<RemoteEvent>;
}

impl RemoteControl for FakeCalendar {
    fn put(&self, calendar_id: &CalendarId, event: RemoteEvent) -> RemoteEvent {
        FakeCalendar::put(self, calendar_id, event)
    }

    fn modify(&self, calendar_id: &CalendarId, id: &EventId, summary: &str) {
        let mut event = self
            .events(calendar_id)
            .into_iter()
            .find(|e| e.id == *id)
            .unwrap_or_else(|| panic!("no event {id} to modify"));
        event.summary = Some(summary.to_owned());
        FakeCalendar::put(self, calendar_id, event);
    }

    fn remove(&self, calendar_id: &CalendarId, id: &EventId) {
        FakeCalendar::remove(self, calendar_id, id);
    }

    fn invalidate_sync_tokens(&self) {
        FakeCalendar::invalidate_sync_tokens(self);
    }

    fn set_unreachable(&self, calendar_id: &CalendarId, unreachable: bool) {
        FakeCalendar::set_unreachable(self, calendar_id, unreachable);
    }

    fn held(&self, calendar_id: &CalendarId) -> Vec<RemoteEvent> {
        self.events(calendar_id)
    }
}

/// What a case runs against.
pub struct Contract<'a> {
    pub google: &'a dyn CalendarProvider,
    pub remote: &'a dyn RemoteControl,
    /// The provider's present (events are placed relative to it, channel
    /// expiries are checked against it).
    pub now: DateTime<Utc>,
}

/// Every case, by name: each side runs or skips all of them.
pub const CASES: &[&str] = &[
    "insert_get_patch_delete_round_trip",
    "clearing_a_text_field_reads_back_as_absent",
    "inserting_a_taken_id_is_a_duplicate",
    "an_id_google_cannot_assign_is_refused",
    "an_empty_calendar_lists_nothing_and_gives_a_sync_token",
    "listing_pages_then_continues_from_the_sync_token",
    "an_invalidated_sync_token_needs_a_full_sync",
    "a_stale_etag_fails_the_precondition",
    "writes_to_an_unknown_event_are_not_found",
    "writes_to_an_event_deleted_at_google_are_gone",
    "watch_then_stop_a_channel",
    "an_unreachable_calendar_is_not_accessible",
];

/// Declares one `#[tokio::test]` per case of [`CASES`] for one side.
/// `setup` is an async fn answering a value with `contract(&self) ->
/// Contract<'_>` and `async fn finish(self)`; `skip` names the cases this
/// side cannot pass, each with the reason (they are declared `#[ignore]`d
/// with it). The caller needs tokio (with `macros`, `rt-multi-thread`).
#[macro_export]
macro_rules! provider_contract {
    (
        setup: $setup:path,
        run: [$($case:ident),* $(,)?],
        skip: [$($skipped:ident => $why:literal),* $(,)?] $(,)?
    ) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let side = $setup().await;
                $crate::testing::provider_contract::$case(&side.contract()).await;
                side.finish().await;
            }
        )*
        $(
            #[test]
            #[ignore = $why]
            fn $skipped() {}
        )*
        #[test]
        fn every_contract_case_is_run_or_skipped_with_a_reason() {
            let mut declared: Vec<&str> = vec![$(stringify!($case),)* $(stringify!($skipped),)*];
            declared.sort_unstable();
            let mut cases = $crate::testing::provider_contract::CASES.to_vec();
            cases.sort_unstable();
            assert_eq!(declared, cases);
        }
    };
}

fn cal() -> CalendarId {
    CalendarId::new("team@example.com").unwrap()
}

fn other_cal() -> CalendarId {
    CalendarId::new("other@example.com").unwrap()
}

fn id(value: &str) -> EventId {
    EventId::new(value).unwrap()
}

/// The error kind of a call expected to fail.
fn kind<T: std::fmt::Debug>(result: Result<T>) -> Kind {
    match result {
        Err(error) => error
            .provider_kind()
            .unwrap_or_else(|| panic!("not a provider error: {error:?}")),
        Ok(value) => panic!("expected an error, got {value:?}"),
    }
}

fn emails(attendees: &[Attendee]) -> Vec<&str> {
    attendees.iter().map(|a| a.email.as_str()).collect()
}

fn request(sync_token: Option<String>, page_token: Option<String>, max: u32) -> ListRequest {
    ListRequest {
        sync_token,
        page_token,
        max_results: max,
    }
}

fn rename(calendar_id: CalendarId, event_id: EventId, if_match: Option<Etag>) -> PatchCall {
    PatchCall {
        calendar_id,
        event_id,
        changes: EventChanges {
            summary: Some(Some("Renamed".into())),
            ..EventChanges::default()
        },
        if_match,
    }
}

fn watch_request(address: &str) -> WatchRequest {
    WatchRequest {
        channel_id: ChannelId::random(),
        token: "t".repeat(64),
        address: address.to_owned(),
        ttl: Duration::from_secs(3600),
    }
}

/// A loopback address: the emulator accepts plain HTTP only there, as
/// Google accepts only HTTPS.
const WEBHOOK: &str = "http://127.0.0.1:9/webhooks/calendar";

impl Contract<'_> {
    fn at(&self, hours: i64) -> DateTime<Utc> {
        self.now + chrono::Duration::hours(hours)
    }

    /// A local event as calsync inserts it: client-chosen id, entity link,
    /// text fields and one invitee.
    fn local_event(&self, entity_id: &str, hours: i64) -> Event {
        NewEvent::new(
            cal(),
            EntityRef::new("deal", entity_id).unwrap(),
            EventTime::at(self.at(hours), None),
            EventTime::at(self.at(hours + 1), None),
            NewEventFields {
                summary: Some("Kick-off".into()),
                description: Some("Agenda".into()),
                location: Some("Room 1".into()),
                attendees: vec![Attendee::new("ann@example.com").unwrap()],
                ..NewEventFields::default()
            },
        )
        .unwrap()
        .into_event(self.now)
    }

    /// An event as another Google user creates it.
    fn remote_event(&self, event_id: &str, hours: i64) -> RemoteEvent {
        RemoteEvent {
            status: EventStatus::Confirmed,
            summary: Some(format!("event {event_id}")),
            start: Some(EventTime::at(self.at(hours), None)),
            end: Some(EventTime::at(self.at(hours + 1), None)),
            ..RemoteEvent::cancelled_stub(id(event_id))
        }
    }

    /// Follows one listing to its last page, as the sync service does
    /// (the sync token on every page request); answers the pages and the
    /// sync token of the last one.
    async fn list_pages(
        &self,
        calendar_id: &CalendarId,
        sync_token: Option<String>,
        page_size: u32,
    ) -> (Vec<ChangePage>, String) {
        let mut pages: Vec<ChangePage> = Vec::new();
        let mut page_token = None;
        loop {
            let page = self
                .google
                .list_events(
                    calendar_id,
                    &request(sync_token.clone(), page_token.take(), page_size),
                )
                .await
                .unwrap();
            assert!(pages.len() < 100, "the listing never ends");
            page_token = page.next_page_token.clone();
            let last = page_token.is_none();
            assert_eq!(
                page.next_sync_token.is_some(),
                last,
                "a sync token on the last page only"
            );
            pages.push(page);
            if last {
                let token = pages
                    .last()
                    .and_then(|p| p.next_sync_token.clone())
                    .unwrap();
                return (pages, token);
            }
        }
    }
}

fn by_id(pages: &[ChangePage]) -> BTreeMap<String, RemoteEvent> {
    pages
        .iter()
        .flat_map(|p| p.events.iter())
        .map(|e| (e.id.to_string(), e.clone()))
        .collect()
}
