//! The application's webhook subscriptions: their settings, the delivery
//! state one replica at a time advances under a lease, and the log of
//! attempts.

use async_trait::async_trait;
use calsync_domain::Error as DomainError;
use calsync_domain::feed::subscription::{
    AttemptOutcome, DeliveryAttempt, DeliveryProgress, SealedSecret, WebhookId, WebhookSubscription,
};
use calsync_domain::feed::{ChangeType, Cursor};
use calsync_domain::ids::CalendarId;
use calsync_domain::ports::WebhookStore;
use chrono::{DateTime, Utc};
use diesel::{
    BoolExpressionMethods, ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper,
};
use diesel_async::RunQueryDsl;

use super::schema::{calendar_webhook_attempts as wa, calendar_webhooks as wh};
use super::{Conn, D, DieselStore, DomainResult, corrupt, db, micros};
use crate::dialect::Dialect;

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(table_name = wh)]
struct WebhookRow {
    id: String,
    url: String,
    types: serde_json::Value,
    entity_type: Option<String>,
    calendar_id: Option<String>,
    description: Option<String>,
    secret: String,
    previous_secret: Option<String>,
    previous_secret_until: Option<DateTime<Utc>>,
    enabled: bool,
    disabled_reason: Option<String>,
    cursor: i64,
    failures: i32,
    failing_since: Option<DateTime<Utc>>,
    next_attempt_at: DateTime<Utc>,
    last_delivered_at: Option<DateTime<Utc>>,
    lease_owner: Option<String>,
    lease_until: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn seq(cursor: Cursor) -> i64 {
    i64::try_from(cursor.seq()).unwrap_or(i64::MAX)
}

fn cursor(seq: i64) -> Cursor {
    Cursor::from_seq(u64::try_from(seq).unwrap_or(0))
}

fn type_names(types: &[ChangeType]) -> serde_json::Value {
    serde_json::Value::Array(
        types
            .iter()
            .map(|t| serde_json::Value::String(t.as_str().to_owned()))
            .collect(),
    )
}

/// A stored type name: a feed type, or `webhook.test` (attempts only).
fn parse_type(name: &str) -> DomainResult<ChangeType> {
    if name == ChangeType::WebhookTest.as_str() {
        return Ok(ChangeType::WebhookTest);
    }
    ChangeType::parse(name).map_err(|e| corrupt("change type", e))
}

fn webhook_id(id: String) -> DomainResult<WebhookId> {
    WebhookId::parse(&id).map_err(|e| corrupt("webhook id", e))
}

impl WebhookRow {
    fn new(subscription: &WebhookSubscription) -> Self {
        let s = subscription;
        Self {
            id: s.id.to_string(),
            url: s.url.clone(),
            types: type_names(&s.types),
            entity_type: s.entity_type.clone(),
            calendar_id: s.calendar_id.as_ref().map(ToString::to_string),
            description: s.description.clone(),
            secret: s.secret.0.clone(),
            previous_secret: s.previous_secret.as_ref().map(|p| p.0.clone()),
            previous_secret_until: s.previous_secret_until.map(micros),
            enabled: s.enabled,
            disabled_reason: s.disabled_reason.clone(),
            cursor: seq(s.cursor),
            failures: i32::try_from(s.failures).unwrap_or(i32::MAX),
            failing_since: s.failing_since.map(micros),
            next_attempt_at: micros(s.next_attempt_at),
            last_delivered_at: s.last_delivered_at.map(micros),
            lease_owner: None,
            lease_until: None,
            created_at: micros(s.created_at),
            updated_at: micros(s.updated_at),
        }
    }

