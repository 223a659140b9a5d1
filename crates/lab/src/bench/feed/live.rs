//! Remote change to feed and to webhook delivery: edits made at the
//! emulator (as another Google user would) at a steady rate, on a calendar
//! the server watches through a push channel. Each edit is timed from just
//! before the emulator makes it until
//! - a reader long-polling `GET /calendar/changes?waitSecs=` holds an
//!   answer with it (the Google event id, and the etag the edit gave it;
//!   a deletion: `event.cancelled`), and
//! - the receiver subscribed through `POST /calendar/webhooks` has the
//!   delivery with it, its Standard Webhooks signature verified.
//!
//! An event is edited again only once both have seen its last edit, so
//! every edit is one change to look for (Google's incremental sync would
//! otherwise fold two quick edits into one).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use calsync_domain::feed::signature;
use calsync_emulator::{Change, Emulator};
use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use super::receiver::{Delivery, Receiver};
use super::{Api, FEED_P99_GOAL, Latencies, WEBHOOK_P99_GOAL};
use crate::error::LabError;

/// The calendar the server watches (the emulator's default).
const CALENDAR: &str = "primary";
/// Events made before the clock starts; the edits then pick among them.
const POOL: usize = 50;
/// How long one change may take before it counts as missing.
const GIVE_UP: Duration = Duration::from_secs(60);
/// The reader's long poll.
const WAIT_SECS: u32 = 10;

/// What one stream (feed or webhooks) showed.
pub(super) struct Stream {
    pub latencies: Latencies,
    /// Timed edits it never showed.
    pub missing: usize,
}

pub(super) struct Live {
    pub made: u64,
    pub rate_per_min: f64,
    pub feed: Stream,
    pub webhook: Stream,
    pub deliveries: u64,
    /// Deliveries of a `webhook-id` already received (at least once).
    pub redeliveries: u64,
    pub bad_signatures: u64,
    /// Long polls that failed (retried).
    pub reader_errors: u64,
}

impl Live {
    pub fn print(&self, backend: &str) {
        println!(
            "feed bench: backend={backend} result=change_to_feed changes={} changes_per_min={:.0} {} missing={} reader_errors={} {}",
            self.made,
            self.rate_per_min,
            self.feed.latencies.summary(),
            self.feed.missing,
            self.reader_errors,
            self.feed.latencies.goal(FEED_P99_GOAL),
        );
        println!(
            "feed bench: backend={backend} result=change_to_webhook changes={} {} missing={} deliveries={} redeliveries={} bad_signatures={} {}",
            self.made,
            self.webhook.latencies.summary(),
            self.webhook.missing,
            self.deliveries,
            self.redeliveries,
            self.bad_signatures,
            self.webhook.latencies.goal(WEBHOOK_P99_GOAL),
        );
    }
}

/// A change seen by the reader or the receiver.
struct Seen {
    google_event_id: String,
    etag: String,
    kind: String,
    at: Instant,
}

impl Seen {
    fn of(change: &Value, at: Instant) -> Option<Self> {
        Some(Self {
            google_event_id: change["googleEventId"].as_str()?.to_owned(),
            etag: change["etag"].as_str().unwrap_or_default().to_owned(),
            kind: change["type"].as_str().unwrap_or_default().to_owned(),
            at,
        })
    }
}

/// What an edit is to look like once it shows.
struct Expected {
    /// The etag the emulator gave the event; `None`: a deletion, seen as
    /// `event.cancelled`.
    etag: Option<String>,
    made: Instant,
    /// False for the pool's warm-up inserts.
    timed: bool,
}

impl Expected {
    fn is(&self, seen: &Seen) -> bool {
        match &self.etag {
            Some(etag) => seen.etag == *etag,
            None => seen.kind == "event.cancelled",
        }
    }
}

/// Edits waiting to be seen, by Google event id, per stream.
#[derive(Default)]
struct Waiting {
    feed: HashMap<String, Expected>,
    webhook: HashMap<String, Expected>,
    feed_latencies: Vec<Duration>,
    webhook_latencies: Vec<Duration>,
}

impl Waiting {
    fn expect(&mut self, id: &str, etag: Option<String>, made: Instant, timed: bool) {
        for stream in [&mut self.feed, &mut self.webhook] {
            stream.insert(
                id.to_owned(),
                Expected {
                    etag: etag.clone(),
                    made,
                    timed,
                },
            );
        }
    }

    fn busy(&self, id: &str) -> bool {
        self.feed.contains_key(id) || self.webhook.contains_key(id)
    }

    fn is_empty(&self) -> bool {
        self.feed.is_empty() && self.webhook.is_empty()
    }

