//! Health: the figures the store reports and the rule that judges them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::ids::CalendarId;

/// Per-calendar figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CalendarHealth {
    pub calendar_id: CalendarId,
    pub last_sync_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub error_count: u32,
    pub reconnect_required: bool,
    /// Google refuses this principal's writes to the calendar (403
    /// `requiredAccessLevel`): they wait until write access is granted.
    pub read_only: bool,
    pub read_only_since: Option<DateTime<Utc>>,
    pub read_only_reason: Option<String>,
    pub active_channels: u64,
    /// Live series of the calendar whose recurrence calsync cannot expand
    /// ([`crate::event::Event::series_unreadable`]): each is listed as its
    /// master row. Counted for the health report (`Some`, see
    /// [`count_unreadable_series`]); `None`, and left out, where nothing
    /// counted them (the managed-calendar listing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable_series: Option<u64>,
}

impl CalendarHealth {
    pub fn new(state: &crate::sync::SyncState, active_channels: u64) -> Self {
        Self {
            calendar_id: state.calendar_id.clone(),
            last_sync_at: state.last_sync_at(),
            last_error: state.last_error.clone(),
            last_error_at: state.last_error_at,
            error_count: state.error_count,
            reconnect_required: state.reconnect_required,
            read_only: state.is_read_only(),
            read_only_since: state.read_only_since,
            read_only_reason: state.read_only_reason.clone(),
            active_channels,
            unreadable_series: None,
        }
    }
}

/// Sets each calendar's count of unreadable series from `counts` (calendars
/// absent from it have none). A calendar with such series but no sync state
/// yet is added, so no series goes unreported.
pub fn count_unreadable_series(
    calendars: &mut Vec<CalendarHealth>,
    counts: impl IntoIterator<Item = (CalendarId, u64)>,
) {
    let mut counts: std::collections::BTreeMap<CalendarId, u64> = counts.into_iter().collect();
    for calendar in calendars.iter_mut() {
        calendar.unreadable_series = Some(counts.remove(&calendar.calendar_id).unwrap_or(0));
    }
    for (calendar_id, count) in counts.into_iter().filter(|(_, count)| *count > 0) {
        let mut health = CalendarHealth::new(&crate::sync::SyncState::new(calendar_id), 0);
        health.unreadable_series = Some(count);
        calendars.push(health);
    }
}

/// Aggregates the store computes with indexed queries (never by loading rows).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthStats {
    pub active_channels: u64,
    /// Active channels whose expiry falls before the "expiring soon" horizon.
    pub channels_expiring_soon: u64,
    /// Channels still marked active whose expiry has passed: Google no
    /// longer notifies through them.
    pub channels_lapsed: u64,
    pub next_channel_expiry: Option<DateTime<Utc>>,
    pub last_sync_at: Option<DateTime<Utc>>,
    pub calendars: Vec<CalendarHealth>,
    /// Events not cancelled.
    pub active_events: u64,
    pub oldest_event_start: Option<DateTime<Utc>>,
    pub newest_event_start: Option<DateTime<Utc>>,
    pub outbox_pending: u64,
    pub oldest_pending_outbox_at: Option<DateTime<Utc>>,
    pub outbox_dead_letters: u64,
    /// Pending writes whose last try found Google's quota spent.
    pub outbox_quota_waiting: u64,
    pub events_push_failed: u64,
    /// Events whose last write lost a conflict with a change made in Google.
    pub events_push_conflicts: u64,
}

/// Limits beyond which the service is degraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthThresholds {
    /// A watched calendar not synced for this long is stale.
    pub max_sync_age: Duration,
    /// A channel expiring within this horizon should have been renewed.
    pub channel_expiry_warning: Duration,
    /// A pending outbox row older than this means pushes are stuck.
    pub max_outbox_age: Duration,
}

