//! The change feed: the rows every write records in its own transaction
//! ([`record_changes`]), and reading them back in cursor order.
//!
//! The ordering promise (a reader that has answered up to a cursor never
//! sees a change with a smaller one commit later) rests on two rules: a
//! transaction records its changes as its last statement, after taking the
//! dialect's feed lock ([`Dialect::lock_feed`]), so seqs are handed out in
//! commit order; and a read takes the newest seq first, then reads rows up
//! to it only.

use async_trait::async_trait;
use calsync_domain::Error as DomainError;
use calsync_domain::feed::{
    Change, ChangeBatch, ChangePayload, ChangeQuery, ChangeType, Cursor, MAX_READ, NewChange,
    Origin,
};
use calsync_domain::ids::CalendarId;
use calsync_domain::ports::ChangeFeedStore;
use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;

use super::schema::{calendar_change_feed as cf, calendar_changes as cc};
use super::{Conn, D, DieselStore, DomainResult, corrupt, db, micros};
use crate::dialect::Dialect;

/// A change as stored.
#[derive(diesel::Insertable)]
#[diesel(table_name = cc)]
// Bind NULLs rather than DEFAULT, so a chunk is one multi-row INSERT on
// SQLite too.
#[diesel(treat_none_as_default_value = false)]
pub(crate) struct NewChangeRow {
    kind: String,
    origin: String,
    occurred_at: DateTime<Utc>,
    calendar_id: Option<String>,
    event_id: Option<String>,
    google_event_id: Option<String>,
    entity_type: Option<String>,
    entity_id: Option<String>,
    etag: Option<String>,
    payload: StoredPayload,
}

/// A change's payload as its column holds it, encoded from and decoded
/// into the domain's type directly (each dialect's `ToSql`/`FromSql`):
/// no `serde_json::Value` tree is built between, which was most of a
/// feed read's time.
#[derive(Debug, diesel::expression::AsExpression, diesel::deserialize::FromSqlRow)]
#[diesel(sql_type = super::Json)]
pub(crate) struct StoredPayload(pub(crate) ChangePayload);

impl NewChangeRow {
    fn new(change: &NewChange) -> Self {
        Self {
            kind: change.kind.as_str().to_owned(),
            origin: change.origin.as_str().to_owned(),
            occurred_at: micros(change.occurred_at),
            calendar_id: change.calendar_id.as_ref().map(ToString::to_string),
            event_id: change.event_id().map(|id| id.to_string()),
            google_event_id: change.google_event_id().map(ToString::to_string),
            entity_type: change.entity().map(|e| e.entity_type().to_owned()),
            entity_id: change.entity().map(|e| e.entity_id().to_owned()),
            etag: change.etag().map(ToString::to_string),
            payload: StoredPayload(ChangePayload::of(change)),
        }
    }
}

/// What a read needs of a stored change: the indexed columns the payload
/// does not repeat.
#[derive(diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = cc)]
struct ChangeRow {
    seq: i64,
    kind: String,
    origin: String,
    occurred_at: DateTime<Utc>,
    calendar_id: Option<String>,
    payload: StoredPayload,
}

impl ChangeRow {
    fn into_change(self) -> DomainResult<Change> {
        let StoredPayload(payload) = self.payload;
        Ok(Change {
            cursor: cursor(self.seq),
            change: NewChange {
                kind: ChangeType::parse(&self.kind).map_err(|e| corrupt("change kind", e))?,
                origin: Origin::parse(&self.origin).map_err(|e| corrupt("change origin", e))?,
                occurred_at: self.occurred_at,
                calendar_id: self.calendar_id.map(CalendarId::new).transpose()?,
                event: payload.event,
                changed_fields: payload.changed_fields,
                detail: payload.detail,
            },
        })
    }
}

fn cursor(seq: i64) -> Cursor {
    Cursor::from_seq(u64::try_from(seq).unwrap_or(0))
}

fn seq(cursor: Cursor) -> i64 {
    i64::try_from(cursor.seq()).unwrap_or(i64::MAX)
}

/// Records `changes` in the caller's write transaction. Call it as the
/// transaction's last statement: it takes the feed lock, which the
/// transaction then holds until it ends (so no row lock may be taken after
/// it, or writers could deadlock).
pub(super) async fn record_changes(conn: &mut Conn, changes: &[NewChange]) -> DomainResult<()> {
    if changes.is_empty() {
        return Ok(());
    }
    <D as Dialect>::lock_feed(conn).await.map_err(db)?;
    let rows: Vec<NewChangeRow> = changes.iter().map(NewChangeRow::new).collect();
    <D as Dialect>::insert_changes(conn, rows).await.map_err(db)
}

