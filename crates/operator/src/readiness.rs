//! Readiness: the operator is ready once every AviAutoscaler watch has listed its objects.
//!
//! [`Readiness`] hands one [`WatchSynced`] to each watch and turns ready when every one of them
//! has reported its first complete list. Counting starts with the set-up itself, so a watch that
//! syncs before the last one is added cannot make the process ready early; the set-up reports
//! with [`Readiness::all_watches_added`].
//!
//! Readiness is read off the watch streams (their first `InitDone`) rather than awaited with
//! `Store::wait_until_ready`, whose shared one-shot keeps only the last waiter's waker: with the
//! Controller also waiting on it, a second waiter may never wake.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use tokio::sync::watch;
use tracing::info;

/// Tracks the watches still to sync.
pub struct Readiness {
    shared: Arc<Shared>,
}

/// Held by one watch until its first complete list.
pub struct WatchSynced(Option<Arc<Shared>>);

/// Whether every watch has synced, for `/readyz`.
#[derive(Clone)]
pub struct ReadyFlag(watch::Receiver<bool>);

struct Shared {
    /// Watches not yet synced, plus one while watches are still being added.
    pending: AtomicUsize,
    ready: watch::Sender<bool>,
}

impl Shared {
    fn one_done(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.ready.send_replace(true);
            info!("watches synced");
        }
    }
}

impl Readiness {
    /// Not ready, with no watch added yet.
    pub fn new() -> Self {
        Readiness {
            shared: Arc::new(Shared {
                pending: AtomicUsize::new(1),
                ready: watch::Sender::new(false),
            }),
        }
    }

    /// The flag `/readyz` reads.
    pub fn flag(&self) -> ReadyFlag {
        ReadyFlag(self.shared.ready.subscribe())
    }

    /// Counts one more watch that must sync before the process is ready.
    pub fn add_watch(&self) -> WatchSynced {
        self.shared.pending.fetch_add(1, Ordering::AcqRel);
        WatchSynced(Some(self.shared.clone()))
    }

    /// Every watch has been added: the process is ready once they have all synced.
    pub fn all_watches_added(self) {
        self.shared.one_done();
    }
}

impl WatchSynced {
    /// Reports the watch's first complete list; later calls do nothing.
    pub fn synced(&mut self) {
        if let Some(shared) = self.0.take() {
            shared.one_done();
        }
    }
}

impl ReadyFlag {
    /// Whether every watch has synced.
    pub fn is_ready(&self) -> bool {
        *self.0.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_once_every_watch_has_synced() {
        let readiness = Readiness::new();
        let flag = readiness.flag();
        let mut a = readiness.add_watch();
        let mut b = readiness.add_watch();
        readiness.all_watches_added();
        assert!(!flag.is_ready());
        a.synced();
        // A second report of the same watch does not count for another.
        a.synced();
        assert!(!flag.is_ready());
        b.synced();
        assert!(flag.is_ready());
    }

    #[test]
    fn a_watch_synced_during_set_up_does_not_make_ready_early() {
        let readiness = Readiness::new();
        let flag = readiness.flag();
        let mut first = readiness.add_watch();
        first.synced();
        assert!(!flag.is_ready(), "the second watch is not even added yet");
        let mut second = readiness.add_watch();
        readiness.all_watches_added();
        assert!(!flag.is_ready());
        second.synced();
        assert!(flag.is_ready());
    }

    #[test]
    fn a_dropped_watch_never_counts_as_synced() {
        let readiness = Readiness::new();
        let flag = readiness.flag();
        let watch = readiness.add_watch();
        readiness.all_watches_added();
        drop(watch);
        assert!(!flag.is_ready());
    }
}
