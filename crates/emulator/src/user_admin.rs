//! The admin handle's controls over per-user grants, accounts' calendars
//! and calendar lists (the HTTP admin routes call these).

use std::time::Duration;

use serde_json::Value;

use crate::access::AccessRole;
use crate::error::ApiError;
use crate::users::{IssuedRefreshToken, OAuthClient, OwnedCalendar};
use crate::{Emulator, lock};

impl Emulator {
    /// Registers an OAuth client, or replaces the one with its id.
    pub fn register_oauth_client(&self, client: OAuthClient) {
        lock(&self.inner.users)
            .clients
            .insert(client.client_id.clone(), client);
    }

    /// Adds an exact redirect URI to a registered client's; `false` when
    /// the client is unknown.
    pub fn add_redirect_uri(&self, client_id: &str, uri: &str) -> bool {
        let mut users = lock(&self.inner.users);
        match users.clients.get_mut(client_id) {
            Some(client) => {
                if !client.redirect_uris.iter().any(|u| u == uri) {
                    client.redirect_uris.push(uri.to_owned());
                }
                true
            }
            None => false,
        }
    }

    /// What the user does under "Third-party apps with account access" in
    /// their Google Account: every refresh token (and access token) of the
    /// account's grants to `client_id` (to every client with `None`) is
    /// revoked (`invalid_grant` from then on), and the next authorization
    /// is a first consent again. Returns how many live grants died.
    pub fn revoke_user_grant(&self, account: &str, client_id: Option<&str>) -> usize {
        lock(&self.inner.users).revoke_account(account, client_id)
    }

    /// Every refresh token issued so far, revoked ones included, oldest first.
    pub fn refresh_tokens(&self) -> Vec<IssuedRefreshToken> {
        lock(&self.inner.users).refresh_tokens()
    }

    /// The lifetime of user access tokens issued from now on.
    pub fn set_access_token_lifetime(&self, lifetime: Duration) {
        lock(&self.inner.users).access_lifetime = lifetime;
    }

    /// Makes the next authorization (for `account`, or for any account with
    /// `None`) answer `error=access_denied`, as if the user clicked
    /// "Cancel" on the consent screen. Calls queue up.
    pub fn deny_next_authorization(&self, account: Option<&str>) {
        lock(&self.inner.users)
            .deny
            .push(account.map(str::to_owned));
    }

    /// Creates a calendar owned by `owner` (it appears in the owner's
    /// calendar list as `owner`). Its events live where every calendar's
    /// do; only principals who are users see the ownership.
    pub fn create_user_calendar(&self, owner: &str, calendar_id: &str, summary: &str) {
        let mut users = lock(&self.inner.users);
        users.ensure_account(owner);
        users.calendars.insert(
            calendar_id.to_owned(),
            OwnedCalendar {
                owner: owner.to_owned(),
                summary: summary.to_owned(),
                time_zone: "UTC".to_owned(),
            },
        );
        users
            .lists
            .upsert(owner, calendar_id, summary, "UTC", AccessRole::Owner, false);
    }

    /// Shares a calendar with an account at `role` (again, changing the
    /// role): the account reaches it and finds it in its calendar list.
    pub fn share_calendar(&self, calendar_id: &str, account: &str, role: AccessRole) {
        let mut users = lock(&self.inner.users);
        users.ensure_account(account);
        users
            .shares
            .entry(calendar_id.to_owned())
            .or_default()
            .insert(account.to_owned(), role);
        let (summary, time_zone) = users.summary(calendar_id);
        users
            .lists
            .upsert(account, calendar_id, &summary, &time_zone, role, false);
    }

    /// Takes a share back: the account gets 404 on the calendar, and its
    /// list entry is deleted (incremental syncs report `deleted: true`).
    pub fn unshare_calendar(&self, calendar_id: &str, account: &str) {
        let mut users = lock(&self.inner.users);
        if let Some(shares) = users.shares.get_mut(calendar_id) {
            shares.remove(account);
        }
        // An entry the user already removed stays removed.
        let _ = users.lists.remove(account, calendar_id);
    }

    /// Hides or shows an entry of the account's calendar list (404
    /// `notFound` for an entry it does not have).
    pub fn set_calendar_list_hidden(
        &self,
        account: &str,
        calendar_id: &str,
        hidden: bool,
    ) -> Result<(), ApiError> {
        lock(&self.inner.users)
            .lists
            .set_hidden(account, calendar_id, hidden)
    }

    /// Removes an entry from the account's calendar list, as the user
    /// would ("unsubscribe"); access to the calendar stays as it was.
    pub fn remove_calendar_list_entry(
        &self,
        account: &str,
        calendar_id: &str,
    ) -> Result<(), ApiError> {
        lock(&self.inner.users).lists.remove(account, calendar_id)
    }

    /// Adds back to the account's list a calendar it can reach (its
    /// primary, one it owns or one shared with it); 404 `notFound` for one
    /// it cannot.
    pub fn add_calendar_list_entry(
        &self,
        account: &str,
        calendar_id: &str,
    ) -> Result<(), ApiError> {
        let mut users = lock(&self.inner.users);
        let role = users
            .role(account, calendar_id)
            .ok_or_else(ApiError::not_found)?;
        let (summary, time_zone) = users.summary(calendar_id);
        let primary = calendar_id == account;
        users
            .lists
            .upsert(account, calendar_id, &summary, &time_zone, role, primary);
        Ok(())
    }

    /// The account's calendar list as stored, deleted entries included.
    pub fn calendar_list(&self, account: &str) -> Vec<Value> {
        lock(&self.inner.users).lists.entries(account)
    }
}
