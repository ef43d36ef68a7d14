//! A local stand-in for the Kubernetes API server, for tests and the demo.
#![warn(missing_docs)]

pub mod schema;
