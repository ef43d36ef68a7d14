//! Listeners (one per controller node), TLS connections and the request pipeline: counters,
//! faults, then the admin or controller API.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

use crate::counters::endpoint_key;
use crate::http::{Request, Response, SimBody};
use crate::state::{Shared, lock, until};
use crate::{SimHandle, admin, api};

/// Largest request body read (login forms and admin JSON are tiny).
const MAX_BODY: usize = 1 << 20;
/// A client that opens a connection and never finishes the TLS handshake is dropped after this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts accepting connections on node `i`.
///
/// A plain function around the async loop: a node brought back up from inside a request
/// (an admin call) spawns this loop again, and the explicit boxed type breaks that cycle for
/// the compiler's `Send` check.
pub(crate) fn spawn_accept_loop(
    shared: Arc<Shared>,
    i: usize,
    listener: TcpListener,
) -> tokio::task::JoinHandle<()> {
    let fut: std::pin::Pin<Box<dyn Future<Output = ()> + Send>> =
        Box::pin(accept_loop(shared, i, listener));
    tokio::spawn(fut)
}

/// Accepts connections on node `i` until it goes down or the simulator stops.
async fn accept_loop(shared: Arc<Shared>, i: usize, listener: TcpListener) {
    let mut up = shared.nodes[i].up.subscribe();
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(connection(shared.clone(), i, stream));
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(node = i, error = &error as &dyn std::error::Error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = until(&mut up, false) => break,
            _ = until(&mut shutdown, true) => break,
        }
    }
}

/// Resolves when node `i` goes down or the simulator stops.
async fn interrupted(shared: &Shared, i: usize) {
    let mut up = shared.nodes[i].up.subscribe();
    let mut shutdown = shared.shutdown.subscribe();
    tokio::select! {
        _ = until(&mut up, false) => {}
        _ = until(&mut shutdown, true) => {}
    }
}

async fn connection(shared: Arc<Shared>, i: usize, stream: TcpStream) {
    let acceptor = tokio_rustls::TlsAcceptor::from(shared.tls.clone());
    let tls = tokio::select! {
        r = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => match r {
            Ok(Ok(tls)) => tls,
            _ => return,
        },
        _ = interrupted(&shared, i) => return,
    };
    let svc_shared = shared.clone();
    let service = service_fn(move |req| serve(svc_shared.clone(), i, req));
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(tls), service);
    tokio::select! {
        _ = conn => {}
        // A node going down cuts its open connections, as a crashed controller would.
        _ = interrupted(&shared, i) => {}
    }
}

/// Waits `ms` real milliseconds; `false` if the node went down or the simulator stopped first.
async fn wait(shared: &Shared, i: usize, ms: u64) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(ms)) => true,
        _ = interrupted(shared, i) => false,
    }
}

async fn serve(
    shared: Arc<Shared>,
    node: usize,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<SimBody>, io::Error> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Ok(to_hyper(
                Response::error(413, "Request body too large"),
                false,
            ));
        }
    };
    let req = Request::new(parts, body, node);
    if req.path == "/_sim" || req.path.starts_with("/_sim/") {
        let resp = admin::handle(&SimHandle::from_shared(shared.clone()), &req).await;
        return Ok(to_hyper(resp, false));
    }

    let endpoint = endpoint_key(req.method.as_str(), &req.path);
    let user_agent = req
        .headers
        .get(hyper::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    lock(&shared.counters).request(node, &endpoint, user_agent);
    let triggered = lock(&shared.faults).trigger(&req.path, node, shared.clock.elapsed());
    let aborted = |why: &str| {
        lock(&shared.counters).aborted(node, &endpoint);
        tracing::debug!(node, endpoint = %endpoint, why, "request aborted");
        io::Error::other(why.to_string())
    };
    if triggered.latency_ms > 0 && !wait(&shared, node, triggered.latency_ms).await {
        return Err(aborted("node down during latency"));
    }
    if let Some(ms) = triggered.hang_ms {
        wait(&shared, node, ms).await;
        return Err(aborted("hang fault"));
    }
    let mut resp = match &triggered.error {
        Some((status, message)) => Response::error(*status, message.clone())
            .with_header("avi_api_version", &lock(&shared.settings).version),
        None => api::handle(&shared, &req, triggered.empty),
    };
    if triggered.malformed {
        resp = resp.malformed();
    }
    if triggered.truncated {
        resp = resp.truncated();
    }
    if triggered.reset {
        lock(&shared.counters).aborted(node, &endpoint);
    } else {
        lock(&shared.counters).response(node, &endpoint, resp.status.as_u16());
    }
    tracing::debug!(node, method = %req.method, path = %req.path, status = resp.status.as_u16(), "request");
    if let Some(bytes) = triggered.huge_body {
        let mut out = hyper::Response::new(SimBody::huge(resp.body, bytes));
        *out.status_mut() = resp.status;
        *out.headers_mut() = resp.headers;
        return Ok(out);
    }
    Ok(to_hyper(resp, triggered.reset))
}

fn to_hyper(resp: Response, reset: bool) -> hyper::Response<SimBody> {
    let body = if reset {
        SimBody::reset(resp.body)
    } else {
        SimBody::full(resp.body)
    };
    let mut out = hyper::Response::new(body);
    *out.status_mut() = resp.status;
    *out.headers_mut() = resp.headers;
    out
}
