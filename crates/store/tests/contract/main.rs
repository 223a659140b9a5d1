//! The storage contract: every test runs against SQLite and Postgres.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

mod cases;
mod helpers;
mod schema_parity;

/// Declares each case once per backend.
macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let db = crate::helpers::TestDb::sqlite().await;
                    crate::cases::$case(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let Some(db) = crate::helpers::TestDb::postgres().await else { return };
                    crate::cases::$case(&db).await;
                    db.drop_schema().await;
                }
            )*
        }
    };
}

contract!(
    events_round_trip_every_field,
    duplicate_google_ids_and_stale_updates_are_refused,
    pages_apply_atomically_and_store_the_token_last,
    a_failure_mid_page_leaves_the_previous_state_intact,
    replaying_a_page_changes_nothing,
    a_full_run_cancels_what_google_no_longer_has,
    the_full_sweep_spares_only_pending_rows_and_rows_pushed_after_it_began,
    settled_writes_and_heartbeats_and_patch_intents_are_kept,
    a_completed_push_takes_googles_whole_event,
    sync_leases_are_exclusive_and_expire,
    dirty_marks_made_during_a_sync_survive_it,
    outbox_rows_go_in_order_one_worker_at_a_time,
    outbox_records_attempts_retries_and_dead_letters,
    job_ticks_are_claimed_exactly_once_under_contention,
    cleanup_cancels_in_bounded_batches,
    health_aggregates_match_the_data,
    channels_keep_state_and_the_highest_message_number,
    listing_filters_and_pages,
    concurrent_writers_lose_nothing,
    drive_notifications_are_kept_newest_first,
    idempotency_keys_admit_one_insert_even_when_racing,
    a_migrated_database_is_ready,
    leases_record_the_seq_they_saw_until_released,
    the_active_event_count_follows_every_write_path,
);
