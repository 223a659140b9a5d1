//! The webhook's group commit, kept off the database where it can be:
//! [`MarkBatch`] commits the dirty marks of all notifications waiting at
//! one moment together, so N concurrent notifications cost at most one
//! write per calendar instead of N (channels come from memory too, see
//! [`super::channel_cache`]).
//!
//! It keeps the webhook's promise: a notification is answered 2xx only
//! once its calendar's dirty mark is committed, or a sync that starts after
//! it arrived is already due (the same check as one at a time).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use futures_channel::oneshot;

use crate::error::{Error, Result};
use crate::ids::{CalendarId, ChannelId};
use crate::ports::{ChannelStore, Clock, SyncStateStore};

use super::channel_cache::CHANNEL_CACHE_CAP;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One notification's share of a batch.
pub(crate) struct Mark {
    pub calendar_id: CalendarId,
    pub channel_id: ChannelId,
    pub message_number: u64,
    /// `false` for a channel's opening `sync` message: recorded, not marked.
    pub dirty: bool,
}

/// How far replicas' clocks may disagree (NTP keeps them within a few
/// milliseconds): a rest read from the store is trusted until this long
/// before it ends, since a replica whose clock runs ahead may lease the
/// calendar that much early.
const REPLICA_CLOCK_SKEW: chrono::Duration = chrono::Duration::milliseconds(100);

/// How often a channel's last notification is written during a burst: it
/// is for reporting, and replays are caught in memory meanwhile.
const NOTIFICATION_RECORD_INTERVAL: chrono::Duration = chrono::Duration::seconds(1);

/// What a waiting notification hears.
enum Turn {
    /// Its batch was committed (or failed): whether a worker should be
    /// woken (`false`: the syncs already coming need none).
    Done(Result<bool>),
    /// It leads this batch, which holds its own mark.
    Lead(Vec<Queued>),
}

/// A queued mark and who waits for it: `None` for the leader's own mark
/// (it reads the result directly) and for a mark whose waiter went away
/// (the batch holding it still commits it).
type Queued = (Mark, Option<oneshot::Sender<Turn>>);

/// Batches committed at once. Against a database across the network a
/// commit is mostly waiting for round trips, so a second batch in flight
/// keeps the webhook busy meanwhile (measured: 2 beat 1 and 4). Batches
/// are independent (marks and records are idempotent), and every mark is
/// in exactly one: a batch is always taken whole from the queue, under its
/// lock, by the leader whose own mark it holds.
const LEADERS: usize = 2;

#[derive(Default)]
struct Queue {
    waiting: Vec<Queued>,
    /// Batches being committed now, at most [`LEADERS`].
    leaders: usize,
}

impl Queue {
    /// A leader is done: everything queued becomes the next batch, led by
    /// its first waiter still there. With none (all went away, or nothing
    /// is queued), the marks stay queued for the next arrival to lead.
    fn hand_on(&mut self) {
        let mut batch = std::mem::take(&mut self.waiting);
        let mut at = 0;
        while at < batch.len() {
            if let Some(sender) = batch[at].1.take() {
                // A failed send hands the batch back (as the `Lead` sent).
                let Err(Turn::Lead(back)) = sender.send(Turn::Lead(batch)) else {
                    return;
                };
                batch = back;
            }
            at += 1;
        }
        batch.append(&mut self.waiting);
        self.waiting = batch;
        self.leaders = self.leaders.saturating_sub(1);
    }
}

/// Group commit of dirty marks. No background task: an arrival leads when
/// fewer than [`LEADERS`] batches are in flight, and commits everything
/// queued (its own mark included); a leader done answers its batch and
/// hands what queued meanwhile to the first of those waiting.
pub(crate) struct MarkBatch {
    queue: Mutex<Queue>,
    /// When each channel's last notification was last written.
    recorded: Mutex<HashMap<ChannelId, DateTime<Utc>>>,
    /// Calendars read resting and dirty, and when their rest ends: a mark
    /// is covered without reading again until shortly before (see
    /// [`crate::sync::SyncState::resting_until`]).
    resting: Mutex<HashMap<CalendarId, DateTime<Utc>>>,
    states: Arc<dyn SyncStateStore>,
    channels: Arc<dyn ChannelStore>,
    clock: Arc<dyn Clock>,
}

