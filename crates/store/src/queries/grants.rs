//! Grants (users' own accounts connected through OAuth 2.0) and the
//! authorizations started and not yet completed.

use async_trait::async_trait;
use calsync_domain::Error as DomainError;
use calsync_domain::feed::subscription::SealedSecret;
use calsync_domain::feed::{ChangeType, calendar_change, grant_change};
use calsync_domain::grant::{
    Grant, GrantId, GrantStatus, PendingAuthorization, RefreshClaim, RefreshResult,
};
use calsync_domain::ids::CalendarId;
use calsync_domain::ports::GrantStore;
use chrono::{DateTime, Utc};
use diesel::upsert::excluded;
use diesel::{
    BoolExpressionMethods, ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper,
};
use diesel_async::RunQueryDsl;

use super::feed::record_changes;
use super::schema::{
    calendar_calendars as cc, calendar_grants as gr, calendar_oauth_states as st,
    calendar_sync_states as ss,
};
use super::{DieselStore, DomainResult, corrupt, db, micros};

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(table_name = gr)]
struct GrantRow {
    id: String,
    provider: String,
    email: String,
    account: String,
    scopes: String,
    status: String,
    refresh_token: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    last_refresh_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
}

impl GrantRow {
    fn new(grant: &Grant) -> Self {
        Self {
            id: grant.id.as_str().to_owned(),
            provider: grant.provider.clone(),
            email: grant.email.clone(),
            account: grant.account.clone(),
            // Space-separated, as OAuth writes a scope list (a scope has no spaces).
            scopes: grant.scopes.join(" "),
            status: grant.status.as_str().to_owned(),
            refresh_token: grant.refresh_token.0.clone(),
            created_at: micros(grant.created_at),
            updated_at: micros(grant.updated_at),
            last_refresh_at: grant.last_refresh_at.map(micros),
            last_error: grant.last_error.clone(),
        }
    }

    fn into_grant(self) -> DomainResult<Grant> {
        Ok(Grant {
            id: GrantId::parse(&self.id).map_err(|e| corrupt("grant id", e))?,
            provider: self.provider,
            email: self.email,
            account: self.account,
            scopes: self.scopes.split_whitespace().map(str::to_owned).collect(),
            status: GrantStatus::parse(&self.status).map_err(|e| corrupt("grant status", e))?,
            refresh_token: SealedSecret(self.refresh_token),
            created_at: self.created_at,
            updated_at: self.updated_at,
            last_refresh_at: self.last_refresh_at,
            last_error: self.last_error,
        })
    }
}

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(table_name = st)]
struct StateRow {
    state: String,
    verifier: String,
    login_hint: Option<String>,
    return_to: Option<String>,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl StateRow {
    fn new(pending: &PendingAuthorization) -> Self {
        Self {
            state: pending.state.clone(),
            verifier: pending.verifier.0.clone(),
            login_hint: pending.login_hint.clone(),
            return_to: pending.return_to.clone(),
            created_at: micros(pending.created_at),
            expires_at: micros(pending.expires_at),
        }
    }

    fn into_pending(self) -> PendingAuthorization {
        PendingAuthorization {
            state: self.state,
            verifier: SealedSecret(self.verifier),
            login_hint: self.login_hint,
            return_to: self.return_to,
            created_at: self.created_at,
            expires_at: self.expires_at,
        }
    }
}

#[async_trait]
impl GrantStore for DieselStore {
    async fn insert_authorization(&self, pending: &PendingAuthorization) -> DomainResult<()> {
        let row = StateRow::new(pending);
        write_tx!(self, |conn| {
            diesel::insert_into(st::table)
                .values(&row)
                .execute(conn)
                .await
                .map_err(|error| match db(error) {
                    DomainError::Duplicate { .. } => DomainError::Duplicate {
                        what: "authorization",
                    },
                    other => other,
                })?;
            Ok(())
        })
    }

    async fn take_authorization(&self, state: &str) -> DomainResult<Option<PendingAuthorization>> {
        write_tx!(self, |conn| {
            // One statement deletes and returns the row: of callbacks racing
            // for one state, one gets it. Postgres makes the others wait on
            // the row lock and then find it gone; SQLite runs one write
            // transaction at a time.
            let taken = diesel::delete(st::table.find(state))
                .returning(StateRow::as_returning())
                .get_result::<StateRow>(conn)
                .await
                .optional()
                .map_err(db)?;
            Ok(taken.map(StateRow::into_pending))
        })
    }

    async fn purge_authorizations(&self, before: DateTime<Utc>) -> DomainResult<u64> {
        write_tx!(self, |conn| {
            let purged = diesel::delete(st::table.filter(st::expires_at.lt(micros(before))))
                .execute(conn)
                .await
                .map_err(db)?;
            Ok(purged as u64)
        })
    }

