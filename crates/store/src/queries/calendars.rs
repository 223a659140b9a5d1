//! The managed calendars: which calendars calsync mirrors, and whom it acts
//! as for each.

use async_trait::async_trait;
use calsync_domain::calendar::{ManagedCalendar, Subject};
use calsync_domain::grant::GrantId;
use calsync_domain::ids::CalendarId;
use calsync_domain::ports::CalendarStore;
use chrono::{DateTime, Utc};
use diesel::upsert::excluded;
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;

use super::schema::calendar_calendars as cc;
use super::{DieselStore, DomainResult, db, micros};

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(table_name = cc)]
struct CalendarRow {
    calendar_id: String,
    subject: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    grant_id: Option<String>,
}

impl CalendarRow {
    fn new(calendar: &ManagedCalendar) -> Self {
        Self {
            calendar_id: calendar.calendar_id.to_string(),
            subject: calendar.subject.as_ref().map(|s| s.as_str().to_owned()),
            created_at: micros(calendar.created_at),
            updated_at: micros(calendar.updated_at),
            grant_id: calendar.grant.as_ref().map(|g| g.as_str().to_owned()),
        }
    }

    fn into_calendar(self) -> DomainResult<ManagedCalendar> {
        Ok(ManagedCalendar {
            calendar_id: CalendarId::new(self.calendar_id)?,
            subject: self.subject.map(Subject::new).transpose()?,
            grant: self.grant_id.as_deref().map(GrantId::parse).transpose()?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[async_trait]
impl CalendarStore for DieselStore {
    async fn upsert_calendar(&self, calendar: &ManagedCalendar) -> DomainResult<ManagedCalendar> {
        let row = CalendarRow::new(calendar);
        let stored = write_tx!(self, |conn| {
            // A known calendar keeps its `created_at`.
            diesel::insert_into(cc::table)
                .values(&row)
                .on_conflict(cc::calendar_id)
                .do_update()
                .set((
                    cc::subject.eq(excluded(cc::subject)),
                    cc::grant_id.eq(excluded(cc::grant_id)),
                    cc::updated_at.eq(excluded(cc::updated_at)),
                ))
                .returning(CalendarRow::as_returning())
                .get_result::<CalendarRow>(conn)
                .await
                .map_err(db)
        })?;
        stored.into_calendar()
    }

    async fn get_calendar(
        &self,
        calendar_id: &CalendarId,
    ) -> DomainResult<Option<ManagedCalendar>> {
        let mut conn = self.conn().await?;
        cc::table
            .find(calendar_id.as_str())
            .select(CalendarRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(db)?
            .map(CalendarRow::into_calendar)
            .transpose()
    }

    async fn list_calendars(&self) -> DomainResult<Vec<ManagedCalendar>> {
        let mut conn = self.conn().await?;
        let mut calendars = cc::table
            .select(CalendarRow::as_select())
            .load::<CalendarRow>(&mut conn)
            .await
            .map_err(db)?
            .into_iter()
            .map(CalendarRow::into_calendar)
            .collect::<DomainResult<Vec<_>>>()?;
        // Sorted here, not by `ORDER BY`: a Postgres database's collation
        // (e.g. en_US) need not order text by bytes, as `CalendarId` does
        // and SQLite does. One row per managed calendar: a short list.
        calendars.sort_unstable_by(|a, b| a.calendar_id.cmp(&b.calendar_id));
        Ok(calendars)
    }

    async fn delete_calendar(&self, calendar_id: &CalendarId) -> DomainResult<bool> {
        write_tx!(self, |conn| {
            let deleted = diesel::delete(cc::table.find(calendar_id.as_str()))
                .execute(conn)
                .await
                .map_err(db)?;
            Ok(deleted > 0)
        })
    }
}
