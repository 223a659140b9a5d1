//! Every sealed column, listed and replaced value by value, for re-sealing
//! under a new key (`calsync secrets reseal`) while the service runs.

use async_trait::async_trait;
use calsync_domain::feed::subscription::SealedSecret;
use calsync_domain::ports::{SealedColumn, SealedSecretStore, SealedValue};
use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::RunQueryDsl;

use super::schema::{calendar_grants as gr, calendar_oauth_states as st, calendar_webhooks as wh};
use super::{DieselStore, DomainResult, db};

/// One keyset page of `(key, sealed)` from a table: keys after `$after`,
/// in key order, at most `$limit`, those `$present` keeps.
macro_rules! page {
    ($conn:expr, $table:ident, $key:expr, $sealed:expr, $present:expr, $after:expr, $limit:expr) => {{
        let mut query = $table::table
            .select(($key, $sealed))
            .filter($present)
            .order($key.asc())
            .limit($limit)
            .into_boxed();
        if let Some(after) = $after {
            query = query.filter($key.gt(after));
        }
        query.load(&mut $conn).await.map_err(db)?
    }};
}

#[async_trait]
impl SealedSecretStore for DieselStore {
    async fn list_sealed(
        &self,
        column: SealedColumn,
        after: Option<&str>,
        limit: u32,
    ) -> DomainResult<Vec<SealedValue>> {
        let mut conn = self.conn().await?;
        let limit = i64::from(limit);
        // A revoked grant's refresh token is dropped (written empty), and a
        // webhook never rotated has no previous secret: nothing sealed there.
        let rows: Vec<(String, String)> = match column {
            SealedColumn::GrantRefreshToken => page!(
                conn,
                gr,
                gr::id,
                gr::refresh_token,
                gr::refresh_token.ne(""),
                after,
                limit
            ),
            SealedColumn::AuthorizationVerifier => page!(
                conn,
                st,
                st::state,
                st::verifier,
                st::verifier.ne(""),
                after,
                limit
            ),
            SealedColumn::WebhookSecret => page!(
                conn,
                wh,
                wh::id,
                wh::secret,
                wh::secret.ne(""),
                after,
                limit
            ),
            SealedColumn::WebhookPreviousSecret => {
                let rows: Vec<(String, Option<String>)> = page!(
                    conn,
                    wh,
                    wh::id,
                    wh::previous_secret,
                    wh::previous_secret.ne(""),
                    after,
                    limit
                );
                rows.into_iter()
                    .filter_map(|(id, sealed)| Some((id, sealed?)))
                    .collect()
            }
        };
        Ok(rows
            .into_iter()
            .map(|(row, sealed)| SealedValue {
                column,
                row,
                sealed: SealedSecret(sealed),
            })
            .collect())
    }

    async fn replace_sealed(&self, value: &SealedValue, new: &SealedSecret) -> DomainResult<bool> {
        let (row, old, new) = (value.row.as_str(), value.sealed.0.as_str(), new.0.as_str());
        // One UPDATE whose WHERE names the old sealed text: on Postgres a
        // writer that committed first is seen (read committed re-checks the
        // row it waited for) and the update matches nothing; on SQLite
        // writes take turns. Nothing else in the row is touched (not
        // `updated_at`: the secret itself is unchanged).
        write_tx!(self, |conn| {
            let replaced = match value.column {
                SealedColumn::GrantRefreshToken => {
                    diesel::update(
                        gr::table
                            .filter(gr::id.eq(row))
                            .filter(gr::refresh_token.eq(old)),
                    )
                    .set(gr::refresh_token.eq(new))
                    .execute(conn)
                    .await
                }
                SealedColumn::AuthorizationVerifier => {
                    diesel::update(
                        st::table
                            .filter(st::state.eq(row))
                            .filter(st::verifier.eq(old)),
                    )
                    .set(st::verifier.eq(new))
                    .execute(conn)
                    .await
                }
                SealedColumn::WebhookSecret => {
                    diesel::update(wh::table.filter(wh::id.eq(row)).filter(wh::secret.eq(old)))
                        .set(wh::secret.eq(new))
                        .execute(conn)
                        .await
                }
                SealedColumn::WebhookPreviousSecret => {
                    diesel::update(
                        wh::table
                            .filter(wh::id.eq(row))
                            .filter(wh::previous_secret.eq(old)),
                    )
                    .set(wh::previous_secret.eq(new))
                    .execute(conn)
                    .await
                }
            }
            .map_err(db)?;
            Ok(replaced > 0)
        })
    }
}
