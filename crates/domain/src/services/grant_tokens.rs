//! Access tokens of connected accounts, kept in memory per replica and
//! refreshed through the grant's sealed refresh token: one refresh at a
//! time per grant in this process (callers share it), and one at a time
//! across replicas (a claim in the store), so a refresh token Google
//! rotates is never raced by a second refresh that still holds the old one.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use futures_util::lock::Mutex as AsyncMutex;

use crate::error::{Error, ProviderErrorKind, Result};
use crate::grant::{GrantId, GrantStatus, RefreshClaim, RefreshResult};
use crate::ports::{Clock, GrantStore, GrantTokenSource, OAuthProvider, SecretKeeper, Timer};

/// A token is refreshed this long before it expires, so no call starts
/// with a token that lapses on the way (Google's tokens live an hour), or
/// halfway through its life if that comes later: a token shorter-lived
/// than twice the margin must not be refreshed on every call.
const REFRESH_MARGIN: Duration = Duration::minutes(5);
/// How long a refresh claim holds: longer than one token call with its
/// timeout, short enough that a replica killed mid-refresh delays the
/// grant's next refresh only this long.
const CLAIM: Duration = Duration::seconds(30);
/// How often a replica looks again while another one refreshes.
const BUSY_POLL: std::time::Duration = std::time::Duration::from_millis(200);
/// How long a replica waits for another one's refresh before it answers
/// a transient error (the call is retried as any transient failure).
const BUSY_WAIT: Duration = Duration::seconds(10);

#[derive(Clone)]
struct Held {
    token: String,
    /// When it is refreshed (before it expires, see [`REFRESH_MARGIN`]).
    refresh_at: DateTime<Utc>,
}

/// When a token obtained at `now` that lives `lifetime` is refreshed.
fn refresh_at(now: DateTime<Utc>, lifetime: Duration) -> DateTime<Utc> {
    now + lifetime - REFRESH_MARGIN.min(lifetime / 2)
}

/// The [`GrantTokenSource`] the Google adapter acts through.
pub struct GrantTokens {
    store: Arc<dyn GrantStore>,
    oauth: Arc<dyn OAuthProvider>,
    keeper: Arc<dyn SecretKeeper>,
    clock: Arc<dyn Clock>,
    timer: Arc<dyn Timer>,
    /// Who claims refreshes: unique per process.
    holder: String,
    held: std::sync::Mutex<HashMap<GrantId, Arc<AsyncMutex<Option<Held>>>>>,
}

impl std::fmt::Debug for GrantTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrantTokens")
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

fn reconnect(grant: &GrantId, why: &str) -> Error {
    Error::provider(
        ProviderErrorKind::ReconnectRequired,
        format!("grant {grant} needs its account connected again: {why}"),
    )
}

impl GrantTokens {
    pub fn new(
        store: Arc<dyn GrantStore>,
        oauth: Arc<dyn OAuthProvider>,
        keeper: Arc<dyn SecretKeeper>,
        clock: Arc<dyn Clock>,
        timer: Arc<dyn Timer>,
        holder: impl Into<String>,
    ) -> Self {
        Self {
            store,
            oauth,
            keeper,
            clock,
            timer,
            holder: holder.into(),
            held: std::sync::Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, grant: &GrantId) -> Arc<AsyncMutex<Option<Held>>> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(grant.clone())
            .or_default()
            .clone()
    }

    /// Forgets the token held for `grant` (the grant was deleted, or its
    /// account connected again).
    pub fn forget(&self, grant: &GrantId) {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(grant);
    }

    /// Refreshes under a claim, waiting while another replica holds one.
    async fn refresh(&self, grant: &GrantId) -> Result<Held> {
        let deadline = self.clock.now() + BUSY_WAIT;
        loop {
            let now = self.clock.now();
            match self
                .store
                .claim_grant_refresh(grant, &self.holder, now, now + CLAIM)
                .await?
            {
                RefreshClaim::Claimed(stored) => {
                    let refresh_token = self.keeper.open_text(&stored.refresh_token)?;
                    let answer = self.oauth.refresh(&refresh_token).await;
                    let now = self.clock.now();
                    let (result, outcome) = match answer {
                        Ok(tokens) => {
                            let rotated = match tokens.refresh_token.as_deref() {
                                Some(new) if new != refresh_token => {
                                    Some(self.keeper.seal_text(new)?)
                                }
                                _ => None,
                            };
                            let held = Held {
                                token: tokens.access_token,
                                refresh_at: refresh_at(now, tokens.expires_in),
                            };
                            (
                                RefreshResult::Refreshed {
                                    rotated,
                                    scopes: tokens.scopes,
                                },
                                Ok(held),
                            )
                        }
                        Err(error)
                            if error.provider_kind()
                                == Some(ProviderErrorKind::ReconnectRequired) =>
                        {
                            let text = error.to_string();
                            (
                                RefreshResult::Refused {
                                    error: text.clone(),
                                },
                                Err(reconnect(grant, &text)),
                            )
                        }
                        Err(error) => (
                            RefreshResult::Failed {
                                error: error.to_string(),
                            },
                            Err(error),
                        ),
                    };
                    self.store
                        .finish_grant_refresh(grant, &self.holder, &result, now)
                        .await?;
                    return outcome;
                }
                RefreshClaim::Busy { until } => {
                    if now >= deadline {
                        return Err(Error::provider(
                            ProviderErrorKind::Transient,
                            format!(
                                "grant {grant}: another replica is refreshing its token (until {until})"
                            ),
                        ));
                    }
                    self.timer.sleep(BUSY_POLL).await;
                }
                RefreshClaim::Inactive(GrantStatus::Revoked) => {
                    return Err(reconnect(grant, "it was deleted"));
                }
                RefreshClaim::Inactive(_) => {
                    return Err(reconnect(grant, "Google refused its refresh token"));
                }
                RefreshClaim::Missing => {
                    return Err(Error::provider(
                        ProviderErrorKind::ReconnectRequired,
                        format!("grant {grant} does not exist"),
                    ));
                }
            }
        }
    }
}

#[async_trait]
impl GrantTokenSource for GrantTokens {
    async fn access_token(&self, grant: &GrantId, refresh: bool) -> Result<String> {
        let slot = self.slot(grant);
        // Callers of one grant wait for one refresh and share its token.
        let mut held = slot.lock().await;
        if !refresh && let Some(token) = held.as_ref().filter(|h| h.refresh_at > self.clock.now()) {
            return Ok(token.token.clone());
        }
        *held = None;
        let fresh = self.refresh(grant).await?;
        let token = fresh.token.clone();
        *held = Some(fresh);
        Ok(token)
    }
}
