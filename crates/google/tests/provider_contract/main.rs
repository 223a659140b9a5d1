//! The provider contract on the real adapter: `GoogleCalendar` against the
//! emulator over HTTP, authenticated as a service account (a key made once
//! per run, a JWT signed by yup-oauth2 and checked by the emulator's token
//! endpoint). The same cases calsync-domain runs on `FakeCalendar`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

mod emulator_side;
#[path = "../support/mod.rs"]
mod support;

use emulator_side::setup;

calsync_domain::provider_contract!(
    setup: setup,
    run: [
        insert_get_patch_delete_round_trip,
        inserting_a_taken_id_is_a_duplicate,
        an_id_google_cannot_assign_is_refused,
        an_empty_calendar_lists_nothing_and_gives_a_sync_token,
        listing_pages_then_continues_from_the_sync_token,
        an_invalidated_sync_token_needs_a_full_sync,
        a_stale_etag_fails_the_precondition,
        writes_to_an_unknown_event_are_not_found,
        writes_to_an_event_deleted_at_google_are_gone,
        watch_then_stop_a_channel,
        an_unreachable_calendar_is_not_accessible,
        clearing_a_text_field_reads_back_as_absent,
    ],
    skip: [
    ],
);