    fn into_subscription(self) -> DomainResult<WebhookSubscription> {
        let names: Vec<String> =
            serde_json::from_value(self.types).map_err(|e| corrupt("webhook types", e))?;
        Ok(WebhookSubscription {
            id: webhook_id(self.id)?,
            url: self.url,
            types: names
                .iter()
                .map(|name| parse_type(name))
                .collect::<DomainResult<_>>()?,
            entity_type: self.entity_type,
            calendar_id: self.calendar_id.map(CalendarId::new).transpose()?,
            description: self.description,
            secret: SealedSecret(self.secret),
            previous_secret: self.previous_secret.map(SealedSecret),
            previous_secret_until: self.previous_secret_until,
            enabled: self.enabled,
            disabled_reason: self.disabled_reason,
            cursor: cursor(self.cursor),
            failures: u32::try_from(self.failures).unwrap_or(0),
            failing_since: self.failing_since,
            next_attempt_at: self.next_attempt_at,
            last_delivered_at: self.last_delivered_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(diesel::Insertable)]
#[diesel(table_name = wa)]
// NULLs rather than DEFAULT, so a chunk is one multi-row INSERT on SQLite too.
#[diesel(treat_none_as_default_value = false)]
pub(crate) struct NewAttemptRow {
    webhook_id: String,
    cursor: Option<i64>,
    kind: String,
    attempted_at: DateTime<Utc>,
    outcome: String,
    status: Option<i32>,
    latency_ms: i32,
    error: Option<String>,
}

impl NewAttemptRow {
    fn new(attempt: &DeliveryAttempt) -> Self {
        Self {
            webhook_id: attempt.webhook_id.to_string(),
            cursor: attempt.cursor.map(seq),
            kind: attempt.kind.as_str().to_owned(),
            attempted_at: micros(attempt.attempted_at),
            outcome: attempt.outcome.as_str().to_owned(),
            status: attempt.status.map(i32::from),
            latency_ms: i32::try_from(attempt.latency_ms).unwrap_or(i32::MAX),
            error: attempt.error.clone(),
        }
    }
}

#[derive(diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = wa)]
struct AttemptRow {
    webhook_id: String,
    cursor: Option<i64>,
    kind: String,
    attempted_at: DateTime<Utc>,
    outcome: String,
    status: Option<i32>,
    latency_ms: i32,
    error: Option<String>,
}

impl AttemptRow {
    fn into_attempt(self) -> DomainResult<DeliveryAttempt> {
        Ok(DeliveryAttempt {
            webhook_id: webhook_id(self.webhook_id)?,
            cursor: self.cursor.map(cursor),
            kind: parse_type(&self.kind)?,
            attempted_at: self.attempted_at,
            outcome: AttemptOutcome::parse(&self.outcome)
                .map_err(|e| corrupt("attempt outcome", e))?,
            status: self.status.and_then(|s| u16::try_from(s).ok()),
            latency_ms: u32::try_from(self.latency_ms).unwrap_or(0),
            error: self.error,
        })
    }
}

/// Inserts attempt rows in the caller's transaction; an attempt of a
/// subscription that is gone is `NotFound`.
async fn insert_attempts(conn: &mut Conn, attempts: &[DeliveryAttempt]) -> DomainResult<()> {
    use diesel::result::{DatabaseErrorKind, Error as Diesel};
    if attempts.is_empty() {
        return Ok(());
    }
    let rows: Vec<NewAttemptRow> = attempts.iter().map(NewAttemptRow::new).collect();
    <D as Dialect>::insert_attempts(conn, rows)
        .await
        .map_err(|error| match error {
            Diesel::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
                DomainError::NotFound { what: "webhook" }
            }
            other => db(other),
        })
}

#[async_trait]
impl WebhookStore for DieselStore {
    async fn insert_webhook(&self, subscription: &WebhookSubscription) -> DomainResult<()> {
        let row = WebhookRow::new(subscription);
        write_tx!(self, |conn| {
            diesel::insert_into(wh::table)
                .values(&row)
                .execute(conn)
                .await
                .map_err(|error| match db(error) {
                    DomainError::Duplicate { .. } => DomainError::Duplicate { what: "webhook" },
                    other => other,
                })?;
            Ok(())
        })
    }

    async fn get_webhook(&self, id: &WebhookId) -> DomainResult<Option<WebhookSubscription>> {
        let mut conn = self.conn().await?;
        wh::table
            .find(id.as_str())
            .select(WebhookRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(db)?
            .map(WebhookRow::into_subscription)
            .transpose()
    }

    async fn list_webhooks(&self) -> DomainResult<Vec<WebhookSubscription>> {
        let mut conn = self.conn().await?;
        wh::table
            .order((wh::created_at.asc(), wh::id.asc()))
            .select(WebhookRow::as_select())
            .load::<WebhookRow>(&mut conn)
            .await
            .map_err(db)?
            .into_iter()
            .map(WebhookRow::into_subscription)
            .collect()
    }

    async fn update_webhook(&self, subscription: &WebhookSubscription) -> DomainResult<bool> {
        let row = WebhookRow::new(subscription);
        write_tx!(self, |conn| {
            // The settings only: the delivery state is the deliverer's.
            let updated = diesel::update(wh::table.find(&row.id))
                .set((
                    wh::url.eq(&row.url),
                    wh::types.eq(&row.types),
                    wh::entity_type.eq(&row.entity_type),
                    wh::calendar_id.eq(&row.calendar_id),
                    wh::description.eq(&row.description),
                    wh::secret.eq(&row.secret),
                    wh::previous_secret.eq(&row.previous_secret),
                    wh::previous_secret_until.eq(row.previous_secret_until),
                    wh::updated_at.eq(row.updated_at),
                ))
                .execute(conn)
                .await
                .map_err(db)?;
            Ok(updated > 0)
        })
    }

    async fn set_webhook_enabled(
        &self,
        id: &WebhookId,
        enabled: bool,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> DomainResult<bool> {
        let now = micros(now);
        write_tx!(self, |conn| {
            let target = diesel::update(wh::table.find(id.as_str()));
            let updated = if enabled {
                // A fresh start: no failures held against it, due at once.
                target
                    .set((
                        wh::enabled.eq(true),
                        wh::disabled_reason.eq(None::<String>),
                        wh::failures.eq(0),
                        wh::failing_since.eq(None::<DateTime<Utc>>),
                        wh::next_attempt_at.eq(now),
                        wh::updated_at.eq(now),
                    ))
                    .execute(conn)
                    .await
            } else {
                target
                    .set((
                        wh::enabled.eq(false),
                        wh::disabled_reason.eq(reason),
                        wh::updated_at.eq(now),
                    ))
                    .execute(conn)
                    .await
            }
            .map_err(db)?;
            Ok(updated > 0)
        })
    }

    async fn delete_webhook(&self, id: &WebhookId) -> DomainResult<bool> {
        write_tx!(self, |conn| {
            // The attempts go with it (the foreign key cascades too; this
            // does not depend on SQLite's foreign_keys pragma).
            diesel::delete(wa::table.filter(wa::webhook_id.eq(id.as_str())))
                .execute(conn)
                .await
                .map_err(db)?;
            let deleted = diesel::delete(wh::table.find(id.as_str()))
                .execute(conn)
                .await
                .map_err(db)?;
            Ok(deleted > 0)
        })
    }

    async fn claim_webhooks(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        latest: Cursor,
        limit: u32,
    ) -> DomainResult<Vec<WebhookSubscription>> {
        let (now, lease_until, latest) = (micros(now), micros(lease_until), seq(latest));
        write_tx!(self, |conn| {
            let candidates: Vec<String> = wh::table
                .filter(wh::enabled.eq(true))
                .filter(wh::next_attempt_at.le(now))
                .filter(wh::lease_until.is_null().or(wh::lease_until.le(now)))
                .filter(wh::cursor.lt(latest))
                .order((wh::next_attempt_at.asc(), wh::id.asc()))
                .limit(i64::from(limit))
                .select(wh::id)
                .load(conn)
                .await
                .map_err(db)?;
            let mut claimed = Vec::with_capacity(candidates.len());
            for id in candidates {
                // Conditional on the lease still being free: of replicas
                // racing for one subscription, one wins (Postgres re-checks
                // the condition on the row another claim just wrote).
                let rows = diesel::update(wh::table.find(&id))
                    .filter(wh::enabled.eq(true))
                    .filter(wh::next_attempt_at.le(now))
                    .filter(wh::lease_until.is_null().or(wh::lease_until.le(now)))
                    .set((wh::lease_owner.eq(owner), wh::lease_until.eq(lease_until)))
                    .returning(WebhookRow::as_returning())
                    .get_results::<WebhookRow>(conn)
                    .await
                    .map_err(db)?;
                for row in rows {
                    claimed.push(row.into_subscription()?);
                }
            }
            Ok(claimed)
        })
    }

    async fn record_webhook_progress(
        &self,
        id: &WebhookId,
        owner: &str,
        progress: &DeliveryProgress,
        lease_until: Option<DateTime<Utc>>,
    ) -> DomainResult<bool> {
        let holder = lease_until.map(|_| owner);
        let lease_until = lease_until.map(micros);
        write_tx!(self, |conn| {
            // Only while `owner` holds the lease: a replica that lost it
            // (it expired and another claimed it) writes nothing.
            let updated = diesel::update(wh::table.find(id.as_str()))
                .filter(wh::lease_owner.eq(owner))
                .set((
                    wh::cursor.eq(seq(progress.cursor)),
                    wh::failures.eq(i32::try_from(progress.failures).unwrap_or(i32::MAX)),
                    wh::failing_since.eq(progress.failing_since.map(micros)),
                    wh::next_attempt_at.eq(micros(progress.next_attempt_at)),
                    wh::last_delivered_at.eq(progress.last_delivered_at.map(micros)),
                    wh::lease_owner.eq(holder),
                    wh::lease_until.eq(lease_until),
                ))
                .execute(conn)
                .await
                .map_err(db)?;
            if updated == 0 {
                return Ok(false);
            }
            if let Some(reason) = &progress.disabled {
                diesel::update(wh::table.find(id.as_str()))
                    .set((
                        wh::enabled.eq(false),
                        wh::disabled_reason.eq(reason.as_str()),
                    ))
                    .execute(conn)
                    .await
                    .map_err(db)?;
            }
            insert_attempts(conn, &progress.attempts).await?;
            Ok(true)
        })
    }

    async fn record_webhook_attempt(&self, attempt: &DeliveryAttempt) -> DomainResult<()> {
        write_tx!(self, |conn| {
            // Named, not left to the foreign key (whose error differs by
            // dialect): the subscription was deleted meanwhile.
            let known: i64 = wh::table
                .filter(wh::id.eq(attempt.webhook_id.as_str()))
                .count()
                .get_result(conn)
                .await
                .map_err(db)?;
            if known == 0 {
                return Err(DomainError::NotFound { what: "webhook" });
            }
            insert_attempts(conn, std::slice::from_ref(attempt)).await
        })
    }

    async fn list_webhook_attempts(
        &self,
        id: &WebhookId,
        limit: u32,
    ) -> DomainResult<Vec<DeliveryAttempt>> {
        let mut conn = self.conn().await?;
        wa::table
            .filter(wa::webhook_id.eq(id.as_str()))
            .order(wa::id.desc())
            .limit(i64::from(limit))
            .select(AttemptRow::as_select())
            .load::<AttemptRow>(&mut conn)
            .await
            .map_err(db)?
            .into_iter()
            .map(AttemptRow::into_attempt)
            .collect()
    }

    async fn purge_webhook_attempts(&self, before: DateTime<Utc>) -> DomainResult<u64> {
        write_tx!(self, |conn| {
            let purged = diesel::delete(wa::table.filter(wa::attempted_at.lt(micros(before))))
                .execute(conn)
                .await
                .map_err(db)?;
            Ok(purged as u64)
        })
    }
}
