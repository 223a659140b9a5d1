//! Job ticks: each scheduled run of a periodic job, claimed by one
//! instance.

use async_trait::async_trait;
use calsync_domain::ports::JobTickStore;
use chrono::{DateTime, Utc};
use diesel::ExpressionMethods;
use diesel_async::RunQueryDsl;

use super::schema::job_ticks as jt;
use super::{DieselStore, DomainResult, db, micros};

#[async_trait]
impl JobTickStore for DieselStore {
    async fn claim_tick(
        &self,
        job: &str,
        scheduled_for: DateTime<Utc>,
        owner: &str,
    ) -> DomainResult<bool> {
        write_tx!(self, |conn| {
            let inserted = diesel::insert_into(jt::table)
                .values((
                    jt::job.eq(job),
                    jt::scheduled_for.eq(micros(scheduled_for)),
                    jt::claimed_by.eq(owner),
                    jt::claimed_at.eq(micros(Utc::now())),
                ))
                .on_conflict((jt::job, jt::scheduled_for))
                .do_nothing()
                .execute(conn)
                .await
                .map_err(db)?;
            Ok(inserted == 1)
        })
    }
}
