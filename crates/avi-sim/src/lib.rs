//! avi-sim: an Avi controller simulator that speaks the controller's wire format.
//!
//! It serves, over HTTPS, what an Avi metrics client relies on: session login and basic auth,
//! tenants, inventory look-ups, the Prometheus-text metrics endpoint and the JSON metrics API,
//! with values from a load model (users over time, pool members that change at run time,
//! 300 s and 5 s aggregation buckets) on a simulated clock. Faults (errors, latency, hangs,
//! broken bodies, empty results, session expiry, a cluster node down) and request counters make
//! client behaviour testable.
//!
//! As a library:
//!
//! ```no_run
//! # async fn demo() -> Result<(), avi_sim::Error> {
//! use avi_sim::{FaultSpec, Scenario, Sim, SimConfig};
//!
//! let sim = Sim::start(SimConfig::new(Scenario::builtin("pw")).nodes(2).paused()).await?;
//! let (urls, ca) = (sim.urls(), sim.ca_pem().to_string());
//! let handle = sim.handle();
//! handle.advance(600.0).await?; // two 300 s buckets later
//! handle.set_pool_servers(avi_sim::SEED_POOL, 3)?;
//! handle.add_fault(FaultSpec::error(503, 2)).await?;
//! let calls = handle.counters().requests("GET /api/analytics/prometheus-metrics/pool");
//! sim.shutdown().await;
//! # let _ = (urls, ca, calls); Ok(()) }
//! ```
//!
//! As a binary: `avi-sim --help`; the crate README documents every flag, endpoint, scenario
//! field, admin endpoint and the choices made where the controller's behaviour is unknown.
#![warn(missing_docs)]

mod admin;
mod api;
mod auth;
pub mod clock;
mod counters;
pub mod faults;
mod http;
mod metrics_json;
pub mod model;
mod prometheus;
pub mod pyfloat;
pub mod scenario;
mod server;
mod sim;
mod state;
mod tls;

pub use clock::{ClockError, ClockReading};
pub use counters::{Counters, EndpointCount};
pub use faults::{ActiveFault, FaultKind, FaultSpec};
pub use jiff::Timestamp;
pub use scenario::{
    Behaviour, ControllerSettings, LoadSpec, PoolSpec, SEED_POOL, SEED_SE, SEED_VS, Scenario,
    ScenarioError, SeriesPoint, ServersSpec, ServiceEngineSpec, TenantSpec, User,
    VirtualServiceSpec,
};
pub use sim::{Error, RunningSim, Sim, SimConfig, SimHandle};
pub use tls::{TlsError, TlsSource};

/// The README's code blocks, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
