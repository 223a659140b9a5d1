//! Google's verdict on a write, awaited. A caller waits on the event; the
//! outbox worker wakes it as soon as it finishes one of the event's rows in
//! this process, and a row pushed by another replica (sharing the
//! database) is seen by re-reading the event every [`RECHECK`].

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_channel::oneshot;
use futures_util::future::{Either, select};

use crate::error::Result;
use crate::event::{Event, PushState};
use crate::ids::LocalEventId;
use crate::outbox::{OutboxState, PushFailure};

use super::EventService;

/// How often a waiting caller re-reads the event, for rows another replica
/// pushes; this process's own pushes wake it at once.
const RECHECK: Duration = Duration::from_millis(250);

/// What became of a write, as [`EventService::verdict`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteVerdict {
    /// Google applied the write; the event as it now is.
    Applied(Event),
    /// The event had been deleted at Google; the write was not applied
    /// (`event.push_note` says so).
    DeletedAtGoogle(Event),
    /// Google refused it. `conflict` when the refusal is a precondition
    /// failure (412) or `PushState::Conflict`.
    Refused {
        event: Event,
        reason: String,
        conflict: bool,
    },
    /// Still queued when `wait` ran out; the last error, if any.
    Pending {
        event: Event,
        last_error: Option<String>,
    },
}

impl WriteVerdict {
    /// The event as the verdict found it.
    pub fn event(&self) -> &Event {
        match self {
            Self::Applied(event)
            | Self::DeletedAtGoogle(event)
            | Self::Refused { event, .. }
            | Self::Pending { event, .. } => event,
        }
    }
}

/// Where an event stands: decided, or still waiting for Google.
enum Standing {
    Decided(WriteVerdict),
    Pending(Event),
}

impl EventService {
    /// Why the event's last write did not apply, if it did not: its note
    /// (deleted at Google, a conflict), or the last error of its unfinished
    /// outbox rows. `None` once it is synced without a note.
    pub async fn last_push_error(&self, event: &Event) -> Result<Option<String>> {
        Ok(self.last_failure(event).await?.map(|(error, _)| error))
    }

    /// [`EventService::last_push_error`] with the kind the row recorded
    /// (`None` for a note, and for rows written before kinds were stored).
    async fn last_failure(&self, event: &Event) -> Result<Option<(String, Option<PushFailure>)>> {
        if let Some(note) = &event.push_note {
            return Ok(Some((note.clone(), None)));
        }
        if event.push_state == PushState::Synced {
            return Ok(None);
        }
        let rows = self.outbox.outbox_for_event(event.id).await?;
        Ok(rows
            .into_iter()
            .rev()
            .filter(|row| row.state != OutboxState::Done)
            .find_map(|row| row.last_error.map(|error| (error, row.last_failure))))
    }

    /// Google's verdict on the event's queued write, waiting at most `wait`
    /// for it: answered as soon as this process's outbox worker finishes
    /// the event's rows, or within a quarter second of another replica's
    /// push (the event is re-read that often).
    /// Without a timer ([`EventService::with_wait_timer`], or the lease
    /// timer of [`EventService::with_lease`]) nothing can time a wait, so
    /// the verdict is where the event stands at once.
    pub async fn verdict(&self, event: &Event, wait: Duration) -> Result<WriteVerdict> {
        let Some(timer) = self.wait_timer.clone().or_else(|| self.timer.clone()) else {
            return self.final_verdict(event.id).await;
        };
        let mut deadline = timer.sleep(wait);
        loop {
            // Registered before the read: a push finishing after the read
            // still wakes this caller.
            let woken = self.waiters.register(event.id);
            let current = self.get(event.id).await?;
            if let Standing::Decided(verdict) = self.standing(current).await? {
                return Ok(verdict);
            }
            let recheck = timer.sleep(RECHECK);
            if let Either::Right((Either::Right(_), _)) =
                select(woken, select(recheck, &mut deadline)).await
            {
                return self.final_verdict(event.id).await;
            }
        }
    }