impl Default for HealthThresholds {
    fn default() -> Self {
        Self {
            max_sync_age: Duration::from_secs(60 * 60),
            channel_expiry_warning: Duration::from_secs(12 * 60 * 60),
            max_outbox_age: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Healthy,
    Degraded,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthIssue {
    /// Stable machine-readable code, e.g. `no_active_channels`.
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthReport {
    pub status: HealthStatus,
    pub issues: Vec<HealthIssue>,
    pub database_reachable: bool,
    pub checked_at: DateTime<Utc>,
    #[serde(flatten)]
    pub stats: HealthStats,
}

fn older_than(at: DateTime<Utc>, now: DateTime<Utc>, limit: Duration) -> bool {
    chrono::Duration::from_std(limit).is_ok_and(|limit| now - at > limit)
}

/// Judges the figures: `healthy` when nothing needs attention, otherwise
/// `degraded` with one issue per problem. `stats` is `None` when the
/// database could not be reached.
pub fn evaluate(
    stats: Option<HealthStats>,
    now: DateTime<Utc>,
    thresholds: &HealthThresholds,
) -> HealthReport {
    let mut issues = Vec::new();
    let mut issue =
        |code: &'static str, message: String| issues.push(HealthIssue { code, message });
    let database_reachable = stats.is_some();
    let stats = stats.unwrap_or_default();

    if !database_reachable {
        issue(
            "database_unreachable",
            "the database could not be queried".into(),
        );
    } else {
        if stats.active_channels == 0 {
            issue(
                "no_active_channels",
                "no active watch channel: changes in Google are only seen by the periodic sweep"
                    .into(),
            );
        }
        if stats.channels_lapsed > 0 {
            issue(
                "channels_lapsed",
                format!(
                    "{} channel(s) expired without being renewed: Google no longer notifies through them",
                    stats.channels_lapsed
                ),
            );
        }
        if stats.channels_expiring_soon > 0 {
            issue(
                "channels_expiring",
                format!(
                    "{} channel(s) expire within {} h and were not renewed",
                    stats.channels_expiring_soon,
                    thresholds.channel_expiry_warning.as_secs() / 3600
                ),
            );
        }
        match stats.last_sync_at {
            None if stats.active_channels > 0 => {
                issue("never_synced", "no calendar has completed a sync".into());
            }
            Some(at) if older_than(at, now, thresholds.max_sync_age) => issue(
                "sync_stale",
                format!("last successful sync was at {}", at.to_rfc3339()),
            ),
            _ => {}
        }
        let quota_marker = format!("({})", crate::ProviderErrorKind::QuotaExhausted);
        let quota_spent = stats.calendars.iter().filter(|c| {
            c.error_count > 0
                && c.last_error
                    .as_deref()
                    .is_some_and(|e| e.contains(&quota_marker))
        });
        let quota_calendars = quota_spent.count() as u64;
        if quota_calendars + stats.outbox_quota_waiting > 0 {
            issue(
                "google_quota_exhausted",
                format!(
                    "Google's usage limits are spent (403 quotaExceeded): {quota_calendars} calendar(s) cannot sync and {} write(s) wait; they resume on their own once quota is back",
                    stats.outbox_quota_waiting
                ),
            );
        }
        for calendar in stats.calendars.iter().filter(|c| c.reconnect_required) {
            issue(
                "reconnect_required",
                format!(
                    "calendar {} needs to be reconnected: Google refused access",
                    calendar.calendar_id
                ),
            );
        }
        for calendar in stats.calendars.iter().filter(|c| c.read_only) {
            let since = calendar
                .read_only_since
                .map(|at| format!(" since {}", at.to_rfc3339()))
                .unwrap_or_default();
            issue(
                "calendar_read_only",
                format!(
                    "calendar {} is read-only for calsync's principal{since} (Google: 403 requiredAccessLevel, writer access needed): its writes wait and are tried again until someone grants write access",
                    calendar.calendar_id
                ),
            );
        }
        for calendar in &stats.calendars {
            let Some(count) = calendar.unreadable_series.filter(|count| *count > 0) else {
                continue;
            };
            issue(
                "series_unreadable",
                format!(
                    "calendar {} has {count} recurring series whose recurrence calsync cannot expand: `singleEvents` windows list each as its master row (with its `recurrence`) instead of its occurrences, and its occurrences cannot be read or written by id",
                    calendar.calendar_id
                ),
            );
        }
        // Events still failed, not dead-letter rows: a failure is resolved
        // once its event is fixed (PATCH) or cancelled (DELETE) and pushed,
        // while the dead-letter row stays as history.
        if stats.events_push_failed > 0 {
            issue(
                "push_failures",
                format!(
                    "{} event(s) failed to reach Google: retry (POST /calendar/events/{{id}}/retry), discard (.../discard), fix (PATCH) or cancel (DELETE) them (GET /calendar/failed-writes lists them); {} outbox write(s) dead-lettered in all",
                    stats.events_push_failed, stats.outbox_dead_letters
                ),
            );
        }
        if stats.events_push_conflicts > 0 {
            issue(
                "push_conflicts",
                format!(
                    "{} event(s) kept Google's version because the same fields changed in Google after calsync's write was made: review them and PATCH again if needed",
                    stats.events_push_conflicts
                ),
            );
        }
        if let Some(oldest) = stats.oldest_pending_outbox_at
            && older_than(oldest, now, thresholds.max_outbox_age)
        {
            issue(
                "outbox_backlog",
                format!(
                    "{} write(s) pending, the oldest since {}",
                    stats.outbox_pending,
                    oldest.to_rfc3339()
                ),
            );
        }
    }

    HealthReport {
        status: if issues.is_empty() {
            HealthStatus::Healthy
        } else {
            HealthStatus::Degraded
        },
        issues,
        database_reachable,
        checked_at: now,
        stats,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
    }

    fn good() -> HealthStats {
        HealthStats {
            active_channels: 1,
            last_sync_at: Some(now() - chrono::Duration::minutes(5)),
            active_events: 10,
            ..HealthStats::default()
        }
    }

    fn codes(report: &HealthReport) -> Vec<&'static str> {
        report.issues.iter().map(|i| i.code).collect()
    }

    #[test]
    fn good_figures_are_healthy() {
        let report = evaluate(Some(good()), now(), &HealthThresholds::default());
        assert_eq!(report.status, HealthStatus::Healthy, "{:?}", report.issues);
        assert!(report.issues.is_empty());
        let resolved = HealthStats {
            outbox_dead_letters: 3,
            ..good()
        };
        let report = evaluate(Some(resolved), now(), &HealthThresholds::default());
        assert_eq!(
            report.status,
            HealthStatus::Healthy,
            "dead letters whose events were fixed are history"
        );
    }

    #[test]
    fn each_problem_degrades_with_its_own_issue() {
        let t = HealthThresholds::default();
        let cases: Vec<(HealthStats, &str)> = vec![
            (
                HealthStats {
                    active_channels: 0,
                    ..good()
                },
                "no_active_channels",
            ),
            (
                HealthStats {
                    channels_expiring_soon: 2,
                    ..good()
                },
                "channels_expiring",
            ),
            (
                HealthStats {
                    last_sync_at: Some(now() - chrono::Duration::hours(3)),
                    ..good()
                },
                "sync_stale",
            ),
            (
                HealthStats {
                    last_sync_at: None,
                    ..good()
                },
                "never_synced",
            ),
            (
                HealthStats {
                    outbox_dead_letters: 1,
                    events_push_failed: 1,
                    ..good()
                },
                "push_failures",
            ),
            (
                HealthStats {
                    events_push_conflicts: 1,
                    ..good()
                },
                "push_conflicts",
            ),
            (
                HealthStats {
                    channels_lapsed: 1,
                    ..good()
                },
                "channels_lapsed",
            ),
            (
                HealthStats {
                    outbox_pending: 4,
                    oldest_pending_outbox_at: Some(now() - chrono::Duration::hours(1)),
                    ..good()
                },
                "outbox_backlog",
            ),
        ];
        for (stats, code) in cases {
            let report = evaluate(Some(stats), now(), &t);
            assert_eq!(report.status, HealthStatus::Degraded, "{code}");
            assert_eq!(codes(&report), vec![code]);
        }
    }

    #[test]
    fn a_fresh_backlog_is_not_an_issue() {
        let stats = HealthStats {
            outbox_pending: 4,
            oldest_pending_outbox_at: Some(now() - chrono::Duration::seconds(30)),
            ..good()
        };
        assert_eq!(
            evaluate(Some(stats), now(), &HealthThresholds::default()).status,
            HealthStatus::Healthy
        );
    }

    #[test]
    fn reconnect_required_calendars_are_named() {
        let mut stats = good();
        stats.calendars.push(CalendarHealth {
            calendar_id: CalendarId::new("gone@x.y").unwrap(),
            last_sync_at: None,
            last_error: Some("invalid_grant".into()),
            last_error_at: Some(now()),
            error_count: 3,
            reconnect_required: true,
            read_only: false,
            read_only_since: None,
            read_only_reason: None,
            active_channels: 0,
            unreadable_series: Some(0),
        });
        let report = evaluate(Some(stats), now(), &HealthThresholds::default());
        assert_eq!(codes(&report), vec!["reconnect_required"]);
        assert!(report.issues[0].message.contains("gone@x.y"));
    }

    #[test]
    fn read_only_calendars_are_named_with_since_when() {
        let mut state = crate::sync::SyncState::new(CalendarId::new("shared@x.y").unwrap());
        let mut stats = good();
        stats.calendars.push(CalendarHealth::new(&state, 1));
        assert_eq!(
            evaluate(Some(stats.clone()), now(), &HealthThresholds::default()).status,
            HealthStatus::Healthy
        );
        state.read_only_since = Some(now() - chrono::Duration::minutes(10));
        state.read_only_reason = Some("You need to have writer access".into());
        stats.calendars[0] = CalendarHealth::new(&state, 1);
        assert!(stats.calendars[0].read_only);
        let report = evaluate(Some(stats), now(), &HealthThresholds::default());
        assert_eq!(codes(&report), vec!["calendar_read_only"]);
        assert!(report.issues[0].message.contains("shared@x.y"));
        assert!(
            report.issues[0].message.contains("11:50:00"),
            "{}",
            report.issues[0].message
        );
    }

    #[test]
    fn unreadable_series_are_counted_and_named_per_calendar() {
        let id = |name: &str| CalendarId::new(name).unwrap();
        let state = crate::sync::SyncState::new(id("team@x.y"));
        let mut calendars = vec![
            CalendarHealth::new(&state, 1),
            CalendarHealth::new(&crate::sync::SyncState::new(id("quiet@x.y")), 1),
        ];
        count_unreadable_series(
            &mut calendars,
            [
                (id("team@x.y"), 2),
                (id("local@x.y"), 1),
                (id("none@x.y"), 0),
            ],
        );
        let counted: Vec<(&str, Option<u64>)> = calendars
            .iter()
            .map(|c| (c.calendar_id.as_str(), c.unreadable_series))
            .collect();
        assert_eq!(
            counted,
            vec![
                ("team@x.y", Some(2)),
                ("quiet@x.y", Some(0)),
                ("local@x.y", Some(1)),
            ],
            "a calendar without a sync state still gets its count; a zero adds none"
        );
        let stats = HealthStats {
            calendars,
            ..good()
        };
        let report = evaluate(Some(stats), now(), &HealthThresholds::default());
        assert_eq!(report.status, HealthStatus::Degraded);
        assert_eq!(
            codes(&report),
            vec!["series_unreadable", "series_unreadable"]
        );
        assert!(report.issues[0].message.contains("team@x.y"));
        assert!(
            report.issues[0].message.contains(" 2 recurring series"),
            "{}",
            report.issues[0].message
        );
        assert!(report.issues[1].message.contains("local@x.y"));

        // None counted (None) or none unreadable (Some(0)): healthy.
        let mut stats = good();
        stats.calendars.push(CalendarHealth::new(&state, 1));
        assert_eq!(
            evaluate(Some(stats.clone()), now(), &HealthThresholds::default()).status,
            HealthStatus::Healthy
        );
        stats.calendars[0].unreadable_series = Some(0);
        assert_eq!(
            evaluate(Some(stats), now(), &HealthThresholds::default()).status,
            HealthStatus::Healthy
        );
    }

    #[test]
    fn unreachable_database_is_degraded() {
        let report = evaluate(None, now(), &HealthThresholds::default());
        assert!(!report.database_reachable);
        assert_eq!(codes(&report), vec!["database_unreachable"]);
    }
}
