//! Connecting users' own Google accounts: the authorization code flow
//! with PKCE (RFC 7636) started and completed, grants listed and deleted.
//! Refresh tokens and verifiers are sealed by the [`SecretKeeper`] before
//! they reach the store, and never appear in an error.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde::Serialize;

use crate::ProviderErrorKind;
use crate::error::{Error, Result};
use crate::feed::subscription::SealedSecret;
use crate::grant::AccountCalendar;
use crate::grant::{
    AuthorizationRequest, Grant, GrantId, GrantStatus, PendingAuthorization, STATE_LIFETIME,
    code_challenge, random_token,
};
use crate::ids::CalendarId;
use crate::ports::{CalendarProvider, Clock, GrantStore, OAuthProvider, SecretKeeper, Store};

use super::calendars::CalendarService;
use super::sync::slice_of;

/// What one pass over the grants' calendar lists did
/// ([`GrantService::reconcile_calendar_lists`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CalendarListReport {
    /// Grants whose calendar list was due.
    pub grants: usize,
    /// Calendars no longer in their account's list, no longer managed.
    pub unmanaged: Vec<CalendarId>,
    /// Grants whose list could not be read (tried again next pass).
    pub failed: usize,
}

/// What the caller sends the user's browser to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedAuthorization {
    pub authorization_url: String,
    pub state: String,
}

/// A completed authorization: the grant, and where the browser goes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connected {
    pub grant: Grant,
    pub return_to: Option<String>,
}

/// The adapters grants need beyond the store.
#[derive(Clone)]
pub struct GrantAdapters {
    pub oauth: Arc<dyn OAuthProvider>,
    pub keeper: Arc<dyn SecretKeeper>,
}

#[derive(Clone)]
pub struct GrantService {
    store: Arc<dyn GrantStore>,
    adapters: GrantAdapters,
    clock: Arc<dyn Clock>,
    /// The calendars managed through grants; `None`: grants only connect.
    managed: Option<ManagedThrough>,
}

/// What managing calendars through grants needs.
#[derive(Clone)]
struct ManagedThrough {
    provider: Arc<dyn CalendarProvider>,
    calendars: CalendarService,
    store: Arc<dyn Store>,
}

/// One calendar of a connected account, and whether calsync manages it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountCalendarView {
    pub calendar: AccountCalendar,
    pub managed: bool,
}

/// Longest `loginHint` and `returnTo` kept.
const HINT_CHARS: usize = 320;
const RETURN_CHARS: usize = 2048;

