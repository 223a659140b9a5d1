//! [`GrantStore`] for [`MemoryStore`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{MemoryStore, micros};
use crate::error::{Error, Result};
use crate::grant::{Grant, GrantId, PendingAuthorization};
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
            update_in_place(row, grant);
            return Ok(row.clone());
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
}
