//! The operator's own HTTP endpoints: `/metrics` on the metrics address, `/healthz` and
//! `/readyz` on the health address (one server when both addresses are the same).
//!
//! `/healthz` answers 200 while the process runs: an Avi outage shows in conditions and metrics,
//! never as a failing liveness probe that would restart a healthy operator. `/readyz` answers
//! 200 once every AviAutoscaler watch has listed its objects.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Router, extract::State, http::StatusCode, http::header, response::IntoResponse, routing::get,
};
use tokio::net::TcpListener;

use crate::{readiness::ReadyFlag, shutdown::ShutdownSignal, telemetry::Metrics};

/// Shared state of the admin endpoints.
#[derive(Clone)]
pub struct AdminState {
    /// The metrics to serve.
    pub metrics: Arc<Metrics>,
    /// Whether the watches have synced.
    pub ready: ReadyFlag,
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AdminState>) -> (StatusCode, &'static str) {
    if state.ready.is_ready() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "watches not synced yet\n")
    }
}

fn metrics_routes() -> Router<AdminState> {
    Router::new().route("/metrics", get(metrics))
}

fn health_routes() -> Router<AdminState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// The bound admin listeners: one shared by every endpoint when the metrics and health
/// addresses are the same, one per address otherwise.
pub enum AdminListeners {
    /// `/metrics`, `/healthz` and `/readyz` on one address.
    Shared(TcpListener),
    /// `/metrics` on one address, `/healthz` and `/readyz` on another.
    Split {
        /// Serves `/metrics`.
        metrics: TcpListener,
        /// Serves `/healthz` and `/readyz`.
        health: TcpListener,
    },
}

/// The addresses the admin endpoints were bound to (port 0 is replaced by the port picked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdminAddrs {
    /// Where `/metrics` answers.
    pub metrics: SocketAddr,
    /// Where `/healthz` and `/readyz` answer.
    pub health: SocketAddr,
}

impl AdminListeners {
    /// Binds the admin listeners. Binding happens before anything else starts, so a port clash
    /// fails the start-up with a clear error instead of a silent missing endpoint.
    pub async fn bind(metrics_addr: SocketAddr, health_addr: SocketAddr) -> std::io::Result<Self> {
        if metrics_addr == health_addr {
            Ok(AdminListeners::Shared(
                TcpListener::bind(metrics_addr).await?,
            ))
        } else {
            Ok(AdminListeners::Split {
                metrics: TcpListener::bind(metrics_addr).await?,
                health: TcpListener::bind(health_addr).await?,
            })
        }
    }

    /// The addresses actually bound.
    pub fn addrs(&self) -> std::io::Result<AdminAddrs> {
        match self {
            AdminListeners::Shared(both) => {
                let addr = both.local_addr()?;
                Ok(AdminAddrs {
                    metrics: addr,
                    health: addr,
                })
            }
            AdminListeners::Split { metrics, health } => Ok(AdminAddrs {
                metrics: metrics.local_addr()?,
                health: health.local_addr()?,
            }),
        }
    }

    /// Serves the endpoints until `shutdown` is requested.
    pub async fn serve(self, state: AdminState, shutdown: ShutdownSignal) -> std::io::Result<()> {
        match self {
            AdminListeners::Shared(both) => {
                let routes = metrics_routes().merge(health_routes());
                serve_one(both, routes, state, shutdown).await
            }
            AdminListeners::Split { metrics, health } => {
                let metrics = serve_one(metrics, metrics_routes(), state.clone(), shutdown.clone());
                let health = serve_one(health, health_routes(), state, shutdown);
                // Both run until shutdown; the first failure is the answer.
                futures::try_join!(metrics, health).map(|_| ())
            }
        }
    }
}

async fn serve_one(
    listener: TcpListener,
    routes: Router<AdminState>,
    state: AdminState,
    shutdown: ShutdownSignal,
) -> std::io::Result<()> {
    axum::serve(listener, routes.with_state(state))
        .with_graceful_shutdown(shutdown.requested())
        .await
}

#[cfg(test)]
mod tests {
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpStream,
    };

    use super::*;
    use crate::{readiness::Readiness, shutdown::Shutdown};

    /// The status code of `GET path` on `addr`.
    async fn status(addr: SocketAddr, path: &str) -> u16 {
        let mut stream = TcpStream::connect(addr).await.expect("connects");
        let request = format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("sends");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("reads");
        answer
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"))
    }

    fn localhost() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }

    #[tokio::test]
    async fn split_addresses_serve_their_own_endpoints_until_shutdown() {
        let listeners = AdminListeners::bind(localhost(), SocketAddr::from(([127, 0, 0, 2], 0)))
            .await
            .expect("binds");
        let addrs = listeners.addrs().expect("bound addresses");
        assert_ne!(addrs.metrics, addrs.health);
        let readiness = Readiness::new();
        let mut watch = readiness.add_watch();
        let state = AdminState {
            metrics: Arc::new(Metrics::new()),
            ready: readiness.flag(),
        };
        readiness.all_watches_added();
        let shutdown = Shutdown::new();
        let server = tokio::spawn(listeners.serve(state, shutdown.signal()));

        assert_eq!(status(addrs.metrics, "/metrics").await, 200);
        assert_eq!(status(addrs.metrics, "/healthz").await, 404);
        assert_eq!(status(addrs.health, "/metrics").await, 404);
        assert_eq!(status(addrs.health, "/healthz").await, 200);
        assert_eq!(status(addrs.health, "/readyz").await, 503);
        watch.synced();
        assert_eq!(status(addrs.health, "/readyz").await, 200);

        shutdown.request();
        server
            .await
            .expect("the server task ends")
            .expect("the servers stop cleanly");
    }

    #[tokio::test]
    async fn one_address_serves_every_endpoint() {
        let listeners = AdminListeners::bind(localhost(), localhost())
            .await
            .expect("binds");
        assert!(matches!(listeners, AdminListeners::Shared(_)));
        let addrs = listeners.addrs().expect("bound address");
        assert_eq!(addrs.metrics, addrs.health);
        let readiness = Readiness::new();
        let state = AdminState {
            metrics: Arc::new(Metrics::new()),
            ready: readiness.flag(),
        };
        let shutdown = Shutdown::new();
        let server = tokio::spawn(listeners.serve(state, shutdown.signal()));
        for path in ["/metrics", "/healthz"] {
            assert_eq!(status(addrs.health, path).await, 200, "{path}");
        }
        assert_eq!(status(addrs.health, "/readyz").await, 503);
        shutdown.request();
        server
            .await
            .expect("the server task ends")
            .expect("the server stops cleanly");
    }
}
