//! Google's watch channels: the push notifications each calendar gets.

use async_trait::async_trait;
use calsync_domain::Error as DomainError;
use calsync_domain::channel::{ChannelStatus, WatchChannel, WatchGrant};
use calsync_domain::ids::ChannelId;
use calsync_domain::ports::ChannelStore;
use chrono::{DateTime, Utc};
use diesel::{
    BoolExpressionMethods, ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper,
};
use diesel_async::RunQueryDsl;

use super::rows::ChannelRow;
use super::schema::calendar_watch_channels as wc;
use super::{DieselStore, DomainResult, db, micros};

#[async_trait]
impl ChannelStore for DieselStore {
    async fn insert_channel(&self, channel: &WatchChannel) -> DomainResult<()> {
        let row = ChannelRow::new(channel);
        write_tx!(self, |conn| {
            diesel::insert_into(wc::table)
                .values(&row)
                .execute(conn)
                .await
                .map_err(|error| match db(error) {
                    DomainError::Duplicate { .. } => DomainError::Duplicate { what: "channel" },
                    other => other,
                })?;
            Ok(())
        })
    }

    async fn get_channel(&self, id: &ChannelId) -> DomainResult<Option<WatchChannel>> {
        let mut conn = self.conn().await?;
        wc::table
            .find(id.as_str())
            .select(ChannelRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(db)?
            .map(ChannelRow::into_channel)
            .transpose()
    }

    async fn list_channels(
        &self,
        status: Option<ChannelStatus>,
    ) -> DomainResult<Vec<WatchChannel>> {
        let mut conn = self.conn().await?;
        let mut query = wc::table.select(ChannelRow::as_select()).into_boxed();
        if let Some(status) = status {
            query = query.filter(wc::status.eq(status.as_str()));
        }
        query
            .order((wc::created_at.asc(), wc::id.asc()))
            .load::<ChannelRow>(&mut conn)
            .await
            .map_err(db)?
            .into_iter()
            .map(ChannelRow::into_channel)
            .collect()
    }

    async fn activate_channel(&self, id: &ChannelId, grant: &WatchGrant) -> DomainResult<()> {
        write_tx!(self, |conn| {
            let updated = diesel::update(wc::table.find(id.as_str()))
                .set((
                    wc::resource_id.eq(grant.resource_id.as_str()),
                    wc::expiration.eq(micros(grant.expiration)),
                    wc::status.eq(ChannelStatus::Active.as_str()),
                ))
                .execute(conn)
                .await
                .map_err(db)?;
            if updated == 0 {
                return Err(DomainError::NotFound { what: "channel" });
            }
            Ok(())
        })
    }

    async fn set_channel_status(&self, id: &ChannelId, status: ChannelStatus) -> DomainResult<()> {
        write_tx!(self, |conn| {
            let updated = diesel::update(wc::table.find(id.as_str()))
                .set(wc::status.eq(status.as_str()))
                .execute(conn)
                .await
                .map_err(db)?;
            if updated == 0 {
                return Err(DomainError::NotFound { what: "channel" });
            }
            Ok(())
        })
    }

    async fn record_notification(
        &self,
        id: &ChannelId,
        message_number: u64,
        at: DateTime<Utc>,
    ) -> DomainResult<()> {
        let number = i64::try_from(message_number).unwrap_or(i64::MAX);
        write_tx!(self, |conn| {
            // Keep the highest message number; notifications may arrive out of order.
            let raised = diesel::update(wc::table.find(id.as_str()))
                .filter(
                    wc::last_message_number
                        .is_null()
                        .or(wc::last_message_number.lt(number)),
                )
                .set((
                    wc::last_message_number.eq(number),
                    wc::last_notification_at.eq(micros(at)),
                ))
                .execute(conn)
                .await
                .map_err(db)?;
            if raised == 0 {
                let touched = diesel::update(wc::table.find(id.as_str()))
                    .set(wc::last_notification_at.eq(micros(at)))
                    .execute(conn)
                    .await
                    .map_err(db)?;
                if touched == 0 {
                    return Err(DomainError::NotFound { what: "channel" });
                }
            }
            Ok(())
        })
    }
}
