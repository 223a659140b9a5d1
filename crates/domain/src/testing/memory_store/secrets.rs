//! [`SealedSecretStore`] for [`MemoryStore`].

use std::ops::Bound;

use async_trait::async_trait;

use super::{MemoryStore, StoreState};
use crate::error::Result;
use crate::feed::subscription::SealedSecret;
use crate::ports::{SealedColumn, SealedSecretStore, SealedValue};
use crate::testing::lock;

/// The column's slot in one row, if the row exists (the slot may be empty).
fn slot<'a>(
    state: &'a mut StoreState,
    column: SealedColumn,
    row: &str,
) -> Option<&'a mut SealedSecret> {
    match column {
        SealedColumn::GrantRefreshToken => state.grants.get_mut(row).map(|g| &mut g.refresh_token),
        SealedColumn::AuthorizationVerifier => {
            state.authorizations.get_mut(row).map(|a| &mut a.verifier)
        }
        SealedColumn::WebhookSecret => state
            .webhooks
            .get_mut(row)
            .map(|w| &mut w.subscription.secret),
        SealedColumn::WebhookPreviousSecret => state
            .webhooks
            .get_mut(row)
            .and_then(|w| w.subscription.previous_secret.as_mut()),
    }
}

#[async_trait]
impl SealedSecretStore for MemoryStore {
    async fn list_sealed(
        &self,
        column: SealedColumn,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<SealedValue>> {
        let state = lock(&self.state);
        let from = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.to_owned()));
        let range = (from, Bound::Unbounded);
        // Keys in byte order, as the SQL stores compare them.
        let mut found: Vec<(String, SealedSecret)> = match column {
            SealedColumn::GrantRefreshToken => state
                .grants
                .range(range)
                .map(|(id, g)| (id.clone(), g.refresh_token.clone()))
                .collect(),
            SealedColumn::AuthorizationVerifier => state
                .authorizations
                .iter()
                .filter(|(key, _)| after.is_none_or(|a| key.as_str() > a))
                .map(|(key, a)| (key.clone(), a.verifier.clone()))
                .collect(),
            SealedColumn::WebhookSecret => state
                .webhooks
                .range(range)
                .map(|(id, w)| (id.clone(), w.subscription.secret.clone()))
                .collect(),
            SealedColumn::WebhookPreviousSecret => state
                .webhooks
                .range(range)
                .filter_map(|(id, w)| Some((id.clone(), w.subscription.previous_secret.clone()?)))
                .collect(),
        };
        found.retain(|(_, sealed)| !sealed.0.is_empty());
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(found
            .into_iter()
            .map(|(row, sealed)| SealedValue {
                column,
                row,
                sealed,
            })
            .collect())
    }

    async fn replace_sealed(&self, value: &SealedValue, new: &SealedSecret) -> Result<bool> {
        let mut state = lock(&self.state);
        match slot(&mut state, value.column, &value.row) {
            Some(held) if *held == value.sealed => {
                *held = new.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
