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
use tokio::{net::TcpListener, sync::watch};

use crate::telemetry::Metrics;

/// Shared state of the admin endpoints.
#[derive(Clone)]
pub struct AdminState {
    /// The metrics to serve.
    pub metrics: Arc<Metrics>,
    /// True once the watches have synced.
    pub ready: watch::Receiver<bool>,
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
    if *state.ready.borrow() {
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

/// Binds the admin listeners. Binding happens before anything else starts, so a port clash
/// fails the start-up with a clear error instead of a silent missing endpoint.
pub async fn bind(
    metrics_addr: SocketAddr,
    health_addr: SocketAddr,
) -> std::io::Result<Vec<(TcpListener, bool, bool)>> {
    if metrics_addr == health_addr {
        Ok(vec![(TcpListener::bind(metrics_addr).await?, true, true)])
    } else {
        Ok(vec![
            (TcpListener::bind(metrics_addr).await?, true, false),
            (TcpListener::bind(health_addr).await?, false, true),
        ])
    }
}

/// Serves the bound listeners until `shutdown` turns true.
pub async fn serve(
    listeners: Vec<(TcpListener, bool, bool)>,
    state: AdminState,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut tasks = Vec::new();
    for (listener, with_metrics, with_health) in listeners {
        let mut router = Router::new();
        if with_metrics {
            router = router.merge(metrics_routes());
        }
        if with_health {
            router = router.merge(health_routes());
        }
        let app = router.with_state(state.clone());
        let mut shutdown = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = shutdown.wait_for(|s| *s).await;
                })
                .await
        }));
    }
    for t in tasks {
        t.await.map_err(std::io::Error::other)??;
    }
    Ok(())
}
