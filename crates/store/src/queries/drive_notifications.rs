//! Google Drive's push notifications, kept for inspection and purged by
//! age.

use async_trait::async_trait;
use calsync_domain::feed;
use calsync_domain::ports::DriveNotificationStore;
use calsync_domain::webhook::DriveNotification;
use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;

use super::feed::record_changes;
use super::rows::DriveRow;
use super::schema::drive_notifications as dn;
use super::{DieselStore, DomainResult, db, micros};

#[async_trait]
impl DriveNotificationStore for DieselStore {
    async fn record_drive_notification(
        &self,
        notification: &DriveNotification,
        received_at: DateTime<Utc>,
    ) -> DomainResult<bool> {
        let envelope = &notification.envelope;
        write_tx!(self, |conn| {
            let inserted = diesel::insert_into(dn::table)
                .values((
                    dn::channel_id.eq(envelope.channel_id.as_str()),
                    dn::resource_id.eq(envelope.resource_id.as_str()),
                    dn::resource_uri.eq(&envelope.resource_uri),
                    dn::resource_state.eq(notification.state.as_str()),
                    dn::message_number
                        .eq(i64::try_from(envelope.message_number).unwrap_or(i64::MAX)),
                    dn::changed.eq(notification.changed.join(",")),
                    dn::received_at.eq(micros(received_at)),
                ))
                .on_conflict((dn::channel_id, dn::message_number))
                .do_nothing()
                .execute(conn)
                .await
                .map_err(db)?;
            // A retry or a replay of one already recorded changes nothing.
            if inserted == 1 {
                let change = feed::drive_change(notification.feed_detail(), received_at);
                record_changes(conn, &[change]).await?;
            }
            Ok(inserted == 1)
        })
    }

    async fn purge_drive_notifications(&self, before: DateTime<Utc>) -> DomainResult<u64> {
        write_tx!(self, |conn| {
            let purged = diesel::delete(dn::table.filter(dn::received_at.lt(micros(before))))
                .execute(conn)
                .await
                .map_err(db)?;
            Ok(purged as u64)
        })
    }

    async fn recent_drive_notifications(
        &self,
        limit: u32,
    ) -> DomainResult<Vec<(DriveNotification, DateTime<Utc>)>> {
        let mut conn = self.conn().await?;
        dn::table
            .order(dn::id.desc())
            .limit(i64::from(limit))
            .select(DriveRow::as_select())
            .load::<DriveRow>(&mut conn)
            .await
            .map_err(db)?
            .into_iter()
            .map(DriveRow::into_notification)
            .collect()
    }
}
