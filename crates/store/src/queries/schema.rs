//! Diesel table definitions, one text for both dialects: compiled in each
//! dialect's copy of the query tree, where `Ts` is that dialect's timestamp
//! SQL type ([`crate::dialect::Dialect::Ts`]) and `Json` its JSON type
//! ([`crate::dialect::Dialect::Json`]).

use super::{Json, Ts};

diesel::table! {
    use diesel::sql_types::*;
    use super::{Json, Ts};

    calendar_events (id) {
        id -> Text,
        calendar_id -> Text,
        google_event_id -> Text,
        ical_uid -> Nullable<Text>,
        summary -> Nullable<Text>,
        description -> Nullable<Text>,
        location -> Nullable<Text>,
        start_at -> Ts,
        end_at -> Ts,
        start_date -> Nullable<Date>,
        end_date -> Nullable<Date>,
        start_time_zone -> Nullable<Text>,
        end_time_zone -> Nullable<Text>,
        status -> Text,
        attendees -> Text,
        organizer -> Nullable<Text>,
        recurrence -> Text,
        recurring_event_id -> Nullable<Text>,
        original_start -> Nullable<Text>,
        etag -> Nullable<Text>,
        google_updated -> Nullable<Ts>,
        html_link -> Nullable<Text>,
        entity_type -> Nullable<Text>,
        entity_id -> Nullable<Text>,
        push_state -> Text,
        sync_run_id -> Nullable<Text>,
        created_at -> Ts,
        updated_at -> Ts,
        push_note -> Nullable<Text>,
        push_conflict -> Bool,
        pushed_at -> Nullable<Ts>,
        event_type -> Text,
        kind -> Text,
        details -> Json,
        google -> Nullable<Json>,
        last_end_at -> Nullable<Ts>,
        recurrence_unreadable -> Bool,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::Ts;

    calendar_calendars (calendar_id) {
        calendar_id -> Text,
        subject -> Nullable<Text>,
        created_at -> Ts,
        updated_at -> Ts,
        grant_id -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::Ts;

    calendar_sync_states (calendar_id) {
        calendar_id -> Text,
        sync_token -> Nullable<Text>,
        last_full_sync_at -> Nullable<Ts>,
        last_incremental_sync_at -> Nullable<Ts>,
        last_status -> Nullable<Text>,
        last_error -> Nullable<Text>,
        last_error_at -> Nullable<Ts>,
        error_count -> Integer,
        dirty_seq -> BigInt,
        clean_seq -> BigInt,
        full_sync_requested -> Bool,
        reconnect_required -> Bool,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<Ts>,
        lease_seen_seq -> Nullable<BigInt>,
        read_only_since -> Nullable<Ts>,
        read_only_reason -> Nullable<Text>,
        swept -> Bool,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::Ts;

    calendar_watch_channels (id) {
        id -> Text,
        calendar_id -> Text,
        resource_id -> Nullable<Text>,
        expiration -> Ts,
        status -> Text,
        created_at -> Ts,
        last_notification_at -> Nullable<Ts>,
        last_message_number -> Nullable<BigInt>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::Ts;

    calendar_outbox (id) {
        id -> BigInt,
        event_id -> Text,
        calendar_id -> Text,
        google_event_id -> Text,
        op -> Text,
        if_match -> Nullable<Text>,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> Ts,
        last_error -> Nullable<Text>,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<Ts>,
        created_at -> Ts,
        updated_at -> Ts,
        payload -> Nullable<Text>,
        last_failure -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::Ts;

    drive_notifications (id) {
        id -> BigInt,
        channel_id -> Text,
        resource_id -> Text,
        resource_uri -> Text,
        resource_state -> Text,
        message_number -> BigInt,
        changed -> Text,
        received_at -> Ts,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::Ts;

    job_ticks (job, scheduled_for) {
        job -> Text,
        scheduled_for -> Ts,
        claimed_by -> Text,
        claimed_at -> Ts,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::Ts;

    calendar_idempotency_keys (key) {
        key -> Text,
        fingerprint -> Text,
        event_id -> Text,
        created_at -> Ts,
    }
}

diesel::table! {
    calendar_event_counts (calendar_id) {
        calendar_id -> Text,
        active -> BigInt,
        push_failed -> BigInt,
        push_conflicts -> BigInt,
        unreadable_series -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::{Json, Ts};

    calendar_changes (seq) {
        seq -> BigInt,
        kind -> Text,
        origin -> Text,
        occurred_at -> Ts,
        calendar_id -> Nullable<Text>,
        event_id -> Nullable<Text>,
        google_event_id -> Nullable<Text>,
        entity_type -> Nullable<Text>,
        entity_id -> Nullable<Text>,
        etag -> Nullable<Text>,
        payload -> Json,
    }
}

diesel::table! {
    calendar_change_feed (id) {
        id -> Integer,
        purged_through -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::{Json, Ts};

    calendar_webhooks (id) {
        id -> Text,
        url -> Text,
        types -> Json,
        entity_type -> Nullable<Text>,
        calendar_id -> Nullable<Text>,
        description -> Nullable<Text>,
        secret -> Text,
        previous_secret -> Nullable<Text>,
        previous_secret_until -> Nullable<Ts>,
        enabled -> Bool,
        disabled_reason -> Nullable<Text>,
        cursor -> BigInt,
        failures -> Integer,
        failing_since -> Nullable<Ts>,
        next_attempt_at -> Ts,
        last_delivered_at -> Nullable<Ts>,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<Ts>,
        created_at -> Ts,
        updated_at -> Ts,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::Ts;

    calendar_webhook_attempts (id) {
        id -> BigInt,
        webhook_id -> Text,
        cursor -> Nullable<BigInt>,
        kind -> Text,
        attempted_at -> Ts,
        outcome -> Text,
        status -> Nullable<Integer>,
        latency_ms -> Integer,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::Ts;

    calendar_grants (id) {
        id -> Text,
        provider -> Text,
        email -> Text,
        account -> Text,
        scopes -> Text,
        status -> Text,
        refresh_token -> Text,
        created_at -> Ts,
        updated_at -> Ts,
        last_refresh_at -> Nullable<Ts>,
        last_error -> Nullable<Text>,
        refresh_holder -> Nullable<Text>,
        refresh_until -> Nullable<Ts>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::Ts;

    calendar_oauth_states (state) {
        state -> Text,
        verifier -> Text,
        login_hint -> Nullable<Text>,
        return_to -> Nullable<Text>,
        created_at -> Ts,
        expires_at -> Ts,
    }
}

diesel::joinable!(calendar_outbox -> calendar_events (event_id));
diesel::joinable!(calendar_webhook_attempts -> calendar_webhooks (webhook_id));
diesel::allow_tables_to_appear_in_same_query!(
    calendar_events,
    calendar_calendars,
    calendar_sync_states,
    calendar_watch_channels,
    calendar_outbox,
    drive_notifications,
    job_ticks,
    calendar_idempotency_keys,
    calendar_event_counts,
    calendar_changes,
    calendar_change_feed,
    calendar_webhooks,
    calendar_webhook_attempts,
    calendar_grants,
    calendar_oauth_states,
);
