//! [`WebhookStore`] for [`MemoryStore`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{MemoryStore, micros};
use crate::error::{Error, Result};
use crate::feed::Cursor;
use crate::feed::subscription::{
    DeliveryAttempt, DeliveryProgress, WebhookId, WebhookSubscription,
};
use crate::ports::WebhookStore;
use crate::testing::lock;

#[derive(Debug, Clone)]
pub(super) struct StoredWebhook {
    pub(super) subscription: WebhookSubscription,
    lease_owner: Option<String>,
    lease_until: Option<DateTime<Utc>>,
}

/// Times as the SQL stores keep them.
fn stored(subscription: &WebhookSubscription) -> WebhookSubscription {
    WebhookSubscription {
        previous_secret_until: subscription.previous_secret_until.map(micros),
        failing_since: subscription.failing_since.map(micros),
        next_attempt_at: micros(subscription.next_attempt_at),
        last_delivered_at: subscription.last_delivered_at.map(micros),
        created_at: micros(subscription.created_at),
        updated_at: micros(subscription.updated_at),
        ..subscription.clone()
    }
}

fn stored_attempt(attempt: &DeliveryAttempt) -> DeliveryAttempt {
    DeliveryAttempt {
        attempted_at: micros(attempt.attempted_at),
        ..attempt.clone()
    }
}

#[async_trait]
impl WebhookStore for MemoryStore {
    async fn insert_webhook(&self, subscription: &WebhookSubscription) -> Result<()> {
        let mut state = lock(&self.state);
        let key = subscription.id.as_str().to_owned();
        if state.webhooks.contains_key(&key) {
            return Err(Error::Duplicate { what: "webhook" });
        }
        state.webhooks.insert(
            key,
            StoredWebhook {
                subscription: stored(subscription),
                lease_owner: None,
                lease_until: None,
            },
        );
        Ok(())
    }

    async fn get_webhook(&self, id: &WebhookId) -> Result<Option<WebhookSubscription>> {
        Ok(lock(&self.state)
            .webhooks
            .get(id.as_str())
            .map(|w| w.subscription.clone()))
    }

    async fn list_webhooks(&self) -> Result<Vec<WebhookSubscription>> {
        let mut all: Vec<WebhookSubscription> = lock(&self.state)
            .webhooks
            .values()
            .map(|w| w.subscription.clone())
            .collect();
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(all)
    }

    async fn update_webhook(&self, subscription: &WebhookSubscription) -> Result<bool> {
        let mut state = lock(&self.state);
        let Some(row) = state.webhooks.get_mut(subscription.id.as_str()) else {
            return Ok(false);
        };
        let new = stored(subscription);
        let s = &mut row.subscription;
        s.url = new.url;
        s.types = new.types;
        s.entity_type = new.entity_type;
        s.calendar_id = new.calendar_id;
        s.description = new.description;
        s.secret = new.secret;
        s.previous_secret = new.previous_secret;
        s.previous_secret_until = new.previous_secret_until;
        s.updated_at = new.updated_at;
        Ok(true)
    }

    async fn set_webhook_enabled(
        &self,
        id: &WebhookId,
        enabled: bool,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut state = lock(&self.state);
        let Some(row) = state.webhooks.get_mut(id.as_str()) else {
            return Ok(false);
        };
        let s = &mut row.subscription;
        s.enabled = enabled;
        s.updated_at = micros(now);
        if enabled {
            s.disabled_reason = None;
            s.failures = 0;
            s.failing_since = None;
            s.next_attempt_at = micros(now);
        } else {
            s.disabled_reason = reason.map(str::to_owned);
        }
        Ok(true)
    }

    async fn delete_webhook(&self, id: &WebhookId) -> Result<bool> {
        let mut state = lock(&self.state);
        state.webhook_attempts.retain(|a| &a.webhook_id != id);
        Ok(state.webhooks.remove(id.as_str()).is_some())
    }

    async fn claim_webhooks(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        latest: Cursor,
        limit: u32,
    ) -> Result<Vec<WebhookSubscription>> {
        let now = micros(now);
        let mut state = lock(&self.state);
        let mut claimed = Vec::new();
        for row in state.webhooks.values_mut() {
            if claimed.len() >= limit as usize {
                break;
            }
            let s = &row.subscription;
            let free = row.lease_until.is_none_or(|until| until <= now);
            if s.enabled && s.next_attempt_at <= now && s.cursor < latest && free {
                row.lease_owner = Some(owner.to_owned());
                row.lease_until = Some(micros(lease_until));
                claimed.push(row.subscription.clone());
            }
        }
        Ok(claimed)
    }

    async fn record_webhook_progress(
        &self,
        id: &WebhookId,
        owner: &str,
        progress: &DeliveryProgress,
        lease_until: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        let mut state = lock(&self.state);
        let Some(row) = state.webhooks.get_mut(id.as_str()) else {
            return Ok(false);
        };
        if row.lease_owner.as_deref() != Some(owner) {
            return Ok(false);
        }
        let s = &mut row.subscription;
        s.cursor = progress.cursor;
        s.failures = progress.failures;
        s.failing_since = progress.failing_since.map(micros);
        s.next_attempt_at = micros(progress.next_attempt_at);
        s.last_delivered_at = progress.last_delivered_at.map(micros);
        if let Some(reason) = &progress.disabled {
            s.enabled = false;
            s.disabled_reason = Some(reason.clone());
        }
        match lease_until {
            Some(until) => row.lease_until = Some(micros(until)),
            None => {
                row.lease_owner = None;
                row.lease_until = None;
            }
        }
        let attempts: Vec<DeliveryAttempt> = progress.attempts.iter().map(stored_attempt).collect();
        state.webhook_attempts.extend(attempts);
        Ok(true)
    }

    async fn record_webhook_attempt(&self, attempt: &DeliveryAttempt) -> Result<()> {
        let mut state = lock(&self.state);
        if !state.webhooks.contains_key(attempt.webhook_id.as_str()) {
            return Err(crate::error::Error::NotFound { what: "webhook" });
        }
        state.webhook_attempts.push(stored_attempt(attempt));
        Ok(())
    }

    async fn list_webhook_attempts(
        &self,
        id: &WebhookId,
        limit: u32,
    ) -> Result<Vec<DeliveryAttempt>> {
        Ok(lock(&self.state)
            .webhook_attempts
            .iter()
            .rev()
            .filter(|a| &a.webhook_id == id)
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn purge_webhook_attempts(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut state = lock(&self.state);
        let kept_before = state.webhook_attempts.len();
        state
            .webhook_attempts
            .retain(|a| a.attempted_at >= micros(before));
        Ok((kept_before - state.webhook_attempts.len()) as u64)
    }
}
