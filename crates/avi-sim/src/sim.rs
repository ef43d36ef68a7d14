//! Starting, controlling and stopping a simulator: [`Sim::start`], [`RunningSim`],
//! [`SimHandle`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::AuthState;
use crate::clock::{ClockError, ClockReading, SimClock, unix_seconds};
use crate::counters::{CounterBook, Counters};
use crate::faults::{ActiveFault, DueEvent, FaultBook, FaultSpec};
use crate::model::World;
use crate::scenario::{Behaviour, LoadSpec, Scenario, ScenarioError, User};
use crate::server::spawn_accept_loop;
use crate::state::{Node, Shared, lock};
use crate::tls::{TlsError, TlsSource, material};

/// How often due events (scheduled faults, node recoveries) are checked, in real time.
const EVENT_TICK: Duration = Duration::from_millis(100);

/// What to start.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Addresses to listen on, one per controller node, in order (port 0: a free port).
    pub listen: Vec<SocketAddr>,
    /// The controller to simulate.
    pub scenario: Scenario,
    /// The server certificate.
    pub tls: TlsSource,
    /// Where to write the CA certificate (PEM). `None`: a file in a fresh temporary directory,
    /// removed when the simulator stops.
    pub ca_out: Option<PathBuf>,
    /// Extra DNS names (or IP addresses) for a generated server certificate, for clients that
    /// reach the simulator by a name such as a Kubernetes Service's `avi-sim.avi-sim.svc`.
    pub extra_names: Vec<String>,
}

impl Default for SimConfig {
    /// The built-in controller ([`Scenario::builtin`] with password `admin`) on one free port
    /// of 127.0.0.1, with a generated certificate.
    fn default() -> Self {
        Self::new(Scenario::builtin("admin"))
    }
}

impl SimConfig {
    /// `scenario` on one free port of 127.0.0.1, with a generated certificate.
    pub fn new(scenario: Scenario) -> Self {
        Self {
            listen: vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 0))],
            scenario,
            tls: TlsSource::Generate,
            ca_out: None,
            extra_names: Vec::new(),
        }
    }

    /// Listens on `n` free ports of 127.0.0.1: a cluster of `n` nodes.
    pub fn nodes(mut self, n: usize) -> Self {
        self.listen = vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 0)); n];
        self
    }

    /// Listens on these addresses.
    pub fn listen(mut self, addrs: impl IntoIterator<Item = SocketAddr>) -> Self {
        self.listen = addrs.into_iter().collect();
        self
    }

    /// Starts with the simulated clock stopped at the scenario's start: tests move it with
    /// [`SimHandle::advance`].
    pub fn paused(mut self) -> Self {
        self.scenario.controller.paused = true;
        self
    }
}