    fn settle(pending: &mut HashMap<String, Expected>, seen: &Seen, into: &mut Vec<Duration>) {
        if pending
            .get(&seen.google_event_id)
            .is_some_and(|expected| expected.is(seen))
            && let Some(expected) = pending.remove(&seen.google_event_id)
            && expected.timed
        {
            into.push(seen.at.saturating_duration_since(expected.made));
        }
    }

    fn seen_in_feed(&mut self, seen: &Seen) {
        Self::settle(&mut self.feed, seen, &mut self.feed_latencies);
    }

    fn seen_by_webhook(&mut self, seen: &Seen) {
        Self::settle(&mut self.webhook, seen, &mut self.webhook_latencies);
    }
}

pub(super) async fn measure(
    api: &Api,
    emulator: &Emulator,
    changes_per_min: u32,
    duration: Duration,
) -> Result<Live, LabError> {
    let mut receiver = Receiver::start().await?;
    let created = api
        .json(
            "POST",
            "/calendar/webhooks",
            Some(&json!({"url": receiver.url, "description": "calsync-lab bench feed"})),
            201,
        )
        .await?;
    let secret = created["secret"]
        .as_str()
        .ok_or("POST /calendar/webhooks answered no secret")?
        .to_owned();
    let latest = api
        .json("GET", "/calendar/changes/latest", None, 200)
        .await?;
    let cursor = latest["cursor"]
        .as_str()
        .ok_or("GET /calendar/changes/latest answered no cursor")?
        .to_owned();
    // Watching the calendar: Google (the emulator) pushes each change.
    api.json("POST", "/calendar/channels", None, 201).await?;

    let (feed_sender, mut feed_seen) = unbounded_channel();
    let reader_errors = Arc::new(AtomicU64::new(0));
    // Stopped however this ends (its polls would outlive the server).
    let _reader = AbortOnDrop(tokio::spawn(read_feed(
        api.clone(),
        cursor,
        feed_sender,
        reader_errors.clone(),
    )));
    let mut run = Run {
        emulator,
        waiting: Waiting::default(),
        pool: Vec::new(),
        secret,
        delivered_ids: HashSet::new(),
        deliveries: 0,
        redeliveries: 0,
        bad_signatures: 0,
        made: 0,
    };

    // Warm-up, untimed: the pool's events, each through both streams.
    for i in 0..POOL {
        run.insert(i, false)?;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let warm_until = Instant::now() + GIVE_UP;
    while !run.waiting.is_empty() {
        let left = warm_until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "the warm-up's {POOL} new events did not all reach the feed ({} left) and the receiver ({} left) within {GIVE_UP:?}",
                run.waiting.feed.len(),
                run.waiting.webhook.len()
            )
            .into());
        }
        tokio::select! {
            Some(seen) = feed_seen.recv() => run.waiting.seen_in_feed(&seen),
            Some(delivery) = receiver.deliveries.recv() => run.received(&delivery),
            _ = tokio::time::sleep(left) => {}
        }
    }

    // The timed edits.
    let every = Duration::from_secs_f64(60.0 / f64::from(changes_per_min.max(1)));
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = Instant::now();
    let deadline = started + duration;
    let mut last_edit = started;
    let mut check = tokio::time::interval(Duration::from_millis(500));
    loop {
        let making = Instant::now() < deadline;
        if !making && run.waiting.is_empty() {
            break;
        }
        // What has not shown a while after the last edit never will.
        if !making && last_edit.elapsed() > GIVE_UP {
            break;
        }
        tokio::select! {
            _ = ticker.tick(), if making => {
                run.edit()?;
                last_edit = Instant::now();
            }
            Some(seen) = feed_seen.recv() => run.waiting.seen_in_feed(&seen),
            Some(delivery) = receiver.deliveries.recv() => run.received(&delivery),
            _ = check.tick() => {}
        }
    }
    let Waiting {
        feed,
        webhook,
        feed_latencies,
        webhook_latencies,
        ..
    } = run.waiting;
    Ok(Live {
        made: run.made,
        rate_per_min: run.made as f64 * 60.0 / duration.as_secs_f64().max(1e-9),
        feed: Stream {
            latencies: Latencies::new(feed_latencies),
            missing: feed.values().filter(|e| e.timed).count(),
        },
        webhook: Stream {
            latencies: Latencies::new(webhook_latencies),
            missing: webhook.values().filter(|e| e.timed).count(),
        },
        deliveries: run.deliveries,
        redeliveries: run.redeliveries,
        bad_signatures: run.bad_signatures,
        reader_errors: reader_errors.load(Ordering::Relaxed),
    })
}

/// The bench's side of the run: the edits made and what came back.
struct Run<'a> {
    emulator: &'a Emulator,
    waiting: Waiting,
    /// Live events the edits pick from (Google ids).
    pool: Vec<String>,
    secret: String,
    delivered_ids: HashSet<String>,
    deliveries: u64,
    redeliveries: u64,
    bad_signatures: u64,
    /// Timed edits made.
    made: u64,
}

