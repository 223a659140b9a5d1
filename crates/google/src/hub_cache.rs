//! The per-principal hubs, kept while in use: an entry not used for
//! [`HUB_IDLE`] is dropped (with its authenticator and token cache), and at
//! most [`HUB_CAP`] are kept. Both are checked on access, so no background
//! task is needed: idle entries are swept at most once per quarter of the
//! idle time, and the least recently used one goes when a new one would
//! pass the cap. A dropped hub is built again on its next use (one token
//! request); calls still holding it finish with it.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// How long an unused principal's hub is kept.
pub(crate) const HUB_IDLE: Duration = Duration::from_secs(60 * 60);

/// The most hubs kept at once, a backstop for many principals used within
/// [`HUB_IDLE`] of each other.
pub(crate) const HUB_CAP: usize = 1024;

/// Values by key with their last use; every method takes the time, so
/// tests choose it.
#[derive(Debug)]
pub(crate) struct IdleCache<K, V> {
    entries: HashMap<K, (V, Instant)>,
    idle: Duration,
    cap: usize,
    /// When idle entries were last swept.
    swept: Option<Instant>,
}

impl<K: Eq + Hash + Clone, V: Clone> IdleCache<K, V> {
    pub(crate) fn new(idle: Duration, cap: usize) -> Self {
        Self {
            entries: HashMap::new(),
            idle,
            cap: cap.max(1),
            swept: None,
        }
    }

    /// The value for `key`, marked used at `now`; `None` if absent or idle
    /// for [`Self::idle`] or longer (it is then dropped).
    pub(crate) fn get(&mut self, key: &K, now: Instant) -> Option<V> {
        self.sweep(now);
        let (value, used) = self.entries.get_mut(key)?;
        if now.saturating_duration_since(*used) >= self.idle {
            self.entries.remove(key);
            return None;
        }
        *used = now;
        Some(value.clone())
    }

    /// Keeps `value` for `key`, used at `now`. At the cap, the least
    /// recently used other entry is dropped first.
    pub(crate) fn insert(&mut self, key: K, value: V, now: Instant) {
        self.sweep(now);
        if !self.entries.contains_key(&key) && self.entries.len() >= self.cap {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(key, (value, now));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }

    /// Drops every entry idle for [`Self::idle`], at most once per quarter
    /// of it (the scan is over every entry).
    fn sweep(&mut self, now: Instant) {
        let due = self
            .swept
            .is_none_or(|at| now.saturating_duration_since(at) >= self.idle / 4);
        if !due {
            return;
        }
        self.swept = Some(now);
        let idle = self.idle;
        self.entries
            .retain(|_, (_, used)| now.saturating_duration_since(*used) < idle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(3600);

    fn minutes(n: u64) -> Duration {
        Duration::from_secs(60 * n)
    }

    #[test]
    fn an_entry_in_use_stays_and_an_idle_one_is_dropped_on_access() {
        let t0 = Instant::now();
        let mut cache = IdleCache::new(IDLE, 10);
        cache.insert("ann", 1, t0);
        // Used every 50 minutes: never idle for an hour.
        assert_eq!(cache.get(&"ann", t0 + minutes(50)), Some(1));
        assert_eq!(cache.get(&"ann", t0 + minutes(100)), Some(1));
        // A sweep at 150 minutes finds ann used 50 minutes ago.
        cache.insert("bob", 2, t0 + minutes(150));
        assert_eq!(cache.len(), 2);
        // An hour after its last use ann is gone, though no sweep is due.
        assert_eq!(cache.get(&"ann", t0 + minutes(161)), None);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get(&"bob", t0 + minutes(161)), Some(2));
    }

    #[test]
    fn idle_entries_are_swept_when_another_is_used() {
        let t0 = Instant::now();
        let mut cache = IdleCache::new(IDLE, 10);
        cache.insert("ann", 1, t0);
        cache.insert("bob", 2, t0 + minutes(30));
        assert_eq!(cache.get(&"bob", t0 + minutes(70)), Some(2));
        assert_eq!(cache.len(), 1, "ann, unused for 70 minutes, was swept");
        assert_eq!(cache.get(&"ann", t0 + minutes(71)), None);
    }

    #[test]
    fn sweeps_run_at_most_once_per_quarter_of_the_idle_time() {
        let t0 = Instant::now();
        let mut cache = IdleCache::new(IDLE, 10);
        cache.insert("ann", 1, t0);
        cache.insert("bob", 2, t0 + minutes(59));
        // A sweep at 59 minutes: ann is not idle yet.
        assert_eq!(cache.len(), 2);
        // At 61 minutes ann is idle, but the next sweep is due at 74.
        assert_eq!(cache.get(&"bob", t0 + minutes(61)), Some(2));
        assert_eq!(cache.len(), 2, "no scan between sweeps");
        assert_eq!(cache.get(&"bob", t0 + minutes(74)), Some(2));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn at_the_cap_the_least_recently_used_entry_goes() {
        let t0 = Instant::now();
        let mut cache = IdleCache::new(IDLE, 2);
        cache.insert("ann", 1, t0);
        cache.insert("bob", 2, t0 + minutes(1));
        // Ann used again: bob is now the least recently used.
        assert_eq!(cache.get(&"ann", t0 + minutes(2)), Some(1));
        cache.insert("cy", 3, t0 + minutes(3));
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&"bob", t0 + minutes(4)), None);
        assert_eq!(cache.get(&"ann", t0 + minutes(4)), Some(1));
        assert_eq!(cache.get(&"cy", t0 + minutes(4)), Some(3));
        // Replacing an existing key evicts nothing.
        cache.insert("cy", 4, t0 + minutes(5));
        assert_eq!(cache.get(&"ann", t0 + minutes(5)), Some(1));
        assert_eq!(cache.get(&"cy", t0 + minutes(5)), Some(4));
    }

    #[test]
    fn a_clock_that_goes_back_keeps_entries() {
        let t1 = Instant::now() + minutes(10);
        let mut cache = IdleCache::new(IDLE, 10);
        cache.insert("ann", 1, t1);
        assert_eq!(cache.get(&"ann", t1 - minutes(5)), Some(1));
    }
}
