//! Graceful shutdown: SIGTERM or SIGINT asks every part of the process to stop.
//!
//! One [`Shutdown`] per process; each part that must stop holds a [`ShutdownSignal`] and stops
//! taking new work once it resolves (the admin servers stop accepting, the controllers let
//! in-flight reconciles finish, the cleanup ticker returns).

use tokio::sync::watch;
use tracing::info;

/// The process's shutdown switch.
pub struct Shutdown {
    requested: watch::Sender<bool>,
}

/// A part's view of the switch: resolves once shutdown is requested.
#[derive(Clone)]
pub struct ShutdownSignal(watch::Receiver<bool>);

impl Shutdown {
    /// A switch not yet flipped.
    pub fn new() -> Self {
        Shutdown {
            requested: watch::Sender::new(false),
        }
    }

    /// A signal for one part of the process.
    pub fn signal(&self) -> ShutdownSignal {
        ShutdownSignal(self.requested.subscribe())
    }

    /// Asks every signal holder to stop.
    pub fn request(&self) {
        self.requested.send_replace(true);
    }

    /// Waits for SIGTERM or SIGINT, then asks every signal holder to stop.
    pub async fn on_signal(&self) {
        os_signal().await;
        info!("shutting down");
        self.request();
    }
}

impl ShutdownSignal {
    /// Resolves once shutdown is requested (at once if it already was).
    pub async fn requested(mut self) {
        // An error means the switch is gone, which only happens when the process is ending.
        let _ = self.0.wait_for(|requested| *requested).await;
    }
}

/// Resolves when SIGTERM or SIGINT arrives.
async fn os_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler cannot fail on Unix");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use std::{future::Future, pin::pin, task::Poll};

    use super::*;

    /// Whether `fut` is ready when polled once now.
    fn is_ready(fut: impl Future) -> bool {
        let mut fut = pin!(fut);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        matches!(fut.as_mut().poll(&mut cx), Poll::Ready(_))
    }

    #[test]
    fn a_signal_resolves_only_after_the_request() {
        let shutdown = Shutdown::new();
        let early = shutdown.signal();
        assert!(!is_ready(early.clone().requested()));
        shutdown.request();
        assert!(is_ready(early.requested()));
        // A signal taken after the request resolves at once.
        assert!(is_ready(shutdown.signal().requested()));
    }

    #[tokio::test]
    async fn a_waiting_signal_wakes_on_the_request() {
        let shutdown = Shutdown::new();
        let waiter = tokio::spawn(shutdown.signal().requested());
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        shutdown.request();
        waiter.await.expect("the waiter finishes");
    }
}