impl GrantService {
    pub fn new(store: Arc<dyn GrantStore>, adapters: GrantAdapters, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            adapters,
            clock,
            managed: None,
        }
    }

    /// Lets calendars be managed through grants: listed from the account's
    /// calendar list, resumed when the account reconnects, and forgotten
    /// when the grant is deleted.
    pub fn with_calendars(
        mut self,
        provider: Arc<dyn CalendarProvider>,
        calendars: CalendarService,
        store: Arc<dyn Store>,
    ) -> Self {
        self.managed = Some(ManagedThrough {
            provider,
            calendars,
            store,
        });
        self
    }

    fn managed(&self) -> Result<&ManagedThrough> {
        self.managed.as_ref().ok_or_else(|| {
            Error::Storage("grants are not wired to the calendars (with_calendars)".into())
        })
    }

    /// The calendars the grant's account sees in Google (its calendar
    /// list, read now), each marked if calsync manages it.
    pub async fn account_calendars(&self, id: &GrantId) -> Result<Vec<AccountCalendarView>> {
        let grant = self.get(id).await?;
        if grant.status != GrantStatus::Active {
            return Err(Error::provider(
                ProviderErrorKind::ReconnectRequired,
                format!(
                    "grant {id} is {}: its account must be connected again",
                    grant.status.as_str()
                ),
            ));
        }
        let managed = self.managed()?;
        let listed = managed.provider.account_calendars(id).await?;
        // What Google just listed is the truth: a managed calendar the
        // account no longer lists stops being managed here too.
        let ours = self.calendars_of(id).await?;
        let dropped = self.unmanage_unlisted(&ours, &listed).await?;
        let ours: HashSet<_> = ours.into_iter().filter(|c| !dropped.contains(c)).collect();
        Ok(listed
            .into_iter()
            .map(|calendar| AccountCalendarView {
                managed: ours.contains(&calendar.calendar_id),
                calendar,
            })
            .collect())
    }

    /// Stops managing each of `ours` (calendars managed through the grant)
    /// that the account's calendar list (`listed`, complete and just read)
    /// no longer holds: removed from the account in Google, or its access
    /// taken away. Their mirror rows follow retention. Returns them.
    async fn unmanage_unlisted(
        &self,
        ours: &[CalendarId],
        listed: &[AccountCalendar],
    ) -> Result<Vec<CalendarId>> {
        let managed = self.managed()?;
        let present: HashSet<&CalendarId> = listed.iter().map(|c| &c.calendar_id).collect();
        let has_primary = listed.iter().any(|c| c.primary);
        let mut dropped = Vec::new();
        for calendar in ours {
            // `primary` names the account's own calendar, listed by its id.
            let listed =
                present.contains(calendar) || (calendar.as_str() == "primary" && has_primary);
            if listed {
                continue;
            }
            match managed.calendars.remove(calendar).await {
                // Removed meanwhile by someone else: the same outcome.
                Ok(_) | Err(Error::NotFound { .. }) => dropped.push(calendar.clone()),
                Err(error) => return Err(error),
            }
        }
        Ok(dropped)
    }

    /// One slice (of `slices`, by a hash of the grant id) of the active
    /// grants that manage calendars: each account's calendar list is read
    /// and the calendars it no longer holds stop being managed. A grant
    /// whose list cannot be read is counted and left for the next pass.
    pub async fn reconcile_calendar_lists(
        &self,
        slice: u32,
        slices: u32,
    ) -> Result<CalendarListReport> {
        let mut report = CalendarListReport::default();
        let Some(managed) = &self.managed else {
            return Ok(report);
        };
        let mut by_grant: BTreeMap<GrantId, Vec<CalendarId>> = BTreeMap::new();
        for calendar in managed.store.list_calendars().await? {
            if let Some(grant) = calendar.grant
                && slice_of(grant.as_str(), slices) == slice
            {
                by_grant
                    .entry(grant)
                    .or_default()
                    .push(calendar.calendar_id);
            }
        }
        for (id, ours) in by_grant {
            let active = self
                .store
                .get_grant(&id)
                .await?
                .is_some_and(|grant| grant.status == GrantStatus::Active);
            if !active {
                continue;
            }
            report.grants += 1;
            let listed = match managed.provider.account_calendars(&id).await {
                Ok(listed) => listed,
                // Refused, unreachable, out of quota: nothing is concluded
                // from a list not read.
                Err(_) => {
                    report.failed += 1;
                    continue;
                }
            };
            report
                .unmanaged
                .extend(self.unmanage_unlisted(&ours, &listed).await?);
        }
        Ok(report)
    }

    /// The calendars managed through the grant.
    async fn calendars_of(&self, id: &GrantId) -> Result<Vec<crate::ids::CalendarId>> {
        Ok(self
            .managed()?
            .store
            .list_calendars()
            .await?
            .into_iter()
            .filter(|c| c.grant.as_ref() == Some(id))
            .map(|c| c.calendar_id)
            .collect())
    }

    /// The account connected again after Google had refused its token:
    /// its calendars sync on from their sync tokens, are watched again,
    /// and their waiting writes are due now.
    async fn resume(&self, id: &GrantId) -> Result<()> {
        let Some(managed) = &self.managed else {
            return Ok(());
        };
        let calendars = self.calendars_of(id).await?;
        for calendar in &calendars {
            managed
                .store
                .clear_reconnect_required(calendar, false)
                .await?;
            managed.store.mark_dirty(calendar, false).await?;
        }
        managed
            .store
            .wake_outbox(&calendars, self.clock.now())
            .await?;
        for calendar in &calendars {
            // A new channel: the old one's may have lapsed while access was
            // refused. A failure here is not the connection's: the safety
            // sweep syncs the calendar meanwhile, and renewal tries again.
            let _ = managed.calendars.watch_again(calendar).await;
        }
        Ok(())
    }

    /// Starts an authorization: a single-use `state` bound to a fresh PKCE
    /// verifier (sealed), valid for [`STATE_LIFETIME`]. `return_to` is
    /// checked by the caller (an allowed place to send the browser).
    pub async fn start(
        &self,
        login_hint: Option<String>,
        return_to: Option<String>,
    ) -> Result<StartedAuthorization> {
        if login_hint.as_ref().is_some_and(|h| {
            h.is_empty()
                || h.chars().count() > HINT_CHARS
                || h.chars().any(|c| c <= ' ' || c == '\u{7f}')
        }) {
            return Err(Error::invalid(
                "loginHint",
                format!(
                    "must be 1 to {HINT_CHARS} characters, without spaces or control characters"
                ),
            ));
        }
        if return_to
            .as_ref()
            .is_some_and(|r| r.is_empty() || r.chars().count() > RETURN_CHARS)
        {
            return Err(Error::invalid(
                "returnTo",
                format!("must be 1 to {RETURN_CHARS} characters"),
            ));
        }
        let now = self.clock.now();
        // Expired authorizations are dropped as new ones start: nothing
        // else needs them, and the table stays small.
        self.store.purge_authorizations(now).await?;
        let state = random_token();
        let verifier = random_token();
        let pending = PendingAuthorization {
            state: state.clone(),
            verifier: self.adapters.keeper.seal_text(&verifier)?,
            login_hint: login_hint.clone(),
            return_to,
            created_at: now,
            expires_at: now + STATE_LIFETIME,
        };
        self.store.insert_authorization(&pending).await?;
        let authorization_url = self
            .adapters
            .oauth
            .authorization_url(&AuthorizationRequest {
                state: state.clone(),
                code_challenge: code_challenge(&verifier),
                login_hint,
            });
        Ok(StartedAuthorization {
            authorization_url,
            state,
        })
    }

    /// Completes an authorization from Google's redirect: the `state` is
    /// taken (a replay finds nothing), the code redeemed with its
    /// verifier, the account learned, and its grant created, or restored
    /// when the same account connected before (same id, active again).
    pub async fn complete(
        &self,
        state: &str,
        code: Option<&str>,
        error: Option<&str>,
    ) -> Result<Connected> {
        let refused = || {
            Error::invalid(
                "state",
                "names no authorization in progress (unknown, used or expired)",
            )
        };
        let pending = self
            .store
            .take_authorization(state)
            .await?
            .ok_or_else(refused)?;
        let now = self.clock.now();
        if pending.expires_at <= now {
            return Err(refused());
        }
        if let Some(error) = error {
            return Err(Error::invalid(
                "error",
                format!("Google did not grant access ({error})"),
            ));
        }
        let code = code
            .filter(|c| !c.is_empty())
            .ok_or_else(|| Error::invalid("code", "is required"))?;
        let verifier = self.adapters.keeper.open_text(&pending.verifier)?;
        let tokens = match self.adapters.oauth.exchange_code(code, &verifier).await {
            Ok(tokens) => tokens,
            Err(Error::Provider {
                kind: ProviderErrorKind::ReconnectRequired | ProviderErrorKind::Permanent,
                ..
            }) => {
                return Err(Error::invalid(
                    "code",
                    "Google refused the authorization code (used, expired, or not issued for this authorization)",
                ));
            }
            Err(other) => return Err(other),
        };
        let refresh_token = tokens.refresh_token.as_deref().ok_or_else(|| {
            Error::unprocessable(
                "code",
                "Google issued no refresh token (consent without offline access)",
            )
        })?;
        let account = self.adapters.oauth.account(&tokens.access_token).await?;
        let reconnecting = self
            .store
            .grant_for_account("google", &account.account)
            .await?
            .is_some_and(|g| g.status == GrantStatus::ReconnectRequired);
        let grant = Grant {
            id: GrantId::random(),
            provider: "google".into(),
            email: account.email,
            account: account.account,
            scopes: tokens.scopes,
            status: GrantStatus::Active,
            refresh_token: self.adapters.keeper.seal_text(refresh_token)?,
            created_at: now,
            updated_at: now,
            last_refresh_at: Some(now),
            last_error: None,
        };
        let grant = self.store.upsert_grant(&grant).await?;
        if reconnecting {
            self.resume(&grant.id).await?;
        }
        // The token this grant held before (an earlier consent) is left
        // alone: revoking any token revokes the account's whole
        // authorization of the client at Google, the new token included.
        // Google retires old refresh tokens itself (a limit per account
        // and client).
        Ok(Connected {
            grant,
            return_to: pending.return_to,
        })
    }

    pub async fn list(&self) -> Result<Vec<Grant>> {
        self.store.list_grants().await
    }

    pub async fn get(&self, id: &GrantId) -> Result<Grant> {
        self.store
            .get_grant(id)
            .await?
            .ok_or(Error::NotFound { what: "grant" })
    }

    /// Revokes the grant at Google, then records it revoked, its refresh
    /// token dropped. Google unreachable: an error, nothing changed (the
    /// caller retries); Google no longer knowing the token is success.
    pub async fn delete(&self, id: &GrantId) -> Result<Grant> {
        let mut grant = self.get(id).await?;
        if grant.status == GrantStatus::Revoked {
            return Ok(grant);
        }
        // Its calendars first, while its token still acts for them: their
        // channels are stopped at Google, and they are no longer managed.
        if let Some(managed) = &self.managed {
            for calendar in self.calendars_of(id).await? {
                managed.calendars.remove(&calendar).await?;
            }
        }
        let token = self.adapters.keeper.open_text(&grant.refresh_token)?;
        match self.adapters.oauth.revoke(&token).await {
            Ok(()) => {}
            Err(Error::Provider {
                kind: ProviderErrorKind::ReconnectRequired,
                ..
            }) => {}
            Err(other) => return Err(other),
        }
        let now = self.clock.now();
        grant.status = GrantStatus::Revoked;
        grant.refresh_token = SealedSecret(String::new());
        grant.updated_at = now;
        grant.last_error = None;
        if !self.store.update_grant(&grant).await? {
            return Err(Error::NotFound { what: "grant" });
        }
        Ok(grant)
    }
}