/// The leader's batch. Dropped before it is answered (the leader's request
/// went away mid-commit), the batch goes back to the front of the queue,
/// its waiters still waiting, and the lead passes on: one client leaving
/// fails no one else's notification.
struct Leading<'a> {
    batch: &'a MarkBatch,
    taken: Vec<Queued>,
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        let mut queue = lock(&self.batch.queue);
        let mut back = std::mem::take(&mut self.taken);
        back.append(&mut queue.waiting);
        queue.waiting = back;
        queue.hand_on();
    }
}

/// A waiter's receiver. Dropped (its request went away) after a batch was
/// handed to it but before it took it, it puts the batch back and passes
/// the lead on, so no batch waits for a leader that is gone.
struct Waiter<'a> {
    batch: &'a MarkBatch,
    receiver: Option<oneshot::Receiver<Turn>>,
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        if let Some(mut receiver) = self.receiver.take() {
            receiver.close();
            if let Ok(Some(Turn::Lead(mut batch))) = receiver.try_recv() {
                let mut queue = lock(&self.batch.queue);
                batch.append(&mut queue.waiting);
                queue.waiting = batch;
                queue.hand_on();
            }
        }
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
            resting: Mutex::default(),
            states,
            channels,
            clock,
        }
    }

    /// Queues `mark` and returns once a batch holding it is committed:
    /// whether a worker should be woken (`false` when a live sync will
    /// follow up, or this replica already woke one for the calendar's
    /// rest).
    pub(crate) async fn submit(&self, mark: Mark) -> Result<bool> {
        let led = {
            let mut queue = lock(&self.queue);
            if queue.leaders >= LEADERS {
                let (sender, receiver) = oneshot::channel();
                queue.waiting.push((mark, Some(sender)));
                Err(receiver)
            } else {
                // Taken in the same critical section as the push: no other
                // leader can take this mark into a batch of its own.
                queue.leaders += 1;
                queue.waiting.push((mark, None));
                Ok(std::mem::take(&mut queue.waiting))
            }
        };
        let taken = match led {
            Ok(taken) => taken,
            Err(receiver) => {
                let mut waiter = Waiter {
                    batch: self,
                    receiver: Some(receiver),
                };
                let turn = match waiter.receiver.as_mut() {
                    Some(receiver) => receiver.await,
                    None => Err(oneshot::Canceled),
                };
                // Answered: nothing left for the guard to pass on.
                waiter.receiver = None;
                match turn {
                    Ok(Turn::Done(result)) => return result,
                    Ok(Turn::Lead(batch)) => batch,
                    Err(oneshot::Canceled) => {
                        return Err(Error::Storage(
                            "the batch holding this notification was abandoned".into(),
                        ));
                    }
                }
            }
        };
        let mut leading = Leading { batch: self, taken };
        let result = self
            .commit(leading.taken.iter().map(|(mark, _)| mark))
            .await;
        for (_, sender) in std::mem::take(&mut leading.taken) {
            if let Some(sender) = sender {
                let _ = sender.send(Turn::Done(result.clone()));
            }
        }
        result
    }

    async fn commit(&self, marks: impl Iterator<Item = &Mark>) -> Result<bool> {
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
        let mut wake = false;
        for calendar in calendars {
            let rest_seen = lock(&self.resting).get(calendar).copied();
            if rest_seen.is_some_and(|ends| now < ends - REPLICA_CLOCK_SKEW) {
                continue;
            }
            // A read is cheap; the mark is a contended write on one row.
            let state = self.states.sync_state(calendar).await?;
            let covered = state
                .as_ref()
                .is_some_and(|state| state.covers_new_change(now));
            let syncing = state
                .as_ref()
                .is_some_and(|state| state.lease_owner.is_some());
            let rest = state.and_then(|state| state.resting_until(now));
            if let Some(ends) = rest {
                let mut resting = lock(&self.resting);
                if resting.len() >= CHANNEL_CACHE_CAP {
                    resting.clear();
                }
                resting.insert(calendar.clone(), ends);
            }
            if !covered {
                self.states.mark_dirty(calendar, false).await?;
            }
            // A worker here must know of every dirty calendar nobody is
            // syncing: whoever marked it may not have woken one (another
            // replica, an embedder's call), and a rest needs a worker
            // waiting for its end. A live sync follows up by itself, and a
            // rest this replica already woke for needs nothing more.
            wake |= !covered || !(syncing || (rest.is_some() && rest == rest_seen));
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
        Ok(wake)
    }
}
