//! The state every connection shares.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::{AuthSettings, AuthState};
use crate::clock::SimClock;
use crate::counters::CounterBook;
use crate::faults::FaultBook;
use crate::model::World;
use crate::scenario::{ControllerSettings, SessionClock};

/// Locks a mutex; a panic while it was held cannot leave these plain-data states half-written
/// in a way that matters to a simulator, so poisoning is ignored rather than spread.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Resolves once the watched flag equals `value` (or its sender is gone). Returns nothing, so
/// no lock guard of the channel is held across a later `.await` in a `select!`.
pub(crate) async fn until(rx: &mut watch::Receiver<bool>, value: bool) {
    let _ = rx.wait_for(|v| *v == value).await;
}

/// One listener: a controller node.
pub(crate) struct Node {
    /// The bound address (the real port when 0 was asked for).
    pub addr: SocketAddr,
    /// `https://host:port`.
    pub url: String,
    /// Whether it accepts connections.
    pub up: watch::Sender<bool>,
    /// Its accept loop, while up.
    pub task: Mutex<Option<JoinHandle<()>>>,
}

/// The simulator's state.
pub(crate) struct Shared {
    pub clock: SimClock,
    pub settings: Mutex<ControllerSettings>,
    pub world: Mutex<World>,
    pub auth: Mutex<AuthState>,
    pub faults: Mutex<FaultBook>,
    pub counters: Mutex<CounterBook>,
    pub nodes: Vec<Node>,
    pub shutdown: watch::Sender<bool>,
    pub tls: Arc<rustls::ServerConfig>,
    /// Serialises node up/down changes.
    pub node_change: tokio::sync::Mutex<()>,
    /// When the simulator started, for sessions on the real clock.
    pub real_start: std::time::Instant,
}

impl Shared {
    pub fn settings(&self) -> ControllerSettings {
        lock(&self.settings).clone()
    }

    pub fn auth_settings(&self) -> AuthSettings {
        let s = lock(&self.settings);
        AuthSettings {
            basic_auth: s.basic_auth,
            basic_auth_disabled_status: s.behaviour.basic_auth_disabled_status,
            idle_timeout: s.session_idle_timeout_seconds as f64,
            max_age: s.session_max_age_seconds as f64,
            require_referer: s.behaviour.require_referer,
        }
    }

    /// The time sessions are measured in: real seconds since start, or simulated seconds.
    pub fn session_now(&self) -> f64 {
        match lock(&self.settings).session_clock {
            SessionClock::Real => self.real_start.elapsed().as_secs_f64(),
            SessionClock::Simulated => self.clock.elapsed(),
        }
    }

    /// Whether node `i` is up.
    pub fn is_up(&self, i: usize) -> bool {
        self.nodes.get(i).is_some_and(|n| *n.up.borrow())
    }

    /// The leader: the first node that is up.
    pub fn leader(&self) -> Option<usize> {
        (0..self.nodes.len()).find(|&i| self.is_up(i))
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}
