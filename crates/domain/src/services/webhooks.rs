//! The application's webhook subscriptions: managing them, and delivering
//! the feed to each, in cursor order, at least once, signed to the
//! Standard Webhooks specification.
//!
//! Delivery state lives with the subscription, not per message: a
//! subscription's cursor says what it has received, and only a 2xx moves
//! it. So a change is never lost (a crash before the cursor moves sends it
//! again, with the same `webhook-id`), order per subscription is the feed's
//! order, and a replica works on a subscription only while it holds its
//! lease.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::join_all;

use crate::error::{Error, Result};
use crate::feed::signature::{self, SigningSecret};
use crate::feed::subscription::{
    ATTEMPT_TIMEOUT, AttemptOutcome, DESCRIPTION_CHARS, DISABLE_AFTER, DeliveryAttempt,
    DeliveryProgress, OutboundRequest, ROTATION_OVERLAP, URL_CHARS, WebhookId, WebhookSubscription,
    retry_delay,
};
use crate::feed::{Change, ChangeQuery, ChangeType, Cursor};
use crate::ids::CalendarId;
use crate::ports::{
    ChangeFeedStore, ChangeRenderer, Clock, SecretKeeper, WebhookSender, WebhookStore,
};

/// Changes one round delivers to a subscription before it yields.
pub const DELIVERY_BATCH: u32 = 50;
/// How long a round holds a subscription; renewed after each delivery, so
/// it covers one attempt ([`ATTEMPT_TIMEOUT`]) plus rendering and the
/// progress write, with room to spare. A replica that dies mid-round frees
/// its subscriptions this soon; a lease that lapses under a slower write
/// costs a repeated delivery (at least once), never order: the other
/// replica starts from the same cursor and the first stops at its next
/// write.
pub const DELIVERY_LEASE: Duration = Duration::from_secs(ATTEMPT_TIMEOUT.as_secs() + 15);
/// Most subscriptions calsync keeps.
pub const MAX_WEBHOOKS: usize = 100;

/// The adapters delivery needs beyond the store.
#[derive(Clone)]
pub struct WebhookAdapters {
    pub sender: Arc<dyn WebhookSender>,
    pub keeper: Arc<dyn SecretKeeper>,
    pub renderer: Arc<dyn ChangeRenderer>,
}

/// A new subscription's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewWebhook {
    pub url: String,
    pub types: Vec<ChangeType>,
    pub entity_type: Option<String>,
    pub calendar_id: Option<CalendarId>,
    pub description: Option<String>,
}

/// A change to a subscription's settings: `None` leaves a field alone;
/// `Some(None)` clears an optional one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub types: Option<Vec<ChangeType>>,
    pub entity_type: Option<Option<String>>,
    pub calendar_id: Option<Option<CalendarId>>,
    pub description: Option<Option<String>>,
    pub enabled: Option<bool>,
}

/// What a round of deliveries did, for metrics and logs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryReport {
    pub subscriptions: u32,
    pub delivered: u32,
    pub failed: u32,
    pub disabled: u32,
    /// Per delivered change: from its occurrence to its delivery.
    pub lags: Vec<Duration>,
    /// Per attempt: how long the receiver took (or the timeout).
    pub latencies: Vec<Duration>,
}

#[derive(Clone)]
pub struct WebhookService {
    store: Arc<dyn WebhookStore>,
    feed: Arc<dyn ChangeFeedStore>,
    adapters: WebhookAdapters,
    clock: Arc<dyn Clock>,
}