impl Run<'_> {
    fn insert(&mut self, n: usize, timed: bool) -> Result<(), LabError> {
        let start = chrono::Utc::now() + chrono::Duration::hours(1 + (n % 500) as i64);
        let Value::Object(body) = json!({
            "summary": format!("feed bench event {n}"),
            "description": "Made at Google by another user during calsync-lab bench feed.",
            "start": {"dateTime": start.to_rfc3339()},
            "end": {"dateTime": (start + chrono::Duration::minutes(30)).to_rfc3339()},
        }) else {
            return Err("an event body is a JSON object".into());
        };
        let made = Instant::now();
        let created = self.emulator.change(CALENDAR, Change::Insert(body))?;
        let id = created["id"].as_str().unwrap_or_default().to_owned();
        self.expect(&id, &created, made, timed);
        self.pool.push(id);
        Ok(())
    }

    /// One timed edit: mostly a new summary, some new events and
    /// deletions, the pool kept between half and twice its size.
    fn edit(&mut self) -> Result<(), LabError> {
        let n = self.made as usize;
        self.made += 1;
        let roll = rand::rng().random_range(0..100);
        let free: Vec<usize> = (0..self.pool.len())
            .filter(|i| !self.waiting.busy(&self.pool[*i]))
            .collect();
        let pick = (!free.is_empty()).then(|| free[rand::rng().random_range(0..free.len())]);
        match pick {
            Some(index) if roll < 10 && self.pool.len() > POOL / 2 => {
                let id = self.pool.swap_remove(index);
                let made = Instant::now();
                self.emulator
                    .change(CALENDAR, Change::Delete { id: id.clone() })?;
                // A deletion shows as `event.cancelled`, whatever its etag.
                self.waiting.expect(&id, None, made, true);
                Ok(())
            }
            Some(index) if roll >= 20 || self.pool.len() >= 2 * POOL => {
                let id = self.pool[index].clone();
                let Value::Object(fields) = json!({"summary": format!("feed bench edit {n}")})
                else {
                    return Err("a patch is a JSON object".into());
                };
                let made = Instant::now();
                let patched = self.emulator.change(
                    CALENDAR,
                    Change::Patch {
                        id: id.clone(),
                        fields,
                    },
                )?;
                self.expect(&id, &patched, made, true);
                Ok(())
            }
            _ => self.insert(POOL + n, true),
        }
    }

    /// `event` (as the emulator answered) is to show with its etag.
    fn expect(&mut self, id: &str, event: &Value, made: Instant, timed: bool) {
        let etag = event["etag"].as_str().map(str::to_owned);
        self.waiting.expect(id, etag, made, timed);
    }

    /// A delivery: signature checked (as a receiver must), then matched.
    fn received(&mut self, delivery: &Delivery) {
        self.deliveries += 1;
        let now = chrono::Utc::now().timestamp();
        let verified = signature::verify(
            &self.secret,
            &delivery.id,
            &delivery.timestamp,
            &delivery.signature,
            &delivery.body,
            now,
            signature::DEFAULT_TOLERANCE_SECS,
        );
        if verified.is_err() {
            self.bad_signatures += 1;
            return;
        }
        if !self.delivered_ids.insert(delivery.id.clone()) {
            self.redeliveries += 1;
        }
        let Ok(change) = serde_json::from_slice::<Value>(&delivery.body) else {
            self.bad_signatures += 1;
            return;
        };
        // The `webhook-id` is the change's cursor (the same on retries).
        if change["cursor"].as_str() != Some(delivery.id.as_str()) {
            self.bad_signatures += 1;
            return;
        }
        if let Some(seen) = Seen::of(&change, delivery.at) {
            self.waiting.seen_by_webhook(&seen);
        }
    }
}

/// Aborts its task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The application's reader: long polls from `cursor` on, handing every
/// change over with the instant its answer arrived, counting failed polls
/// (retried). Runs until aborted.
async fn read_feed(
    api: Api,
    mut cursor: String,
    seen: UnboundedSender<Seen>,
    errors: Arc<AtomicU64>,
) {
    loop {
        let path = format!("/calendar/changes?after={cursor}&limit=1000&waitSecs={WAIT_SECS}");
        let answer = api
            .call(
                "GET",
                &path,
                None,
                Duration::from_secs(u64::from(WAIT_SECS) + 20),
            )
            .await;
        let at = Instant::now();
        let page = match answer {
            Ok((200, body)) => serde_json::from_slice::<Value>(&body).ok(),
            _ => None,
        };
        let Some(page) = page else {
            errors.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        for change in page["items"].as_array().into_iter().flatten() {
            if let Some(change) = Seen::of(change, at) {
                let _ = seen.send(change);
            }
        }
        if let Some(next) = page["nextCursor"].as_str() {
            cursor = next.to_owned();
        }
    }
}