/// Why the simulator could not start, or a run-time change was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The scenario is not usable.
    #[error("invalid scenario")]
    Scenario(#[from] ScenarioError),
    /// No listen address was given.
    #[error("no address to listen on")]
    NoListener,
    /// A listener could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// TLS could not be set up.
    #[error("cannot set up TLS")]
    Tls(#[from] TlsError),
    /// The CA certificate could not be written.
    #[error("cannot write the CA certificate to {path}")]
    WriteCa {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A clock change was refused.
    #[error("clock change refused")]
    Clock(#[from] ClockError),
    /// No such pool, node, fault or user.
    #[error("{0}")]
    NotFound(String),
    /// A value given at run time is not acceptable.
    #[error("{field}: {message}")]
    Invalid {
        /// The field, for example `count` or `load.spawnRate`.
        field: String,
        /// What is wrong.
        message: String,
    },
}

impl Error {
    fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Entry point: `Sim::start(config)`.
#[derive(Debug)]
pub struct Sim;

impl Sim {
    /// Validates the scenario, binds every listener, generates (or loads) the certificate,
    /// writes the CA file and starts serving. Returns once every listener accepts
    /// connections.
    pub async fn start(config: SimConfig) -> Result<RunningSim, Error> {
        let scenario = config.scenario;
        scenario.validate()?;
        if config.listen.is_empty() {
            return Err(Error::NoListener);
        }
        for (i, f) in scenario.faults.iter().enumerate() {
            f.validate(Some(config.listen.len()))
                .map_err(|(field, message)| ScenarioError {
                    field: format!("faults[{i}].{field}"),
                    message,
                })?;
        }
        let hosts: Vec<IpAddr> = config.listen.iter().map(SocketAddr::ip).collect();
        let tls = material(&config.tls, &hosts, &config.extra_names)?;

        let mut listeners = Vec::new();
        for addr in &config.listen {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| Error::Bind {
                    addr: *addr,
                    source,
                })?;
            let bound = listener.local_addr().map_err(|source| Error::Bind {
                addr: *addr,
                source,
            })?;
            listeners.push((bound, listener));
        }

        let (ca_path, temp_dir) = match &config.ca_out {
            Some(path) => (path.clone(), None),
            None => {
                let dir = temp_dir();
                (dir.join("ca.pem"), Some(dir))
            }
        };
        if let Some(dir) = &temp_dir {
            std::fs::create_dir_all(dir).map_err(|source| Error::WriteCa {
                path: ca_path.clone(),
                source,
            })?;
        }
        std::fs::write(&ca_path, &tls.ca_pem).map_err(|source| Error::WriteCa {
            path: ca_path.clone(),
            source,
        })?;

        let c = &scenario.controller;
        let start_unix = match c.start_time {
            Some(t) => unix_seconds(t).floor() as i64,
            None => {
                let now = unix_seconds(Timestamp::now()).floor() as i64;
                let p = c.metrics_period_seconds as i64;
                now - now.rem_euclid(p)
            }
        };
        let clock = SimClock::new(start_unix, c.time_scale, c.paused)?;
        let mut faults = FaultBook::default();
        for f in &scenario.faults {
            faults.add(f.clone(), 0.0);
        }
        let nodes = listeners
            .iter()
            .map(|(addr, _)| Node {
                addr: *addr,
                url: url_of(*addr),
                up: watch::channel(true).0,
                task: Mutex::new(None),
            })
            .collect::<Vec<_>>();
        let shared = Arc::new(Shared {
            clock,
            settings: Mutex::new(scenario.controller.clone()),
            world: Mutex::new(World::new(&scenario, listeners.len())),
            auth: Mutex::new(AuthState::new(scenario.users.clone())),
            faults: Mutex::new(faults),
            counters: Mutex::new(CounterBook::new(listeners.len())),
            nodes,
            shutdown: watch::channel(false).0,
            tls: tls.config,
            node_change: tokio::sync::Mutex::new(()),
            real_start: std::time::Instant::now(),
        });
        for (i, (_, listener)) in listeners.into_iter().enumerate() {
            let task = spawn_accept_loop(shared.clone(), i, listener);
            *lock(&shared.nodes[i].task) = Some(task);
        }
        let handle = SimHandle { shared };
        handle.process_events().await;
        let ticker = tokio::spawn(tick(handle.clone()));
        Ok(RunningSim {
            handle,
            ca_pem: tls.ca_pem,
            ca_path,
            temp_dir,
            ticker: Some(ticker),
        })
    }
}

/// A fresh directory for the CA file.
fn temp_dir() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "avi-sim-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// `https://host:port`, with loopback standing in for an unspecified address.
fn url_of(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("https://{}", SocketAddr::new(ip, addr.port()))
}

async fn tick(handle: SimHandle) {
    let mut shutdown = handle.shared.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(EVENT_TICK) => handle.process_events().await,
            _ = crate::state::until(&mut shutdown, true) => break,
        }
    }
}

/// A running simulator. Dropping it stops it (listeners close at once); [`RunningSim::shutdown`]
/// also waits for that.
#[derive(Debug)]
pub struct RunningSim {
    handle: SimHandle,
    ca_pem: String,
    ca_path: PathBuf,
    temp_dir: Option<PathBuf>,
    ticker: Option<JoinHandle<()>>,
}

impl RunningSim {
    /// A handle to control the simulator; clone it freely.
    pub fn handle(&self) -> SimHandle {
        self.handle.clone()
    }

    /// The bound addresses, one per node, in `listen` order.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.handle.addrs()
    }

    /// Base URLs (`https://127.0.0.1:PORT`), one per node.
    pub fn urls(&self) -> Vec<String> {
        self.handle.urls()
    }

    /// The first node's base URL.
    pub fn url(&self) -> String {
        self.handle.urls().remove(0)
    }

    /// The CA certificate (PEM) that clients should trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Where the CA certificate was written.
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// Stops serving and waits until every listener is closed.
    pub async fn shutdown(mut self) {
        self.handle.shared.shutdown.send_replace(true);
        if let Some(t) = self.ticker.take() {
            let _ = t.await;
        }
        for node in &self.handle.shared.nodes {
            let task = lock(&node.task).take();
            if let Some(task) = task {
                let _ = task.await;
            }
        }
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        self.handle.shared.shutdown.send_replace(true);
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        for node in &self.handle.shared.nodes {
            if let Some(task) = lock(&node.task).take() {
                task.abort();
            }
        }
        if let Some(dir) = &self.temp_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Controls a running simulator in-process: the clock, load, pool members, faults, nodes,
/// users, behaviours and request counters. Everything here is also reachable over HTTP under
/// `/_sim/` (see the README).
#[derive(Clone)]
pub struct SimHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("urls", &self.urls())
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    pub(crate) fn from_shared(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// The bound addresses, one per node.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.shared.nodes.iter().map(|n| n.addr).collect()
    }

    /// Base URLs, one per node.
    pub fn urls(&self) -> Vec<String> {
        self.shared.nodes.iter().map(|n| n.url.clone()).collect()
    }

    // ----- clock -----

    /// The clock's state.
    pub fn clock(&self) -> ClockReading {
        self.shared.clock.reading()
    }

    /// Simulated seconds since the start.
    pub fn elapsed(&self) -> f64 {
        self.shared.clock.elapsed()
    }

    /// The simulated time.
    pub fn now(&self) -> Timestamp {
        self.shared.clock.now()
    }

    /// Moves the simulated clock forward and runs the events that became due.
    pub async fn advance(&self, seconds: f64) -> Result<f64, Error> {
        let t = self.shared.clock.advance(seconds)?;
        self.process_events().await;
        Ok(t)
    }

    /// Sets the simulated clock to `elapsed` seconds after the start (never backwards) and runs
    /// the events that became due.
    pub async fn set_elapsed(&self, elapsed: f64) -> Result<f64, Error> {
        let t = self.shared.clock.set_elapsed(elapsed)?;
        self.process_events().await;
        Ok(t)
    }

    /// Changes the time scale (simulated seconds per real second; 0 freezes).
    pub fn set_time_scale(&self, scale: f64) -> Result<(), Error> {
        Ok(self.shared.clock.set_scale(scale)?)
    }

    /// Stops or restarts the clock.
    pub fn set_paused(&self, paused: bool) {
        self.shared.clock.set_paused(paused);
    }

    // ----- pools and load -----

    fn pool_index(&self, pool: &str) -> Result<usize, Error> {
        lock(&self.shared.world)
            .find_pool(pool, None)
            .map_err(Error::NotFound)
    }

    /// Makes pool `pool` (name or UUID) have `count` members from now on; returns the member
    /// addresses (`ip:port`). New members get fresh addresses; removal takes the newest.
    pub fn set_pool_servers(&self, pool: &str, count: u32) -> Result<Vec<String>, Error> {
        let i = self.pool_index(pool)?;
        let now = self.elapsed();
        let mut world = lock(&self.shared.world);
        world.pools[i].members.set_count(now, count);
        Ok(world.pools[i]
            .members
            .active_at(now)
            .map(|m| m.address())
            .collect())
    }

    /// The current member addresses of `pool`.
    pub fn pool_servers(&self, pool: &str) -> Result<Vec<String>, Error> {
        let i = self.pool_index(pool)?;
        let now = self.elapsed();
        Ok(lock(&self.shared.world).pools[i]
            .members
            .active_at(now)
            .map(|m| m.address())
            .collect())
    }

    /// The users of `pool` now.
    pub fn pool_users(&self, pool: &str) -> Result<f64, Error> {
        let i = self.pool_index(pool)?;
        let now = self.elapsed();
        Ok(lock(&self.shared.world).pools[i].users.value_at(now))
    }

    /// Moves the users of `pool` from their current number to `users`, at `spawn_rate` per
    /// second (at once if `None`), from now on. Completed buckets keep their values.
    pub fn set_pool_users(
        &self,
        pool: &str,
        users: f64,
        spawn_rate: Option<f64>,
    ) -> Result<(), Error> {
        if !(users.is_finite() && users >= 0.0) {
            return Err(Error::invalid(
                "users",
                format!("must be >= 0, got {users}"),
            ));
        }
        if let Some(r) = spawn_rate
            && !(r.is_finite() && r > 0.0)
        {
            return Err(Error::invalid("spawnRate", format!("must be > 0, got {r}")));
        }
        let i = self.pool_index(pool)?;
        let now = self.elapsed();
        let mut world = lock(&self.shared.world);
        let p = &mut world.pools[i];
        let current = p.users.value_at(now);
        p.users
            .splice(now, &load_model::ramp_to(now, current, users, spawn_rate));
        Ok(())
    }

    /// Replaces the users of `pool` from now on with `load` (its times count from the
    /// scenario's start). `connsPerUser`, `requestsPerUserPerSecond` and `responseTimeMs` are
    /// fixed for a pool's life and must match the pool's.
    pub fn set_pool_load(&self, pool: &str, load: &LoadSpec) -> Result<(), Error> {
        load.validate()
            .map_err(|e| Error::invalid(format!("load.{}", e.field), e.message))?;
        let i = self.pool_index(pool)?;
        let now = self.elapsed();
        let mut world = lock(&self.shared.world);
        let p = &mut world.pools[i];
        let t = p.traffic;
        for (field, given, current) in [
            ("connsPerUser", load.conns_per_user, t.conns_per_user),
            (
                "requestsPerUserPerSecond",
                load.requests_per_user_per_second,
                t.requests_per_user_per_second,
            ),
            ("responseTimeMs", load.response_time_ms, t.response_time_ms),
        ] {
            if given != current {
                return Err(Error::invalid(
                    format!("load.{field}"),
                    format!("is fixed for the pool's life ({current}); got {given}"),
                ));
            }
        }
        p.users.splice(now, &load.users());
        Ok(())
    }

    // ----- faults -----

    /// Installs a fault; returns its id. An event fault due now happens before this returns.
    pub async fn add_fault(&self, spec: FaultSpec) -> Result<u64, Error> {
        spec.validate(Some(self.shared.nodes.len()))
            .map_err(|(field, message)| Error::Invalid { field, message })?;
        let id = lock(&self.shared.faults).add(spec, self.elapsed());
        self.process_events().await;
        Ok(id)
    }

    /// Removes a fault; `false` if there was none with that id.
    pub fn remove_fault(&self, id: u64) -> bool {
        lock(&self.shared.faults).remove(id)
    }

    /// Removes every fault and pending event.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Installed faults and pending events.
    pub fn faults(&self) -> Vec<ActiveFault> {
        lock(&self.shared.faults).list(self.elapsed())
    }

    /// Ends every session now; returns how many there were.
    pub fn expire_sessions(&self) -> usize {
        lock(&self.shared.auth).expire_all()
    }

    /// Live sessions.
    pub fn session_count(&self) -> usize {
        lock(&self.shared.auth).session_count()
    }

    // ----- nodes -----

    /// Whether node `node` accepts connections.
    pub fn is_node_up(&self, node: usize) -> bool {
        self.shared.is_up(node)
    }

    /// Takes a node down (its listener closes, so connections are refused, and its open
    /// connections are cut) or brings it back up on the same address. Returns once done.
    pub async fn set_node_up(&self, node: usize, up: bool) -> Result<(), Error> {
        let shared = &self.shared;
        let Some(n) = shared.nodes.get(node) else {
            return Err(Error::NotFound(format!(
                "no node {node}: there are {} (indices from 0)",
                shared.nodes.len()
            )));
        };
        let _serial = shared.node_change.lock().await;
        let current = *n.up.borrow();
        if current == up || shared.is_shutting_down() {
            return Ok(());
        }
        if up {
            let listener = TcpListener::bind(n.addr)
                .await
                .map_err(|source| Error::Bind {
                    addr: n.addr,
                    source,
                })?;
            n.up.send_replace(true);
            let task = spawn_accept_loop(shared.clone(), node, listener);
            *lock(&n.task) = Some(task);
        } else {
            n.up.send_replace(false);
            let task = lock(&n.task).take();
            if let Some(task) = task {
                // The accept loop ends on the signal; awaiting it makes sure the socket is
                // closed before this returns.
                let _ = task.await;
            }
        }
        tracing::info!(node, up, "node state changed");
        Ok(())
    }

    /// Runs the scheduled events that are due.
    pub(crate) async fn process_events(&self) {
        let due = lock(&self.shared.faults).take_due_events(self.elapsed());
        for event in due {
            let result = match event {
                DueEvent::ExpireSessions => {
                    self.expire_sessions();
                    Ok(())
                }
                DueEvent::NodeDown(n) => self.set_node_up(n, false).await,
                DueEvent::NodeUp(n) => self.set_node_up(n, true).await,
            };
            if let Err(error) = result {
                tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "scheduled event failed"
                );
            }
        }
    }

    // ----- counters -----

    /// The request counters.
    pub fn counters(&self) -> Counters {
        lock(&self.shared.counters).snapshot()
    }

    /// Sets every counter back to zero.
    pub fn reset_counters(&self) {
        lock(&self.shared.counters).reset();
    }

    // ----- users and behaviour -----

    /// Adds a user or replaces one (a new password; existing sessions stay valid).
    pub fn set_user(&self, user: User) -> Result<(), Error> {
        if user.username.is_empty() {
            return Err(Error::invalid("username", "must not be empty"));
        }
        if let Some(list) = &user.tenants {
            let world = lock(&self.shared.world);
            for (j, t) in list.iter().enumerate() {
                if world.tenant(t).is_none() {
                    return Err(Error::invalid(
                        format!("tenants[{j}]"),
                        format!("unknown tenant {t:?}"),
                    ));
                }
            }
        }
        lock(&self.shared.auth).set_user(user);
        Ok(())
    }

    /// Removes a user and their sessions; `false` if there was none.
    pub fn remove_user(&self, username: &str) -> bool {
        lock(&self.shared.auth).remove_user(username)
    }

    /// User names.
    pub fn usernames(&self) -> Vec<String> {
        lock(&self.shared.auth).usernames()
    }

    /// Switches basic auth on or off.
    pub fn set_basic_auth(&self, on: bool) {
        lock(&self.shared.settings).basic_auth = on;
    }

    /// Sets the session idle timeout (simulated seconds, 0 = never).
    pub fn set_session_idle_timeout(&self, seconds: u64) {
        lock(&self.shared.settings).session_idle_timeout_seconds = seconds;
    }

    /// Chooses the clock session lifetimes run on. Sessions' times were kept on the old
    /// clock, so a change ends every session.
    pub fn set_session_clock(&self, clock: crate::scenario::SessionClock) {
        let changed = {
            let mut s = lock(&self.shared.settings);
            std::mem::replace(&mut s.session_clock, clock) != clock
        };
        if changed {
            self.expire_sessions();
        }
    }

    /// The current answers to the reference's open questions.
    pub fn behaviour(&self) -> Behaviour {
        lock(&self.shared.settings).behaviour.clone()
    }

    /// Replaces the answers to the reference's open questions.
    pub fn set_behaviour(&self, behaviour: Behaviour) -> Result<(), Error> {
        let mut check = Scenario::default();
        check.controller.behaviour = behaviour.clone();
        check
            .validate()
            .map_err(|e| Error::invalid(e.field, e.message))?;
        lock(&self.shared.settings).behaviour = behaviour;
        Ok(())
    }

    /// The controller settings in force (version, auth, session timeouts, periods, behaviours).
    pub fn settings(&self) -> crate::scenario::ControllerSettings {
        self.shared.settings()
    }

    /// A summary of everything, as `GET /_sim/state` shows it.
    pub fn state(&self) -> serde_json::Value {
        let now = self.elapsed();
        let world = lock(&self.shared.world).clone();
        let settings = self.shared.settings();
        let pools: Vec<serde_json::Value> = world
            .pools
            .iter()
            .map(|p| {
                serde_json::json!({
                    "name": p.name, "uuid": p.uuid, "tenant": p.tenant, "realtime": p.realtime,
                    "users": p.users.value_at(now),
                    "servers": p.members.active_at(now).map(|m| m.address()).collect::<Vec<_>>(),
                })
            })
            .collect();
        serde_json::json!({
            "clock": self.clock(),
            "nodes": self.nodes_json(),
            "tenants": world.tenants,
            "pools": pools,
            "virtualServices": world.vss.iter().map(|v| serde_json::json!({
                "name": v.name, "uuid": v.uuid, "tenant": v.tenant, "realtime": v.realtime,
                "pools": v.pools.iter().map(|&i| world.pools[i].name.clone()).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "serviceEngines": world.ses.iter().map(|s| serde_json::json!({
                "name": s.name, "uuid": s.uuid, "tenant": s.tenant, "realtime": s.realtime,
                "virtualServices": s.vss.iter().map(|&i| world.vss[i].name.clone()).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "users": self.usernames(),
            "sessions": self.session_count(),
            "faults": self.faults(),
            "controller": settings,
        })
    }

    pub(crate) fn nodes_json(&self) -> serde_json::Value {
        let world = lock(&self.shared.world);
        let leader = self.shared.leader();
        serde_json::Value::Array(
            self.shared
                .nodes
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    serde_json::json!({
                        "index": i, "name": world.nodes[i], "url": n.url,
                        "up": self.shared.is_up(i), "leader": leader == Some(i),
                    })
                })
                .collect(),
        )
    }

    pub(crate) fn find_pool_in(&self, key: &str, tenant: Option<&str>) -> Result<String, Error> {
        let world = lock(&self.shared.world);
        let i = world.find_pool(key, tenant).map_err(Error::NotFound)?;
        Ok(world.pools[i].uuid.clone())
    }
}
