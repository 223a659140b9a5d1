//! Reading the pre-filled feed through `GET /calendar/changes`, one read
//! at a time (its own cost, not queueing): 1,000 changes from a random
//! cursor across the pre-filled range, as a reader catching up does; and
//! one entity's changes (`entityType` + `entityId`), as an application
//! replaying a deal's history does. Timed until the whole answer is in.

use std::time::{Duration, Instant};

use calsync_domain::feed::{Cursor, MAX_READ};
use rand::Rng;

use super::prefill::{ENTITY_TYPE, Filled};
use super::{Api, Latencies, READ_P99_GOAL};
use crate::error::LabError;

/// One kind of read.
pub(super) struct ReadFigures {
    pub latencies: Latencies,
    pub items: u64,
    pub bytes: u64,
}

impl ReadFigures {
    fn per_read(&self, total: u64) -> f64 {
        total as f64 / self.latencies.0.len().max(1) as f64
    }
}

pub(super) struct Reads {
    pub page: ReadFigures,
    pub entity: ReadFigures,
}

impl Reads {
    pub fn print(&self, backend: &str, rows: u64) {
        println!(
            "feed bench: backend={backend} result=read_1000 feed_rows={rows} items_per_read={:.0} kb_per_read={:.0} {} {}",
            self.page.per_read(self.page.items),
            self.page.per_read(self.page.bytes) / 1024.0,
            self.page.latencies.summary(),
            self.page.latencies.goal(READ_P99_GOAL),
        );
        println!(
            "feed bench: backend={backend} result=read_by_entity feed_rows={rows} filter=entityType+entityId items_per_read={:.1} {} {}",
            self.entity.per_read(self.entity.items),
            self.entity.latencies.summary(),
            self.entity.latencies.goal(READ_P99_GOAL),
        );
    }
}

/// `first_seq`: the newest seq before the pre-fill, which then wrote
/// `first_seq + 1 ..= first_seq + filled.rows`.
pub(super) async fn measure(
    api: &Api,
    first_seq: u64,
    filled: &Filled,
    reads: usize,
) -> Result<Reads, LabError> {
    let limit = u64::from(MAX_READ);
    let span = filled.rows.saturating_sub(limit);
    let mut page = Vec::with_capacity(reads);
    let mut entity = Vec::with_capacity(reads);
    let (mut page_items, mut page_bytes) = (0, 0);
    let (mut entity_items, mut entity_bytes) = (0, 0);
    for _ in 0..reads {
        let after = Cursor::from_seq(first_seq + rand::rng().random_range(0..=span));
        let path = format!("/calendar/changes?after={after}&limit={limit}");
        let (took, items, bytes) = timed(api, &path).await?;
        // A short page would be a read of less than asked: say so.
        if filled.rows >= limit && items < limit {
            return Err(
                format!("GET {path} answered {items} changes, not {limit}: the pre-fill is not what the server reads").into(),
            );
        }
        page.push(took);
        (page_items, page_bytes) = (page_items + items, page_bytes + bytes);

        let id = rand::rng().random_range(0..filled.entities);
        let path =
            format!("/calendar/changes?entityType={ENTITY_TYPE}&entityId={id}&limit={limit}");
        let (took, items, bytes) = timed(api, &path).await?;
        if filled.rows > 0 && items == 0 {
            return Err(format!("GET {path} found none of the entity's changes").into());
        }
        entity.push(took);
        (entity_items, entity_bytes) = (entity_items + items, entity_bytes + bytes);
    }
    Ok(Reads {
        page: ReadFigures {
            latencies: Latencies::new(page),
            items: page_items,
            bytes: page_bytes,
        },
        entity: ReadFigures {
            latencies: Latencies::new(entity),
            items: entity_items,
            bytes: entity_bytes,
        },
    })
}

/// One read: how long until the whole answer was in, its changes, its bytes.
async fn timed(api: &Api, path: &str) -> Result<(Duration, u64, u64), LabError> {
    let started = Instant::now();
    let (status, body) = api.call("GET", path, None, Duration::from_secs(60)).await?;
    let took = started.elapsed();
    if status != 200 {
        let text: String = String::from_utf8_lossy(&body).chars().take(300).collect();
        return Err(format!("GET {path} answered {status}: {text}").into());
    }
    let page: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("GET {path}: not JSON: {e}"))?;
    let items = page["items"].as_array().map_or(0, Vec::len) as u64;
    Ok((took, items, body.len() as u64))
}
