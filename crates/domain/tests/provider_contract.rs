//! The provider contract on `FakeCalendar`, the fake the services' unit
//! tests use: the same cases calsync-google runs on the real adapter
//! against the emulator.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

use std::sync::Arc;

use calsync_domain::testing::provider_contract::Contract;
use calsync_domain::testing::{FakeCalendar, ManualClock};
use chrono::{SubsecRound, Utc};

struct FakeSide {
    google: Arc<FakeCalendar>,
    now: chrono::DateTime<Utc>,
}

impl FakeSide {
    fn contract(&self) -> Contract<'_> {
        Contract {
            google: self.google.as_ref(),
            remote: self.google.as_ref(),
            now: self.now,
        }
    }

    async fn finish(self) {}
}

async fn setup() -> FakeSide {
    // Whole milliseconds, as Google's timestamps are.
    let now = Utc::now().trunc_subsecs(3);
    FakeSide {
        google: FakeCalendar::new(ManualClock::new(now)),
        now,
    }
}

calsync_domain::provider_contract!(
    setup: setup,
    run: [
        insert_get_patch_delete_round_trip,
        clearing_a_text_field_reads_back_as_absent,
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
    ],
    skip: [],
);
