//! The storage contract: every case runs against SQLite, Postgres and the
//! domain's `MemoryStore` (the fake the services' unit tests use), so "the
//! fakes follow the real adapters' contracts" is a test, not a claim.
//!
//! Not per backend: `schema_parity` compares the two SQL dialects'
//! migrations with each other, so it has no `MemoryStore` counterpart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

mod cases;
mod helpers;
mod schema_parity;

/// Declares each case once per backend. `ports` cases take the store as
/// `&Arc<dyn Store>` and run everywhere; `sql` cases take the `TestDb` to
/// reach the SQL behind the port, run on SQLite and Postgres, and are listed
/// for `MemoryStore` as ignored, each with why.
macro_rules! contract {
    (
        ports: [$($case:ident),* $(,)?],
        sql: [$($sql_case:ident => $why:literal),* $(,)?] $(,)?
    ) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let db = crate::helpers::TestDb::sqlite().await;
                    crate::cases::$case(&db.store).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $sql_case() {
                    let db = crate::helpers::TestDb::sqlite().await;
                    crate::cases::$sql_case(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let Some(db) = crate::helpers::TestDb::postgres().await else { return };
                    crate::cases::$case(&db.store).await;
                    db.drop_schema().await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $sql_case() {
                    let Some(db) = crate::helpers::TestDb::postgres().await else { return };
                    crate::cases::$sql_case(&db).await;
                    db.drop_schema().await;
                }
            )*
        }
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    crate::cases::$case(&crate::helpers::memory_store()).await;
                }
            )*
            $(
                #[test]
                #[ignore = $why]
                fn $sql_case() {}
            )*
        }
    };
}

contract!(
    ports: [
        events_round_trip_every_field,
        duplicate_google_ids_and_stale_updates_are_refused,
        pages_apply_atomically_and_store_the_token_last,
        replaying_a_page_changes_nothing,
        a_page_naming_an_event_twice_keeps_its_last_state,
        a_full_run_cancels_what_google_no_longer_has,
        the_full_sweep_spares_only_pending_rows_and_rows_pushed_after_it_began,
        settled_writes_and_heartbeats_and_patch_intents_are_kept,
        a_completed_push_takes_googles_whole_event,
        a_local_write_keeps_the_receipt_of_a_push_that_finished_after_its_read,
        sync_leases_are_exclusive_and_expire,
        dirty_marks_made_during_a_sync_survive_it,
        a_rest_holds_only_a_follow_up_and_says_when_it_ends,
        outbox_rows_go_in_order_one_worker_at_a_time,
        outbox_records_attempts_retries_and_dead_letters,
        outbox_rows_keep_the_kind_of_their_last_failure,
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
        timestamps_are_kept_to_the_microsecond,
        a_full_run_keeps_what_it_saw_when_a_push_settles_meanwhile,
        event_type_details_and_google_json_round_trip,
        a_series_spans_to_its_last_occurrence,
        listing_filters_by_kind_type_and_series,
        retention_keeps_series_while_they_run,
        an_exception_whose_master_is_retired_follows_it,
        a_cancelled_occurrence_is_stored_from_a_page,
        a_cancelled_master_cancels_its_exceptions,
        a_managed_calendar_is_upserted_and_read_back,
        a_managed_calendar_without_a_subject_round_trips,
        managed_calendars_are_listed_by_id,
        deleting_a_managed_calendar_reports_whether_it_was_there,
        a_wait_is_no_attempt,
        a_waiting_probe_holds_its_calendars_other_writes,
        a_read_only_mark_keeps_its_first_time_until_cleared,
        unreadable_series_are_counted_per_calendar_while_live,
        api_writes_record_created_updated_and_cancelled,
        sync_pages_record_googles_changes_once,
        a_full_run_records_each_row_it_sweeps,
        a_cancelled_master_records_each_exception_it_cancels,
        retention_records_each_event_it_retires,
        push_outcomes_record_settling_conflicts_and_dead_letters,
        calendar_states_are_recorded_only_when_they_turn,
        a_drive_notification_is_recorded_once,
        reads_filter_and_page_with_next_cursor,
        purged_cursors_expire_and_the_purge_point_still_reads,
        concurrent_writers_are_read_in_order_exactly_once,
        webhooks_are_stored_updated_and_deleted,
        a_webhook_is_claimed_by_one_owner_at_a_time,
        progress_with_a_lost_lease_writes_nothing,
        attempts_are_listed_newest_first_and_purged,
        grants_round_trip_every_field,
        one_holder_at_a_time_refreshes_a_grant,
        a_refused_refresh_turns_the_grant_and_its_calendars_once,
        reconnecting_an_account_updates_its_grant_in_place,
        grants_are_updated_and_listed_oldest_first,
        an_authorization_is_taken_once,
        purging_drops_only_expired_authorizations,
        sealed_values_are_listed_in_keyset_pages,
        a_sealed_value_is_replaced_only_if_unchanged,
        health_counters_match_a_recount_after_random_writes,
        failed_writes_are_requeued_as_they_were_or_discarded,
        the_sweeps_marks_are_leased_after_every_other,
        busy_candidates_equal_the_per_calendar_reads,
        the_longest_span_covers_every_row_but_masters,
    ],
    sql: [
        a_failure_mid_page_leaves_the_previous_state_intact =>
            "needs SQL: raw-SQL fault injection (a trigger poisons one row mid-page); \
             MemoryStore applies a page under one lock and has no failure to inject",
        unreadable_json_is_a_storage_error =>
            "needs SQL: corrupts a stored row's JSON behind the port; MemoryStore keeps typed values",
        the_recurrence_migration_backfills_existing_rows =>
            "needs SQL: reverts and re-applies a migration; MemoryStore has no schema",
        the_calendars_migration_backfills_synced_calendars =>
            "needs SQL: reverts and re-applies a migration; MemoryStore has no schema",
        health_plans_read_no_table =>
            "needs SQL: asks each database's planner about the health reads; MemoryStore \
             has no planner",
        feed_writers_wait_for_the_lock_and_readers_do_not =>
            "needs SQL: holds the database's feed lock from a raw connection; MemoryStore \
             orders its feed under its one mutex",
    ],
);