    async fn upsert_grant(&self, grant: &Grant) -> DomainResult<Grant> {
        let row = GrantRow::new(grant);
        write_tx!(self, |conn| {
            // Whether this reconnects an account Google had refused: then
            // the feed says it recovered, in the same transaction.
            let before: Option<String> = gr::table
                .filter(gr::provider.eq(&row.provider))
                .filter(gr::account.eq(&row.account))
                .select(gr::status)
                .first(conn)
                .await
                .optional()
                .map_err(db)?;
            // ON CONFLICT rather than read-then-write: two first connections
            // of one account racing on Postgres both land on one row.
            let stored = diesel::insert_into(gr::table)
                .values(&row)
                .on_conflict((gr::provider, gr::account))
                .do_update()
                .set((
                    gr::email.eq(excluded(gr::email)),
                    gr::scopes.eq(excluded(gr::scopes)),
                    gr::status.eq(excluded(gr::status)),
                    gr::refresh_token.eq(excluded(gr::refresh_token)),
                    gr::updated_at.eq(excluded(gr::updated_at)),
                    gr::last_refresh_at.eq(excluded(gr::last_refresh_at)),
                    gr::last_error.eq(excluded(gr::last_error)),
                    gr::refresh_holder.eq(None::<String>),
                    gr::refresh_until.eq(None::<DateTime<Utc>>),
                ))
                .returning(GrantRow::as_returning())
                .get_result::<GrantRow>(conn)
                .await
                .map_err(|error| match db(error) {
                    // Only the id can clash now: another account's grant has it.
                    DomainError::Duplicate { .. } => DomainError::Duplicate { what: "grant" },
                    other => other,
                })?;
            let grant = stored.into_grant()?;
            if before.as_deref() == Some(GrantStatus::ReconnectRequired.as_str())
                && grant.status == GrantStatus::Active
            {
                let change = grant_change(
                    ChangeType::GrantRecovered,
                    &grant.id,
                    None,
                    grant.updated_at,
                );
                record_changes(conn, &[change]).await?;
            }
            Ok(grant)
        })
    }

