//! Channels served from memory on the webhook's hot path: [`ChannelCache`]
//! keeps what the store last said for a few seconds, and every channel
//! write this process makes goes through [`EvictingChannelStore`], which
//! evicts the channel at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};

use crate::channel::{ChannelStatus, WatchChannel, WatchGrant};
use crate::error::Result;
use crate::ids::ChannelId;
use crate::ports::ChannelStore;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How long a cached channel is trusted. Another replica's stop or renewal
/// reaches this one within it; meanwhile a stopped channel's notification
/// only costs a needless sync. This replica's own changes evict at once.
pub const CHANNEL_CACHE_TTL: chrono::Duration = chrono::Duration::seconds(5);
/// More live channels than any deployment has; past it the cache restarts.
pub(super) const CHANNEL_CACHE_CAP: usize = 100_000;

/// Channels by id, as last read from the store, with the highest message
/// number this replica has acknowledged for each.
#[derive(Default)]
pub struct ChannelCache {
    entries: Mutex<HashMap<ChannelId, Cached>>,
    /// Bumped by every eviction: a read that began before one is not
    /// cached, since it may predate the write that evicted.
    evictions: std::sync::atomic::AtomicU64,
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

    /// Where evictions stand, to pass to [`Self::put`] for a read begun now.
    pub(crate) fn evictions(&self) -> u64 {
        self.evictions.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Remembers a channel read since `evictions` was taken, unless a
    /// channel was evicted meanwhile. A pending one is not kept: its
    /// resource id and status are about to change.
    pub(crate) fn put(&self, channel: &WatchChannel, now: DateTime<Utc>, evictions: u64) {
        if channel.status == ChannelStatus::Pending {
            return;
        }
        let mut entries = lock(&self.entries);
        // Checked under the lock `forget` takes, so no eviction slips in
        // between this check and the insert.
        if self.evictions() != evictions {
            return;
        }
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
        let mut entries = lock(&self.entries);
        self.evictions
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        entries.remove(id);
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