    /// Where the event stands now, a pending write included.
    async fn final_verdict(&self, id: LocalEventId) -> Result<WriteVerdict> {
        let current = self.get(id).await?;
        Ok(match self.standing(current).await? {
            Standing::Decided(verdict) => verdict,
            Standing::Pending(event) => WriteVerdict::Pending {
                last_error: self.last_push_error(&event).await?,
                event,
            },
        })
    }

    async fn standing(&self, current: Event) -> Result<Standing> {
        let verdict = match current.push_state {
            PushState::Pending => return Ok(Standing::Pending(current)),
            PushState::Synced if current.push_note.is_some() => {
                WriteVerdict::DeletedAtGoogle(current)
            }
            PushState::Synced => WriteVerdict::Applied(current),
            PushState::Conflict => WriteVerdict::Refused {
                reason: current.push_note.clone().unwrap_or_default(),
                event: current,
                conflict: true,
            },
            PushState::Failed => {
                let (reason, failure) = self
                    .last_failure(&current)
                    .await?
                    .unwrap_or_else(|| ("Google refused the change".into(), None));
                WriteVerdict::Refused {
                    event: current,
                    reason,
                    // A row without a kind (written before kinds were
                    // stored) is not taken for a conflict.
                    conflict: failure == Some(PushFailure::Conflict),
                }
            }
        };
        Ok(Standing::Decided(verdict))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The callers waiting on each event, shared by an [`EventService`]'s
/// clones. An entry lives only while its caller waits.
#[derive(Default)]
pub(super) struct Waiters {
    waiting: Mutex<WaitList>,
}

#[derive(Default)]
struct WaitList {
    next_ticket: u64,
    by_event: HashMap<LocalEventId, Vec<(u64, oneshot::Sender<()>)>>,
}

impl Waiters {
    fn register(self: &Arc<Self>, event: LocalEventId) -> Woken {
        let (sender, receiver) = oneshot::channel();
        let mut list = lock(&self.waiting);
        list.next_ticket += 1;
        let ticket = list.next_ticket;
        list.by_event
            .entry(event)
            .or_default()
            .push((ticket, sender));
        Woken {
            waiters: self.clone(),
            event,
            ticket,
            receiver,
        }
    }

    /// Wakes every caller waiting on `event`.
    pub(super) fn wake(&self, event: LocalEventId) {
        let woken = lock(&self.waiting).by_event.remove(&event);
        for (_, sender) in woken.into_iter().flatten() {
            // A caller that stopped waiting meanwhile needs no wake-up.
            let _ = sender.send(());
        }
    }
}

/// Resolves when the event is woken; leaves the list when dropped.
struct Woken {
    waiters: Arc<Waiters>,
    event: LocalEventId,
    ticket: u64,
    receiver: oneshot::Receiver<()>,
}

impl Future for Woken {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // A dropped sender (the list was cleared) counts as a wake-up too.
        Pin::new(&mut self.receiver).poll(cx).map(|_| ())
    }
}

impl Drop for Woken {
    fn drop(&mut self) {
        let mut list = lock(&self.waiters.waiting);
        if let Some(waiting) = list.by_event.get_mut(&self.event) {
            waiting.retain(|(ticket, _)| *ticket != self.ticket);
            if waiting.is_empty() {
                list.by_event.remove(&self.event);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiter_leaves_the_list_when_dropped_and_a_wake_empties_it() {
        let waiters = Arc::new(Waiters::default());
        let (a, b) = (LocalEventId::new(), LocalEventId::new());
        let first = waiters.register(a);
        let second = waiters.register(a);
        let other = waiters.register(b);
        drop(first);
        assert_eq!(lock(&waiters.waiting).by_event[&a].len(), 1);
        waiters.wake(a);
        assert!(!lock(&waiters.waiting).by_event.contains_key(&a));
        futures_executor::block_on(second);
        drop(other);
        assert!(lock(&waiters.waiting).by_event.is_empty());
    }
}
