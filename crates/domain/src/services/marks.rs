//! The webhook's hot path, kept off the database where it can be:
//! [`ChannelCache`] serves channel look-ups from memory, and [`MarkBatch`]
//! commits the dirty marks of all notifications waiting at one moment
//! together (a group commit), so N concurrent notifications cost one
//! look-up and at most one write per calendar instead of N of each.
//!
//! Both keep the webhook's promise: a notification is answered 2xx only
//! once its calendar's dirty mark is committed, or a sync that starts after
//! it arrived is already due (the same check as one at a time).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use futures_channel::oneshot;

use crate::channel::{ChannelStatus, WatchChannel, WatchGrant};
use crate::error::{Error, Result};
use crate::ids::{CalendarId, ChannelId};
use crate::ports::{ChannelStore, Clock, SyncStateStore};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How long a cached channel is trusted. Another replica's stop or renewal
/// reaches this one within it; meanwhile a stopped channel's notification
/// only costs a needless sync. This replica's own changes evict at once.
pub const CHANNEL_CACHE_TTL: chrono::Duration = chrono::Duration::seconds(5);
/// More live channels than any deployment has; past it the cache restarts.
const CHANNEL_CACHE_CAP: usize = 100_000;

/// Channels by id, as last read from the store, with the highest message
/// number this replica has acknowledged for each.
#[derive(Default)]
pub struct ChannelCache {
    entries: Mutex<HashMap<ChannelId, Cached>>,
}

struct Cached {
    channel: WatchChannel,
    loaded_at: DateTime<Utc>,
}

impl ChannelCache {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The channel, if read within [`CHANNEL_CACHE_TTL`] of `now`.
    pub(crate) fn get(&self, id: &ChannelId, now: DateTime<Utc>) -> Option<WatchChannel> {
        let entries = lock(&self.entries);
        let cached = entries.get(id)?;
        (now.signed_duration_since(cached.loaded_at) < CHANNEL_CACHE_TTL)
            .then(|| cached.channel.clone())
    }

    /// Remembers a channel just read. A pending one is not kept: its
    /// resource id and status are about to change.
    pub(crate) fn put(&self, channel: &WatchChannel, now: DateTime<Utc>) {
        if channel.status == ChannelStatus::Pending {
            return;
        }
        let mut entries = lock(&self.entries);
        if entries.len() >= CHANNEL_CACHE_CAP && !entries.contains_key(&channel.id) {
            entries.clear();
        }
        entries.insert(
            channel.id.clone(),
            Cached {
                channel: channel.clone(),
                loaded_at: now,
            },
        );
    }

    /// A notification numbered `number` was acknowledged: later ones at or
    /// below it are replays.
    pub(crate) fn acknowledged(&self, id: &ChannelId, number: u64) {
        if let Some(cached) = lock(&self.entries).get_mut(id) {
            let last = &mut cached.channel.last_message_number;
            *last = Some(last.map_or(number, |n| n.max(number)));
        }
    }

    /// Drops a channel this replica changed (stopped, renewed, activated).
    pub fn forget(&self, id: &ChannelId) {
        lock(&self.entries).remove(id);
    }
}

/// A [`ChannelStore`] that evicts a channel from `cache` whenever it is
/// written, for every service of this process that changes channels.
pub struct EvictingChannelStore {
    inner: Arc<dyn ChannelStore>,
    cache: Arc<ChannelCache>,
}

impl EvictingChannelStore {
    pub fn new(inner: Arc<dyn ChannelStore>, cache: Arc<ChannelCache>) -> Arc<Self> {
        Arc::new(Self { inner, cache })
    }
}

#[async_trait::async_trait]
impl ChannelStore for EvictingChannelStore {
    async fn insert_channel(&self, channel: &WatchChannel) -> Result<()> {
        self.cache.forget(&channel.id);
        self.inner.insert_channel(channel).await
    }

    async fn get_channel(&self, id: &ChannelId) -> Result<Option<WatchChannel>> {
        self.inner.get_channel(id).await
    }

    async fn list_channels(&self, status: Option<ChannelStatus>) -> Result<Vec<WatchChannel>> {
        self.inner.list_channels(status).await
    }

    async fn activate_channel(&self, id: &ChannelId, grant: &WatchGrant) -> Result<()> {
        let result = self.inner.activate_channel(id, grant).await;
        self.cache.forget(id);
        result
    }

    async fn set_channel_status(&self, id: &ChannelId, status: ChannelStatus) -> Result<()> {
        let result = self.inner.set_channel_status(id, status).await;
        self.cache.forget(id);
        result
    }

    async fn record_notification(
        &self,
        id: &ChannelId,
        message_number: u64,
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.inner.record_notification(id, message_number, at).await
    }
}

