//! [`GrantStore`] for [`MemoryStore`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{MemoryStore, micros};
use crate::error::{Error, Result};
use crate::feed::subscription::SealedSecret;
use crate::feed::{ChangeType, grant_change};
use crate::grant::{
    Grant, GrantId, GrantStatus, PendingAuthorization, RefreshClaim, RefreshResult,
};
use crate::ports::GrantStore;
use crate::testing::lock;

/// Times as the SQL stores keep them, and scopes as they read back
/// (space-separated there: no empty or blank scopes).
fn stored(grant: &Grant) -> Grant {
    Grant {
        scopes: grant
            .scopes
            .iter()
            .flat_map(|scope| scope.split_whitespace())
            .map(str::to_owned)
            .collect(),
        created_at: micros(grant.created_at),
        updated_at: micros(grant.updated_at),
        last_refresh_at: grant.last_refresh_at.map(micros),
        ..grant.clone()
    }
}

/// What an update or a reconnection changes: all but who the grant is for
/// and when it was made (as the SQL stores' UPDATE and ON CONFLICT do).
fn update_in_place(row: &mut Grant, grant: &Grant) {
    let new = stored(grant);
    row.email = new.email;
    row.scopes = new.scopes;
    row.status = new.status;
    row.refresh_token = new.refresh_token;
    row.updated_at = new.updated_at;
    row.last_refresh_at = new.last_refresh_at;
    row.last_error = new.last_error;
}

#[async_trait]
impl GrantStore for MemoryStore {
    async fn insert_authorization(&self, pending: &PendingAuthorization) -> Result<()> {
        let mut state = lock(&self.state);
        if state.authorizations.contains_key(&pending.state) {
            return Err(Error::Duplicate {
                what: "authorization",
            });
        }
        state.authorizations.insert(
            pending.state.clone(),
            PendingAuthorization {
                created_at: micros(pending.created_at),
                expires_at: micros(pending.expires_at),
                ..pending.clone()
            },
        );
        Ok(())
    }

    async fn take_authorization(&self, state: &str) -> Result<Option<PendingAuthorization>> {
        Ok(lock(&self.state).authorizations.remove(state))
    }

    async fn purge_authorizations(&self, before: DateTime<Utc>) -> Result<u64> {
        let before = micros(before);
        let mut state = lock(&self.state);
        let count = state.authorizations.len();
        state.authorizations.retain(|_, p| p.expires_at >= before);
        Ok((count - state.authorizations.len()) as u64)
    }

    async fn upsert_grant(&self, grant: &Grant) -> Result<Grant> {
        let mut state = lock(&self.state);
        if let Some(row) = state
            .grants
            .values_mut()
            .find(|g| g.provider == grant.provider && g.account == grant.account)
        {
            let recovered =
                row.status == GrantStatus::ReconnectRequired && grant.status == GrantStatus::Active;
            update_in_place(row, grant);
            let row = row.clone();
            state.grant_refreshes.remove(row.id.as_str());
            if recovered {
                state.record(vec![grant_change(
                    ChangeType::GrantRecovered,
                    &row.id,
                    None,
                    grant.updated_at,
                )]);
            }
            return Ok(row);
        }
        if state.grants.contains_key(grant.id.as_str()) {
            return Err(Error::Duplicate { what: "grant" });
        }
        let row = stored(grant);
        state
            .grants
            .insert(grant.id.as_str().to_owned(), row.clone());
        Ok(row)
    }

    async fn get_grant(&self, id: &GrantId) -> Result<Option<Grant>> {
        Ok(lock(&self.state).grants.get(id.as_str()).cloned())
    }

    async fn grant_for_account(&self, provider: &str, account: &str) -> Result<Option<Grant>> {
        Ok(lock(&self.state)
            .grants
            .values()
            .find(|g| g.provider == provider && g.account == account)
            .cloned())
    }

    async fn list_grants(&self) -> Result<Vec<Grant>> {
        let mut all: Vec<Grant> = lock(&self.state).grants.values().cloned().collect();
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(all)
    }

    async fn update_grant(&self, grant: &Grant) -> Result<bool> {
        let mut state = lock(&self.state);
        let Some(row) = state.grants.get_mut(grant.id.as_str()) else {
            return Ok(false);
        };
        update_in_place(row, grant);
        Ok(true)
    }

    async fn claim_grant_refresh(
        &self,
        id: &GrantId,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<RefreshClaim> {
        let mut state = lock(&self.state);
        let Some(grant) = state.grants.get(id.as_str()).cloned() else {
            return Ok(RefreshClaim::Missing);
        };
        if grant.status != GrantStatus::Active {
            return Ok(RefreshClaim::Inactive(grant.status));
        }
        if let Some((other, other_until)) = state.grant_refreshes.get(id.as_str())
            && other != holder
            && *other_until > now
        {
            return Ok(RefreshClaim::Busy {
                until: *other_until,
            });
        }
        state
            .grant_refreshes
            .insert(id.as_str().to_owned(), (holder.to_owned(), micros(until)));
        Ok(RefreshClaim::Claimed(grant))
    }

    async fn finish_grant_refresh(
        &self,
        id: &GrantId,
        holder: &str,
        result: &RefreshResult,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut state = lock(&self.state);
        if state
            .grant_refreshes
            .get(id.as_str())
            .is_none_or(|(other, _)| other != holder)
        {
            return Ok(false);
        }
        state.grant_refreshes.remove(id.as_str());
        let Some(row) = state.grants.get_mut(id.as_str()) else {
            return Ok(false);
        };
        let now = micros(now);
        row.updated_at = now;
        let mut turned = false;
        match result {
            RefreshResult::Refreshed { rotated, scopes } => {
                if let Some(rotated) = rotated {
                    row.refresh_token = SealedSecret(rotated.0.clone());
                }
                if !scopes.is_empty() {
                    row.scopes.clone_from(scopes);
                }
                row.last_refresh_at = Some(now);
                row.last_error = None;
            }
            RefreshResult::Failed { error } => row.last_error = Some(error.clone()),
            RefreshResult::Refused { error } => {
                row.last_error = Some(error.clone());
                if row.status == GrantStatus::Active {
                    row.status = GrantStatus::ReconnectRequired;
                    turned = true;
                }
            }
        }
        if turned && let RefreshResult::Refused { error } = result {
            let mut changes = vec![grant_change(
                ChangeType::GrantReconnectRequired,
                id,
                Some(error),
                now,
            )];
            let calendars: Vec<_> = state
                .calendars
                .values()
                .filter(|c| c.grant.as_ref() == Some(id))
                .map(|c| c.calendar_id.clone())
                .collect();
            for calendar in calendars {
                if let Some(sync) = state.sync_states.get_mut(&calendar)
                    && !sync.reconnect_required
                {
                    sync.reconnect_required = true;
                    changes.push(crate::feed::calendar_change(
                        ChangeType::CalendarReconnectRequired,
                        &calendar,
                        Some(error),
                        now,
                    ));
                }
            }
            state.record(changes);
        }
        Ok(true)
    }
}
