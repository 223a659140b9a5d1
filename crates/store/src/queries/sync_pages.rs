//! Applying a page of Google's changes to the mirror, with the feed's
//! record of what it changed, in one transaction.

use std::collections::HashMap;

use calsync_domain::event::{Event, EventStatus, PushState};
use calsync_domain::feed::{self, NewChange, Origin};
use calsync_domain::sync::{ApplyDecision, PageOutcome, SyncPage, SyncRun, decide};
use diesel::{BoolExpressionMethods, ExpressionMethods, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;

use super::feed::record_changes;
use super::rows::EventRow;
use super::schema::{calendar_events as ev, calendar_sync_states as ss};
use super::shared_writes::{cancel_exceptions_of, cancellations};
use super::sync_states::ensure_sync_state;
use super::{Conn, D, DomainResult, db, micros};
use crate::dialect::Dialect;

/// Applies `page` with [`decide`] in the caller's write transaction (see
/// `EventStore::apply_sync_page`), recording its changes last.
pub(super) async fn apply_page(conn: &mut Conn, page: &SyncPage) -> DomainResult<PageOutcome> {
    let calendar = page.calendar_id.as_str();
    let (run_id, run_started) = match &page.run {
        SyncRun::Full { run_id, started_at } => (Some(run_id.clone()), Some(micros(*started_at))),
        SyncRun::Incremental => (None, None),
    };
    let ids: Vec<&str> = page.events.iter().map(|e| e.id.as_str()).collect();
    let mut known: HashMap<String, Event> = HashMap::new();
    if !ids.is_empty() {
        let rows = ev::table
            .filter(ev::calendar_id.eq(calendar))
            .filter(ev::google_event_id.eq_any(&ids))
            .select(EventRow::as_select())
            .load::<EventRow>(conn)
            .await
            .map_err(db)?;
        for row in rows {
            let event = row.into_event()?;
            known.insert(event.google_event_id.to_string(), event);
        }
    }
    let mut outcome = PageOutcome::default();
    // Google id -> position in `changed`, so a page naming an event twice
    // writes its final state once.
    let mut changed: Vec<Event> = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    for incoming in &page.events {
        // An event named earlier in the page is decided against what the
        // page made of it.
        let current = match position.get(incoming.id.as_str()) {
            Some(&at) => changed.get(at),
            None => known.get(incoming.id.as_str()),
        };
        let decision = decide(
            current,
            incoming,
            &page.calendar_id,
            page.retention_cutoff,
            page.now,
        );
        outcome.count(&decision);
        if let ApplyDecision::Insert(event)
        | ApplyDecision::Update(event)
        | ApplyDecision::Cancel(event) = decision
        {
            match position.get(event.google_event_id.as_str()) {
                Some(&at) => changed[at] = *event,
                None => {
                    position.insert(event.google_event_id.to_string(), changed.len());
                    changed.push(*event);
                }
            }
        }
    }
    // After the upsert, so an exception the same page brought back to life
    // is cancelled with its series rather than left live.
    let cancelled_masters: Vec<Event> = changed
        .iter()
        .filter(|e| e.is_master() && e.status == EventStatus::Cancelled)
        .cloned()
        .collect();
    let rows: Vec<EventRow> = changed
        .into_iter()
        .map(|e| EventRow::from_event(e, run_id.clone()))
        .collect();
    // Each event's final state against the row before the page, as stored
    // (read back from its row: timestamps to the microsecond).
    let mut changes: Vec<NewChange> = Vec::new();
    for row in &rows {
        let after = row.clone().into_event()?;
        let before = known.get(after.google_event_id.as_str());
        changes.extend(feed::event_changes(
            before,
            &after,
            Origin::Google,
            page.now,
        ));
    }
    drop(known);
    <D as Dialect>::upsert_events(conn, rows).await?;
    for master in &cancelled_masters {
        let cancelled = cancel_exceptions_of(conn, master, page.now).await?;
        changes.extend(cancellations(&cancelled, Origin::Google, page.now));
    }
    // Rows rewritten above already carry the run id; stamp the rest.
    let unstamped: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|id| !position.contains_key(*id))
        .collect();
    if let Some(run_id) = &run_id
        && !unstamped.is_empty()
    {
        diesel::update(ev::table)
            .filter(ev::calendar_id.eq(calendar))
            .filter(ev::google_event_id.eq_any(&unstamped))
            .set(ev::sync_run_id.eq(run_id))
            .execute(conn)
            .await
            .map_err(db)?;
    }
    if let Some(completion) = &page.completion {
        let now = micros(page.now);
        if let (Some(run_id), Some(started)) = (&run_id, run_started) {
            // Every row the run did not see, except writes still pending and
            // rows created or pushed after the run began (its listing may
            // have passed them before Google had them).
            let swept = diesel::update(ev::table)
                .filter(ev::calendar_id.eq(calendar))
                .filter(ev::status.ne(EventStatus::Cancelled.as_str()))
                .filter(ev::push_state.ne(PushState::Pending.as_str()))
                .filter(ev::created_at.le(started))
                .filter(ev::pushed_at.is_null().or(ev::pushed_at.le(started)))
                .filter(ev::sync_run_id.is_null().or(ev::sync_run_id.ne(run_id)))
                .set((
                    ev::status.eq(EventStatus::Cancelled.as_str()),
                    ev::updated_at.eq(now),
                ))
                .returning(EventRow::as_returning())
                .get_results::<EventRow>(conn)
                .await
                .map_err(db)?
                .into_iter()
                .map(EventRow::into_event)
                .collect::<DomainResult<Vec<Event>>>()?;
            outcome.swept = swept.len() as u64;
            changes.extend(cancellations(&swept, Origin::Google, page.now));
        }
        ensure_sync_state(conn, &page.calendar_id).await?;
        let token = ss::sync_token.eq(Some(completion.next_sync_token.as_str()));
        let query = diesel::update(ss::table.find(calendar));
        match run_id {
            Some(_) => {
                query
                    .set((token, ss::last_full_sync_at.eq(now)))
                    .execute(conn)
                    .await
            }
            None => {
                query
                    .set((token, ss::last_incremental_sync_at.eq(now)))
                    .execute(conn)
                    .await
            }
        }
        .map_err(db)?;
    }
    record_changes(conn, &changes).await?;
    Ok(outcome)
}