fn check_text(field: &'static str, value: &str, max: usize) -> Result<()> {
    if value.chars().count() > max {
        return Err(Error::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

fn check_entity_type(value: &str) -> Result<()> {
    // The entity link's own rule (ids::EntityRef) with a placeholder id.
    crate::ids::EntityRef::new(value, "x")
        .map(|_| ())
        .map_err(|_| Error::invalid("entityType", "must be a valid entity type"))
}

/// A pseudo-random number in [0, 1) for retry jitter.
fn jitter() -> f64 {
    (uuid::Uuid::new_v4().as_u128() >> 75) as f64 / (1u64 << 53) as f64
}

fn elapsed(from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
    (to - from).to_std().unwrap_or_default()
}

impl WebhookService {
    pub fn new(
        store: Arc<dyn WebhookStore>,
        feed: Arc<dyn ChangeFeedStore>,
        adapters: WebhookAdapters,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            feed,
            adapters,
            clock,
        }
    }

    async fn check_settings(
        &self,
        url: &str,
        entity_type: Option<&str>,
        description: Option<&str>,
    ) -> Result<()> {
        if url.is_empty() {
            return Err(Error::invalid("url", "must not be empty"));
        }
        check_text("url", url, URL_CHARS)?;
        if let Some(entity_type) = entity_type {
            check_entity_type(entity_type)?;
        }
        if let Some(description) = description {
            check_text("description", description, DESCRIPTION_CHARS)?;
        }
        self.adapters.sender.check_url(url).await
    }

    /// Creates a subscription that receives the changes made from now on.
    /// Answers it with its signing secret, shown this once.
    pub async fn create(&self, new: NewWebhook) -> Result<(WebhookSubscription, SigningSecret)> {
        self.check_settings(
            &new.url,
            new.entity_type.as_deref(),
            new.description.as_deref(),
        )
        .await?;
        if self.store.list_webhooks().await?.len() >= MAX_WEBHOOKS {
            return Err(Error::Conflict {
                reason: format!("at most {MAX_WEBHOOKS} webhook subscriptions are kept"),
            });
        }
        let secret = self.adapters.keeper.new_signing_secret()?;
        let now = self.clock.now();
        let subscription = WebhookSubscription {
            id: WebhookId::random(),
            url: new.url,
            types: new.types,
            entity_type: new.entity_type,
            calendar_id: new.calendar_id,
            description: new.description,
            secret: self.adapters.keeper.seal(&secret)?,
            previous_secret: None,
            previous_secret_until: None,
            enabled: true,
            disabled_reason: None,
            cursor: self.feed.latest_cursor().await?,
            failures: 0,
            failing_since: None,
            next_attempt_at: now,
            last_delivered_at: None,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_webhook(&subscription).await?;
        Ok((subscription, secret))
    }

    pub async fn list(&self) -> Result<Vec<WebhookSubscription>> {
        self.store.list_webhooks().await
    }

    pub async fn get(&self, id: &WebhookId) -> Result<WebhookSubscription> {
        self.store
            .get_webhook(id)
            .await?
            .ok_or(Error::NotFound { what: "webhook" })
    }

    pub async fn update(&self, id: &WebhookId, patch: WebhookPatch) -> Result<WebhookSubscription> {
        let mut subscription = self.get(id).await?;
        let settings_change = patch.url.is_some()
            || patch.types.is_some()
            || patch.entity_type.is_some()
            || patch.calendar_id.is_some()
            || patch.description.is_some();
        if let Some(url) = patch.url {
            subscription.url = url;
        }
        if let Some(types) = patch.types {
            subscription.types = types;
        }
        if let Some(entity_type) = patch.entity_type {
            subscription.entity_type = entity_type;
        }
        if let Some(calendar_id) = patch.calendar_id {
            subscription.calendar_id = calendar_id;
        }
        if let Some(description) = patch.description {
            subscription.description = description;
        }
        if settings_change {
            self.check_settings(
                &subscription.url,
                subscription.entity_type.as_deref(),
                subscription.description.as_deref(),
            )
            .await?;
            subscription.updated_at = self.clock.now();
            if !self.store.update_webhook(&subscription).await? {
                return Err(Error::NotFound { what: "webhook" });
            }
        }
        if let Some(enabled) = patch.enabled
            && enabled != subscription.enabled
        {
            let reason = (!enabled).then_some("disabled through the API");
            if !self
                .store
                .set_webhook_enabled(id, enabled, reason, self.clock.now())
                .await?
            {
                return Err(Error::NotFound { what: "webhook" });
            }
        }
        self.get(id).await
    }

    pub async fn delete(&self, id: &WebhookId) -> Result<()> {
        if self.store.delete_webhook(id).await? {
            Ok(())
        } else {
            Err(Error::NotFound { what: "webhook" })
        }
    }

    /// A new secret; the old one keeps signing beside it for
    /// [`ROTATION_OVERLAP`], so receivers can switch without losing a delivery.
    pub async fn rotate_secret(
        &self,
        id: &WebhookId,
    ) -> Result<(WebhookSubscription, SigningSecret)> {
        let mut subscription = self.get(id).await?;
        let secret = self.adapters.keeper.new_signing_secret()?;
        let now = self.clock.now();
        subscription.previous_secret = Some(subscription.secret.clone());
        subscription.previous_secret_until = Some(now + ROTATION_OVERLAP);
        subscription.secret = self.adapters.keeper.seal(&secret)?;
        subscription.updated_at = now;
        if !self.store.update_webhook(&subscription).await? {
            return Err(Error::NotFound { what: "webhook" });
        }
        Ok((subscription, secret))
    }

    /// The newest attempts first.
    pub async fn attempts(&self, id: &WebhookId, limit: u32) -> Result<Vec<DeliveryAttempt>> {
        self.get(id).await?;
        self.store
            .list_webhook_attempts(id, limit.clamp(1, 100))
            .await
    }

    /// Sends a `webhook.test` now, signed like any delivery, and records it.
    pub async fn test(&self, id: &WebhookId) -> Result<DeliveryAttempt> {
        let subscription = self.get(id).await?;
        let now = self.clock.now();
        let message_id = format!("test_{}", uuid::Uuid::new_v4().simple());
        let body = serde_json::to_vec(&serde_json::json!({
            "type": ChangeType::WebhookTest.as_str(),
            "webhookId": subscription.id.as_str(),
            "occurredAt": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }))
        .map_err(|e| Error::Storage(e.to_string()))?;
        let attempt = self
            .attempt(
                &subscription,
                &message_id,
                None,
                ChangeType::WebhookTest,
                body,
            )
            .await?;
        self.store.record_webhook_attempt(&attempt).await?;
        Ok(attempt)
    }

    /// Sends the change at `cursor` to the subscription again, now, signed
    /// with its message id (`webhook-id`) unchanged so receivers that keep
    /// ids drop it if they had it; records the attempt. The subscription's
    /// own cursor does not move.
    pub async fn replay(&self, id: &WebhookId, cursor: Cursor) -> Result<DeliveryAttempt> {
        let subscription = self.get(id).await?;
        let query = ChangeQuery {
            after: Some(Cursor::from_seq(cursor.seq().saturating_sub(1))),
            limit: 1,
            calendar_id: None,
            entity_type: None,
            entity_id: None,
            types: Vec::new(),
        };
        let change = self
            .feed
            .read_changes(&query)
            .await?
            .items
            .into_iter()
            .next()
            .filter(|change| change.cursor == cursor)
            .ok_or(Error::NotFound { what: "change" })?;
        if !subscription.query(1).matches(&change.change) {
            return Err(Error::unprocessable(
                "cursor",
                "that change is not one this subscription receives (its types, calendar or \
                 entity type filter it out)",
            ));
        }
        let body = self.adapters.renderer.render(&change)?;
        let attempt = self
            .attempt(
                &subscription,
                &change.cursor.encode(),
                Some(change.cursor),
                change.change.kind,
                body,
            )
            .await?;
        self.store.record_webhook_attempt(&attempt).await?;
        Ok(attempt)
    }

    fn signing_secrets(&self, subscription: &WebhookSubscription) -> Result<Vec<SigningSecret>> {
        subscription
            .live_secrets(self.clock.now())
            .into_iter()
            .map(|sealed| self.adapters.keeper.open(sealed))
            .collect()
    }

    /// One signed POST; its outcome as an attempt (a failure to reach the
    /// receiver is a failed attempt, not an error).
    async fn attempt(
        &self,
        subscription: &WebhookSubscription,
        message_id: &str,
        cursor: Option<Cursor>,
        kind: ChangeType,
        body: Vec<u8>,
    ) -> Result<DeliveryAttempt> {
        let secrets = self.signing_secrets(subscription)?;
        let started = self.clock.now();
        let timestamp = started.timestamp();
        let request = OutboundRequest {
            url: subscription.url.clone(),
            headers: vec![
                (signature::HEADER_ID, message_id.to_owned()),
                (signature::HEADER_TIMESTAMP, timestamp.to_string()),
                (
                    signature::HEADER_SIGNATURE,
                    signature::signature_header(&secrets, message_id, timestamp, &body),
                ),
            ],
            body,
        };
        let answer = self.adapters.sender.send(&request, ATTEMPT_TIMEOUT).await;
        let latency = elapsed(started, self.clock.now());
        let (outcome, status, error) = match answer {
            Ok(response) => {
                let outcome = AttemptOutcome::of_status(response.status);
                let error = (outcome != AttemptOutcome::Delivered)
                    .then(|| format!("the receiver answered {}", response.status));
                (outcome, Some(response.status), error)
            }
            // The sender's own words (what failed reaching the receiver),
            // not the domain's wrapper around them.
            Err(Error::Provider { message, .. }) => (AttemptOutcome::Failed, None, Some(message)),
            Err(error) => (AttemptOutcome::Failed, None, Some(error.to_string())),
        };
        Ok(DeliveryAttempt {
            webhook_id: subscription.id.clone(),
            cursor,
            kind,
            attempted_at: started,
            outcome,
            status,
            latency_ms: u32::try_from(latency.as_millis()).unwrap_or(u32::MAX),
            error,
        })
    }

    /// How many changes the furthest-behind enabled subscription has yet
    /// to receive (0 with none).
    pub async fn feed_lag(&self) -> Result<u64> {
        let latest = self.feed.latest_cursor().await?;
        Ok(self
            .store
            .list_webhooks()
            .await?
            .iter()
            .filter(|s| s.enabled)
            .map(|s| latest.seq().saturating_sub(s.cursor.seq()))
            .max()
            .unwrap_or(0))
    }

    /// One round: claims the subscriptions with something due and delivers
    /// to each (concurrently across subscriptions, in order within one).
    pub async fn deliver_due(&self, owner: &str, limit: u32) -> Result<DeliveryReport> {
        let now = self.clock.now();
        let latest = self.feed.latest_cursor().await?;
        let claimed = self
            .store
            .claim_webhooks(owner, now, crate::later(now, DELIVERY_LEASE), latest, limit)
            .await?;
        let mut report = DeliveryReport {
            subscriptions: u32::try_from(claimed.len()).unwrap_or(u32::MAX),
            ..DeliveryReport::default()
        };
        let rounds = join_all(claimed.iter().map(|s| self.deliver_to(owner, s))).await;
        for round in rounds {
            let round = round?;
            report.delivered += round.delivered;
            report.failed += round.failed;
            report.disabled += round.disabled;
            report.lags.extend(round.lags);
            report.latencies.extend(round.latencies);
        }
        Ok(report)
    }

    async fn pending(&self, subscription: &WebhookSubscription) -> Result<(Vec<Change>, Cursor)> {
        match self
            .feed
            .read_changes(&subscription.query(DELIVERY_BATCH))
            .await
        {
            Ok(batch) => Ok((batch.items, batch.next_cursor)),
            // Its changes were purged while it was disabled: go on from the
            // oldest kept (what was purged cannot be sent).
            Err(Error::CursorExpired { .. }) => {
                let query = ChangeQuery {
                    after: None,
                    ..subscription.query(DELIVERY_BATCH)
                };
                let batch = self.feed.read_changes(&query).await?;
                Ok((batch.items, batch.next_cursor))
            }
            Err(other) => Err(other),
        }
    }

    async fn deliver_to(
        &self,
        owner: &str,
        subscription: &WebhookSubscription,
    ) -> Result<DeliveryReport> {
        let mut report = DeliveryReport::default();
        let mut progress = DeliveryProgress::of(subscription);
        let (changes, next_cursor) = match self.pending(subscription).await {
            Ok(found) => found,
            Err(error) => {
                // Give the lease back before reporting.
                self.store
                    .record_webhook_progress(&subscription.id, owner, &progress, None)
                    .await?;
                return Err(error);
            }
        };
        let full = changes.len() as u32 >= DELIVERY_BATCH;
        for change in &changes {
            let body = self.adapters.renderer.render(change)?;
            let attempt = self
                .attempt(
                    subscription,
                    &change.cursor.encode(),
                    Some(change.cursor),
                    change.change.kind,
                    body,
                )
                .await?;
            let now = self.clock.now();
            report
                .latencies
                .push(Duration::from_millis(u64::from(attempt.latency_ms)));
            let outcome = attempt.outcome;
            progress.attempts.push(attempt);
            match outcome {
                AttemptOutcome::Delivered => {
                    report.delivered += 1;
                    report.lags.push(elapsed(change.change.occurred_at, now));
                    progress.cursor = change.cursor;
                    progress.failures = 0;
                    progress.failing_since = None;
                    progress.last_delivered_at = Some(now);
                    progress.next_attempt_at = now;
                    let held = self
                        .store
                        .record_webhook_progress(
                            &subscription.id,
                            owner,
                            &progress,
                            Some(crate::later(now, DELIVERY_LEASE)),
                        )
                        .await?;
                    progress.attempts.clear();
                    if !held {
                        return Ok(report);
                    }
                }
                AttemptOutcome::Gone => {
                    report.failed += 1;
                    report.disabled += 1;
                    progress.disabled = Some("the receiver answered 410 Gone".into());
                    break;
                }
                AttemptOutcome::Failed => {
                    report.failed += 1;
                    progress.failures += 1;
                    let since = *progress.failing_since.get_or_insert(now);
                    progress.next_attempt_at =
                        crate::later(now, retry_delay(progress.failures, jitter()));
                    if now - since >= DISABLE_AFTER {
                        report.disabled += 1;
                        progress.disabled = Some(format!(
                            "every delivery failed since {}",
                            since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                        ));
                    }
                    break;
                }
            }
        }
        let all_delivered = report.delivered as usize == changes.len();
        if all_delivered && !full {
            // What its filters left out after the last match is passed too.
            progress.cursor = progress.cursor.max(next_cursor);
        } else if all_delivered {
            progress.next_attempt_at = self.clock.now();
        }
        self.store
            .record_webhook_progress(&subscription.id, owner, &progress, None)
            .await?;
        Ok(report)
    }
}
