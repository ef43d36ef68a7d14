//! The Avi controller client of avi-autoscaler.
#![warn(missing_docs)]

mod client;
mod config;
mod error;
mod poller;
pub mod prometheus;
mod query;
mod stats;
mod tls;

pub use config::{ConnectionConfig, Credentials, TlsConfig};
pub use error::Error;
pub use poller::{Poller, PollerSettings};
pub use query::{EntitySelector, MetricQuery, Sample};
pub use stats::{PollerStats, RequestEvent, RequestKind, RequestObserver};
