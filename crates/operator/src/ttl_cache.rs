//! A map whose entries expire: the operator's caches of Secret reads and discovery answers.
//!
//! An entry older than the cache's time to live is not returned, so the next caller reads
//! afresh and stores the new answer; a caller that knows an entry is stale (the controller
//! refused the credentials) removes it at once.

use std::{collections::HashMap, hash::Hash, sync::Mutex, time::Duration};

use tokio::time::Instant;

/// Values by key, each usable for `ttl` after it was stored.
pub struct TtlCache<K, V> {
    ttl: Duration,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    /// An empty cache whose entries last `ttl`.
    pub fn new(ttl: Duration) -> Self {
        TtlCache {
            ttl,
            entries: Mutex::default(),
        }
    }

    /// The value stored for `key` less than the time to live ago.
    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().expect("cache lock poisoned");
        let (at, value) = entries.get(key)?;
        (at.elapsed() < self.ttl).then(|| value.clone())
    }

    /// Stores `value` for `key` from now on.
    pub fn insert(&self, key: K, value: V) {
        self.entries
            .lock()
            .expect("cache lock poisoned")
            .insert(key, (Instant::now(), value));
    }

    /// Keeps only the entries whose key `keep` accepts and that have not expired, so keys
    /// nobody asks for any more do not stay in memory.
    pub fn retain(&self, keep: impl Fn(&K) -> bool) {
        let ttl = self.ttl;
        self.entries
            .lock()
            .expect("cache lock poisoned")
            .retain(|k, (at, _)| at.elapsed() < ttl && keep(k));
    }

    /// How many entries are held (expired ones included until the next `retain`).
    #[cfg(test)]
    pub fn entry_count(&self) -> usize {
        self.entries.lock().expect("cache lock poisoned").len()
    }

    /// Forgets `key`, so the next caller reads afresh.
    pub fn remove(&self, key: &K) {
        self.entries
            .lock()
            .expect("cache lock poisoned")
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_entry_lasts_its_time_to_live() {
        let cache = TtlCache::new(Duration::from_secs(30));
        assert_eq!(cache.get(&"a"), None);
        cache.insert("a", 1);
        assert_eq!(cache.get(&"a"), Some(1));
        tokio::time::advance(Duration::from_millis(29_999)).await;
        assert_eq!(cache.get(&"a"), Some(1));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(cache.get(&"a"), None);
        // Storing again starts a new lifetime.
        cache.insert("a", 2);
        assert_eq!(cache.get(&"a"), Some(2));
    }

    #[tokio::test(start_paused = true)]
    async fn retain_drops_unwanted_and_expired_entries() {
        let cache = TtlCache::new(Duration::from_secs(30));
        cache.insert("a", 1);
        tokio::time::advance(Duration::from_secs(20)).await;
        cache.insert("b", 2);
        cache.insert("c", 3);
        cache.retain(|k| *k != "c");
        assert_eq!(cache.entry_count(), 2);
        tokio::time::advance(Duration::from_secs(10)).await;
        cache.retain(|_| true);
        assert_eq!(cache.entry_count(), 1, "the expired entry is dropped");
        assert_eq!(cache.get(&"b"), Some(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_removed_entry_is_gone_at_once() {
        let cache = TtlCache::new(Duration::from_secs(30));
        cache.insert("a", 1);
        cache.insert("b", 2);
        cache.remove(&"a");
        assert_eq!(cache.get(&"a"), None);
        assert_eq!(cache.get(&"b"), Some(2));
    }
}
