//! The load model: users → connections → the values Avi reports for its buckets.
//!
//! One pure model shared by `avi-autoscaler simulate` and the avi-sim controller simulator, so
//! both give the same answer for the same load:
//!
//! - [`users`]: users over time as a piecewise-linear function with jumps ([`Polyline`]), built
//!   from a Locust-style ramp or a step series, integrated exactly;
//! - [`members`]: a pool's members over time ([`Membership`]), following the replicas;
//! - [`bucket`]: the connections split among the members present at each instant, averaged
//!   over a bucket that is visible only once it has closed ([`closed_bucket`], [`Bucket`]);
//! - [`spec`]: the `load` keys of a scenario file ([`LoadSpec`]).
//!
//! No I/O, no clock: times are seconds since the scenario start, given by the caller.

pub mod bucket;
pub mod members;
pub mod spec;
pub mod users;

pub use bucket::{Bucket, Traffic, Usage, client_conns, closed_bucket};
pub use members::{Member, Membership};
pub use spec::{InvalidLoad, LoadSpec, Per, SeriesPoint};
pub use users::{Polyline, Vertex, ramp, ramp_to, steps};