/// One notification's share of a batch.
pub(crate) struct Mark {
    pub calendar_id: CalendarId,
    pub channel_id: ChannelId,
    pub message_number: u64,
    /// `false` for a channel's opening `sync` message: recorded, not marked.
    pub dirty: bool,
}

/// How often a channel's last notification is written during a burst: it
/// is for reporting, and replays are caught in memory meanwhile.
const NOTIFICATION_RECORD_INTERVAL: chrono::Duration = chrono::Duration::seconds(1);

/// What a waiting notification hears.
enum Turn {
    /// Its batch was committed (or failed).
    Done(Result<()>),
    /// It leads the next batch.
    Lead,
}

#[derive(Default)]
struct Queue {
    /// Marks not yet taken into a batch; the sender is absent for the
    /// leader's own mark (it reads the result directly) and for a mark
    /// whose request went away (it is still committed).
    waiting: Vec<(Mark, Option<oneshot::Sender<Turn>>)>,
    leading: bool,
}

/// Group commit of dirty marks. No background task: the first notification
/// to arrive leads, commits everything queued when it starts, answers the
/// others, and hands the lead to the first that arrived meanwhile.
pub(crate) struct MarkBatch {
    queue: Mutex<Queue>,
    /// When each channel's last notification was last written.
    recorded: Mutex<HashMap<ChannelId, DateTime<Utc>>>,
    states: Arc<dyn SyncStateStore>,
    channels: Arc<dyn ChannelStore>,
    clock: Arc<dyn Clock>,
}

/// Hands the lead on when the leader is done, or dropped mid-commit.
struct Leading<'a>(&'a MarkBatch);

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        let mut queue = lock(&self.0.queue);
        for (_, sender) in &mut queue.waiting {
            if let Some(sender) = sender.take()
                && sender.send(Turn::Lead).is_ok()
            {
                return;
            }
        }
        // Nobody is waiting (or all went away): the next arrival leads and
        // takes whatever is still queued.
        queue.leading = false;
    }
}

impl MarkBatch {
    pub(crate) fn new(
        states: Arc<dyn SyncStateStore>,
        channels: Arc<dyn ChannelStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            queue: Mutex::default(),
            recorded: Mutex::default(),
            states,
            channels,
            clock,
        }
    }

    /// Queues `mark` and returns once a batch holding it is committed.
    pub(crate) async fn submit(&self, mark: Mark) -> Result<()> {
        let waiting = {
            let mut queue = lock(&self.queue);
            if queue.leading {
                let (sender, receiver) = oneshot::channel();
                queue.waiting.push((mark, Some(sender)));
                Some(receiver)
            } else {
                queue.leading = true;
                queue.waiting.push((mark, None));
                None
            }
        };
        if let Some(receiver) = waiting {
            match receiver.await {
                Ok(Turn::Done(result)) => return result,
                Ok(Turn::Lead) => {}
                Err(oneshot::Canceled) => {
                    return Err(Error::Storage(
                        "the batch holding this notification was abandoned".into(),
                    ));
                }
            }
        }
        let _leading = Leading(self);
        let batch = std::mem::take(&mut lock(&self.queue).waiting);
        let result = self.commit(batch.iter().map(|(mark, _)| mark)).await;
        for (_, sender) in batch {
            if let Some(sender) = sender {
                let _ = sender.send(Turn::Done(result.clone()));
            }
        }
        result
    }

    async fn commit(&self, marks: impl Iterator<Item = &Mark>) -> Result<()> {
        let mut calendars = BTreeSet::new();
        let mut numbers: BTreeMap<&ChannelId, u64> = BTreeMap::new();
        for mark in marks {
            if mark.dirty {
                calendars.insert(&mark.calendar_id);
            }
            let number = numbers.entry(&mark.channel_id).or_insert(0);
            *number = (*number).max(mark.message_number);
        }
        // Every mark in the batch arrived before this instant, so a sync
        // that starts after it covers them all.
        let now = self.clock.now();
        for calendar in calendars {
            // A read is cheap; the mark is a contended write on one row.
            let covered = self
                .states
                .sync_state(calendar)
                .await?
                .is_some_and(|state| state.covers_new_change(now));
            if !covered {
                self.states.mark_dirty(calendar, false).await?;
            }
        }
        for (channel, number) in numbers {
            let recorded_lately = lock(&self.recorded)
                .get(channel)
                .is_some_and(|at| now.signed_duration_since(*at) < NOTIFICATION_RECORD_INTERVAL);
            if recorded_lately {
                continue;
            }
            self.channels
                .record_notification(channel, number, now)
                .await?;
            let mut recorded = lock(&self.recorded);
            if recorded.len() >= CHANNEL_CACHE_CAP {
                recorded.clear();
            }
            recorded.insert(channel.clone(), now);
        }
        Ok(())
    }
}