    async fn get_grant(&self, id: &GrantId) -> DomainResult<Option<Grant>> {
        let mut conn = self.conn().await?;
        gr::table
            .find(id.as_str())
            .select(GrantRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(db)?
            .map(GrantRow::into_grant)
            .transpose()
    }

    async fn grant_for_account(
        &self,
        provider: &str,
        account: &str,
    ) -> DomainResult<Option<Grant>> {
        let mut conn = self.conn().await?;
        gr::table
            .filter(gr::provider.eq(provider))
            .filter(gr::account.eq(account))
            .select(GrantRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(db)?
            .map(GrantRow::into_grant)
            .transpose()
    }

    async fn list_grants(&self) -> DomainResult<Vec<Grant>> {
        let mut conn = self.conn().await?;
        gr::table
            .order((gr::created_at.asc(), gr::id.asc()))
            .select(GrantRow::as_select())
            .load::<GrantRow>(&mut conn)
            .await
            .map_err(db)?
            .into_iter()
            .map(GrantRow::into_grant)
            .collect()
    }

    async fn update_grant(&self, grant: &Grant) -> DomainResult<bool> {
        let row = GrantRow::new(grant);
        write_tx!(self, |conn| {
            // Who the grant is for (provider, account) and when it was
            // made are fixed; the rest is the grant's state.
            let updated = diesel::update(gr::table.find(&row.id))
                .set((
                    gr::email.eq(&row.email),
                    gr::scopes.eq(&row.scopes),
                    gr::status.eq(&row.status),
                    gr::refresh_token.eq(&row.refresh_token),
                    gr::updated_at.eq(row.updated_at),
                    gr::last_refresh_at.eq(row.last_refresh_at),
                    gr::last_error.eq(&row.last_error),
                ))
                .execute(conn)
                .await
                .map_err(db)?;
            Ok(updated > 0)
        })
    }

    async fn claim_grant_refresh(
        &self,
        id: &GrantId,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> DomainResult<RefreshClaim> {
        let (now, until) = (micros(now), micros(until));
        write_tx!(self, |conn| {
            // One conditional UPDATE: two replicas racing for the claim
            // cannot both get it.
            let claimed = diesel::update(gr::table.find(id.as_str()))
                .filter(gr::status.eq(GrantStatus::Active.as_str()))
                .filter(
                    gr::refresh_until
                        .is_null()
                        .or(gr::refresh_until.le(now))
                        .or(gr::refresh_holder.eq(holder)),
                )
                .set((gr::refresh_holder.eq(holder), gr::refresh_until.eq(until)))
                .returning(GrantRow::as_returning())
                .get_result::<GrantRow>(conn)
                .await
                .optional()
                .map_err(db)?;
            if let Some(row) = claimed {
                return Ok(RefreshClaim::Claimed(row.into_grant()?));
            }
            let found: Option<(String, Option<DateTime<Utc>>)> = gr::table
                .find(id.as_str())
                .select((gr::status, gr::refresh_until))
                .first(conn)
                .await
                .optional()
                .map_err(db)?;
            Ok(match found {
                None => RefreshClaim::Missing,
                Some((status, until)) => {
                    let status =
                        GrantStatus::parse(&status).map_err(|e| corrupt("grant status", e))?;
                    match (status, until) {
                        (GrantStatus::Active, Some(until)) => RefreshClaim::Busy { until },
                        // Active and unclaimed a moment ago: claimed and
                        // released meanwhile; the caller asks again.
                        (GrantStatus::Active, None) => RefreshClaim::Busy { until: now },
                        (status, _) => RefreshClaim::Inactive(status),
                    }
                }
            })
        })
    }

    async fn finish_grant_refresh(
        &self,
        id: &GrantId,
        holder: &str,
        result: &RefreshResult,
        now: DateTime<Utc>,
    ) -> DomainResult<bool> {
        let now = micros(now);
        write_tx!(self, |conn| {
            let mine = gr::table
                .find(id.as_str())
                .filter(gr::refresh_holder.eq(holder));
            let released = diesel::update(mine)
                .set((
                    gr::refresh_holder.eq(None::<String>),
                    gr::refresh_until.eq(None::<DateTime<Utc>>),
                    gr::updated_at.eq(now),
                ))
                .execute(conn)
                .await
                .map_err(db)?;
            if released == 0 {
                return Ok(false);
            }
            let target = gr::table.find(id.as_str());
            match result {
                RefreshResult::Refreshed { rotated, scopes } => {
                    diesel::update(target)
                        .set((
                            gr::last_refresh_at.eq(now),
                            gr::last_error.eq(None::<String>),
                        ))
                        .execute(conn)
                        .await
                        .map_err(db)?;
                    if let Some(rotated) = rotated {
                        diesel::update(target)
                            .set(gr::refresh_token.eq(&rotated.0))
                            .execute(conn)
                            .await
                            .map_err(db)?;
                    }
                    if !scopes.is_empty() {
                        diesel::update(target)
                            .set(gr::scopes.eq(scopes.join(" ")))
                            .execute(conn)
                            .await
                            .map_err(db)?;
                    }
                }
                RefreshResult::Failed { error } => {
                    diesel::update(target)
                        .set(gr::last_error.eq(error))
                        .execute(conn)
                        .await
                        .map_err(db)?;
                }
                RefreshResult::Refused { error } => {
                    // Conditional, so only the refusal that turns it
                    // records the change.
                    let turned = diesel::update(target)
                        .filter(gr::status.eq(GrantStatus::Active.as_str()))
                        .set((
                            gr::status.eq(GrantStatus::ReconnectRequired.as_str()),
                            gr::last_error.eq(error),
                        ))
                        .execute(conn)
                        .await
                        .map_err(db)?
                        > 0;
                    if turned {
                        let mut changes = vec![grant_change(
                            ChangeType::GrantReconnectRequired,
                            id,
                            Some(error),
                            now,
                        )];
                        // Its calendars cannot be reached until the account
                        // connects again: health names each, syncs stop.
                        let calendars: Vec<String> = diesel::update(
                            ss::table.filter(ss::reconnect_required.eq(false)).filter(
                                ss::calendar_id.eq_any(
                                    cc::table
                                        .filter(cc::grant_id.eq(id.as_str()))
                                        .select(cc::calendar_id),
                                ),
                            ),
                        )
                        .set(ss::reconnect_required.eq(true))
                        .returning(ss::calendar_id)
                        .get_results(conn)
                        .await
                        .map_err(db)?;
                        for calendar in calendars {
                            let calendar =
                                CalendarId::new(calendar).map_err(|e| corrupt("calendar id", e))?;
                            changes.push(calendar_change(
                                ChangeType::CalendarReconnectRequired,
                                &calendar,
                                Some(error),
                                now,
                            ));
                        }
                        record_changes(conn, &changes).await?;
                    } else {
                        diesel::update(target)
                            .set(gr::last_error.eq(error))
                            .execute(conn)
                            .await
                            .map_err(db)?;
                    }
                }
            }
            Ok(true)
        })
    }
}