/// The highest seq purged (0: none yet).
async fn purged_through(conn: &mut Conn) -> DomainResult<i64> {
    Ok(cf::table
        .find(1)
        .select(cf::purged_through)
        .first::<i64>(conn)
        .await
        .optional()
        .map_err(db)?
        .unwrap_or(0))
}

/// The newest seq recorded (0: none).
async fn newest_seq(conn: &mut Conn) -> DomainResult<i64> {
    Ok(cc::table
        .select(diesel::dsl::max(cc::seq))
        .first::<Option<i64>>(conn)
        .await
        .map_err(db)?
        .unwrap_or(0))
}

fn expired(after: i64, purged: i64) -> DomainError {
    DomainError::CursorExpired {
        reason: format!(
            "changes up to {} have been purged and {} is before them; read from the oldest \
             change kept (no `after`) or from the latest cursor",
            cursor(purged),
            cursor(after),
        ),
    }
}

#[async_trait]
impl ChangeFeedStore for DieselStore {
    async fn read_changes(&self, query: &ChangeQuery) -> DomainResult<ChangeBatch> {
        let mut conn = self.conn().await?;
        // Without `after`, from the oldest kept: purged rows are gone.
        let after = query.after.map_or(0, seq);
        let limit = query.limit.min(MAX_READ);
        // The newest seq first: every change up to it has committed (seqs
        // are handed out in commit order), so rows read up to it leave
        // nothing behind that commits later.
        let newest = newest_seq(&mut conn).await?;
        let mut items = Vec::new();
        if limit > 0 && newest > after {
            let mut select = cc::table
                .filter(cc::seq.gt(after))
                .filter(cc::seq.le(newest))
                .select(ChangeRow::as_select())
                .into_boxed();
            if let Some(calendar_id) = &query.calendar_id {
                select = select.filter(cc::calendar_id.eq(calendar_id.as_str().to_owned()));
            }
            if let Some(entity_type) = &query.entity_type {
                select = select.filter(cc::entity_type.eq(entity_type.clone()));
            }
            if let Some(entity_id) = &query.entity_id {
                select = select.filter(cc::entity_id.eq(entity_id.clone()));
            }
            if !query.types.is_empty() {
                let kinds: Vec<&'static str> = query.types.iter().map(|t| t.as_str()).collect();
                select = select.filter(cc::kind.eq_any(kinds));
            }
            let rows = select
                .order(cc::seq.asc())
                .limit(i64::from(limit))
                .load::<ChangeRow>(&mut conn)
                .await
                .map_err(db)?;
            items = rows
                .into_iter()
                .map(ChangeRow::into_change)
                .collect::<DomainResult<Vec<_>>>()?;
        }
        // Checked after the read: a purge that ran meanwhile and took rows
        // this read should have answered is caught, not passed over.
        let purged = purged_through(&mut conn).await?;
        if query.after.is_some() && after < purged {
            return Err(expired(after, purged));
        }
        let next = if limit > 0 && items.len() == limit as usize {
            items.last().map_or(after, |c| seq(c.cursor))
        } else {
            // Past everything this read could see, those the filters left
            // out included; never before `after`, nor before a purge.
            newest.max(purged).max(after)
        };
        Ok(ChangeBatch {
            items,
            next_cursor: cursor(next),
        })
    }

    async fn latest_cursor(&self) -> DomainResult<Cursor> {
        let mut conn = self.conn().await?;
        let newest = newest_seq(&mut conn).await?;
        // After a purge that emptied the feed, the purge's end is newest.
        let purged = purged_through(&mut conn).await?;
        Ok(cursor(newest.max(purged)))
    }

    async fn purge_changes(&self, before: DateTime<Utc>, limit: u32) -> DomainResult<u64> {
        if limit == 0 {
            return Ok(0);
        }
        let before = micros(before);
        write_tx!(self, |conn| {
            // Oldest first by seq, stopping at the first change that is not
            // old enough: the feed stays one unbroken run after the purged
            // seq, so "after < purged_through" is exactly "missed changes".
            let oldest: Vec<(i64, DateTime<Utc>)> = cc::table
                .select((cc::seq, cc::occurred_at))
                .order(cc::seq.asc())
                .limit(i64::from(limit))
                .load(conn)
                .await
                .map_err(db)?;
            let Some(through) = oldest
                .iter()
                .take_while(|(_, at)| *at < before)
                .map(|(seq, _)| *seq)
                .last()
            else {
                return Ok(0);
            };
            let purged = diesel::delete(cc::table.filter(cc::seq.le(through)))
                .execute(conn)
                .await
                .map_err(db)?;
            diesel::update(cf::table.find(1))
                .filter(cf::purged_through.lt(through))
                .set(cf::purged_through.eq(through))
                .execute(conn)
                .await
                .map_err(db)?;
            Ok(purged as u64)
        })
    }
}
