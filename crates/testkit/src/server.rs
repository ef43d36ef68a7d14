//! The HTTP server: listener, connections, the request log and faults around the API, the
//! admin endpoints under `/_testkit/`, restarts and shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::api::{self, ApiCtx, Reply, ReplyBody};
use crate::clock;
use crate::direct::{Satisfied, Store, WaitTimeout};
use crate::faults::{
    Fault, FaultId, Faults, RequestInfo, RequestLog, RequestRecord, redact_secret_body,
};
use crate::kubeconfig;
use crate::store::Shared;
use crate::workloads::{self, WorkloadSim};

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The largest request body accepted (kube-apiserver's limit is 3 MiB per object; lists of
/// many objects are never sent).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// The path prefix of per-client URLs: `/_client/{marker}/api/…`.
const CLIENT_PREFIX: &str = "/_client/";

/// Settings of a stand-in.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// How many changes are kept for watches and paginated lists. A watch or continue token
    /// from a resourceVersion older than the oldest kept change gets `410 Gone` (`Expired`).
    pub watch_history: usize,
    /// How often a watch that asked for bookmarks (`allowWatchBookmarks=true`) gets one.
    pub bookmark_interval: Duration,
    /// How long a watch stays open when the client sends no `timeoutSeconds`.
    pub watch_timeout: Duration,
    /// The Deployment and StatefulSet controller simulation.
    pub workloads: WorkloadSim,
    /// How many requests the request log keeps (the oldest are dropped first).
    pub request_log_limit: usize,
    /// Admit custom objects as an API server before 1.36 does: `format: int32` is not
    /// enforced (`maxReplicas: 2147483648` is stored) and CEL rules are not evaluated. Other
    /// schema checks (types, `minimum`, `maximum`, enums, …) still apply.
    pub pre_1_36_validation: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            watch_history: 5_000,
            bookmark_interval: Duration::from_secs(1),
            watch_timeout: Duration::from_secs(1800),
            workloads: WorkloadSim::default(),
            request_log_limit: 100_000,
            pre_1_36_validation: false,
        }
    }
}

/// How [`KubeStandin::restart`] restarts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Restart {
    /// How long the port refuses connections before the server is back.
    pub down_for: Duration,
    /// Keep the change history, so watches resume from their resourceVersion. By default it
    /// is forgotten, as a real API server's watch cache is: resuming from an older
    /// resourceVersion then gets `410 Gone` and clients relist.
    pub keep_history: bool,
}

struct Inner {
    shared: Arc<Shared>,
    api: ApiCtx,
    log: RequestLog,
    faults: Faults,
    workloads: Arc<Mutex<WorkloadSim>>,
    addr: SocketAddr,
    server: Mutex<Option<JoinHandle<()>>>,
    sim: Mutex<Option<JoinHandle<()>>>,
}

/// A running Kubernetes API stand-in. Dropping it stops the server.
pub struct KubeStandin {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for KubeStandin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeStandin")
            .field("addr", &self.inner.addr)
            .finish()
    }
}

impl KubeStandin {
    /// Starts a stand-in on `config.listen`.
    pub async fn start(config: Config) -> std::io::Result<Self> {
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config.watch_history));
        shared.with(|s| s.pre_1_36_validation = config.pre_1_36_validation);
        let workloads = Arc::new(Mutex::new(config.workloads.clone()));
        let inner = Arc::new(Inner {
            api: ApiCtx {
                shared: shared.clone(),
                bookmark_interval: config.bookmark_interval,
                default_watch_timeout: config.watch_timeout,
            },
            shared: shared.clone(),
            log: RequestLog::new(config.request_log_limit),
            faults: Faults::default(),
            workloads: workloads.clone(),
            addr,
            server: Mutex::new(None),
            sim: Mutex::new(None),
        });
        *lock(&inner.sim) = Some(workloads::spawn(shared, workloads));
        *lock(&inner.server) = Some(spawn_server(inner.clone(), listener));
        Ok(Self { inner })
    }

    /// Starts a stand-in with the default [`Config`] on a free port of 127.0.0.1.
    pub async fn start_default() -> std::io::Result<Self> {
        Self::start(Config::default()).await
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// A URL that marks every request made through it with `client` in the request log
    /// (`http://127.0.0.1:PORT/_client/{client}`), to tell several clients apart.
    pub fn url_for(&self, client: &str) -> String {
        format!("{}{CLIENT_PREFIX}{client}", self.url())
    }

    /// A kubeconfig (YAML) for the stand-in, with `default` as the context's namespace.
    pub fn kubeconfig(&self) -> String {
        kubeconfig::kubeconfig_yaml(&self.url(), "default")
    }

    /// A kubeconfig whose requests carry the client marker `client` (see [`Self::url_for`]).
    pub fn kubeconfig_for(&self, client: &str) -> String {
        kubeconfig::kubeconfig_yaml(&self.url_for(client), "default")
    }

    /// Writes [`Self::kubeconfig`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig())
    }

    /// Writes [`Self::kubeconfig_for`] to `path`.
    pub fn write_kubeconfig_for(&self, path: &Path, client: &str) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_for(client))
    }

    /// Direct access to the objects.
    pub fn store(&self) -> Store {
        Store {
            shared: self.inner.shared.clone(),
        }
    }

    /// Every logged request, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.inner.log.since(0)
    }

    /// The logged requests with a sequence number above `seq`.
    pub fn requests_since(&self, seq: u64) -> Vec<RequestRecord> {
        self.inner.log.since(seq)
    }

    /// The sequence number of the last logged request (0 before the first).
    pub fn last_request_seq(&self) -> u64 {
        *self.inner.log.notify.borrow()
    }

    /// Empties the request log (sequence numbers keep increasing).
    pub fn clear_requests(&self) {
        self.inner.log.clear();
    }

    /// Waits until requests after `seq` have been logged and returns them.
    pub async fn next_requests(&self, seq: u64) -> Vec<RequestRecord> {
        let mut rx = self.inner.log.notify.subscribe();
        loop {
            let records = self.inner.log.since(seq);
            if !records.is_empty() {
                return records;
            }
            if rx.changed().await.is_err() {
                return Vec::new();
            }
        }
    }

    /// Waits until a logged request satisfies `pred`; returns the first that does.
    pub async fn wait_for_request(
        &self,
        mut pred: impl FnMut(&RequestRecord) -> bool,
        timeout: Duration,
    ) -> Result<RequestRecord, WaitTimeout> {
        let start = std::time::Instant::now();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = self.inner.log.notify.subscribe();
        loop {
            rx.mark_unchanged();
            if let Some(r) = self.inner.log.since(0).into_iter().find(|r| pred(r)) {
                return Ok(r);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(WaitTimeout {
                    waited: start.elapsed(),
                    context: self.context(),
                });
            }
            // Also re-check now and then: the predicate may look at state outside the log.
            let tick = (tokio::time::Instant::now() + Duration::from_millis(20)).min(deadline);
            tokio::select! {
                _ = rx.changed() => {}
                () = tokio::time::sleep_until(tick) => {}
            }
        }
    }

    /// Waits until `condition` holds on the store (`true` or `Some(x)`), re-checking after
    /// every change.
    pub async fn wait_for<T, R: Satisfied<T>>(
        &self,
        condition: impl FnMut(&Store) -> R,
        timeout: Duration,
    ) -> Result<T, WaitTimeout> {
        self.store()
            .wait_for(condition, timeout)
            .await
            .map_err(|mut e| {
                e.context = self.context();
                e
            })
    }

    fn context(&self) -> String {
        let recent: Vec<String> = self
            .requests()
            .iter()
            .rev()
            .take(10)
            .rev()
            .map(|r| format!("{} {} -> {}", r.method, r.uri(), r.status))
            .collect();
        format!(
            "{}; last requests: [{}]",
            self.store().summary(),
            recent.join("; ")
        )
    }

    /// Adds a fault; it applies to requests from now on.
    pub fn inject(&self, fault: Fault) -> FaultId {
        self.inner.faults.add(fault)
    }

    /// Removes a fault; returns whether it was still active.
    pub fn remove_fault(&self, id: FaultId) -> bool {
        self.inner.faults.remove(id)
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.inner.faults.clear();
    }

    /// The active faults (with their remaining `times`).
    pub fn faults(&self) -> Vec<(FaultId, Fault)> {
        self.inner.faults.list()
    }

    /// Switches the pre-1.36 admission on or off (see [`Config::pre_1_36_validation`]);
    /// objects already stored stay as they are.
    pub fn set_pre_1_36_validation(&self, on: bool) {
        self.inner.shared.with(|s| s.pre_1_36_validation = on);
    }

    /// Ends every open watch stream now; returns how many there were.
    pub fn drop_watches(&self) -> usize {
        self.store().drop_watches()
    }

    /// The workload controller simulation settings.
    pub fn workloads(&self) -> WorkloadSim {
        lock(&self.inner.workloads).clone()
    }

    /// Changes the workload controller simulation; applies to spec changes from now on.
    pub fn set_workloads(&self, sim: WorkloadSim) {
        *lock(&self.inner.workloads) = sim;
    }

    /// Restarts the server on the same port, keeping all objects: every connection (watches
    /// included) is cut, the port refuses connections for `down_for`, and unless
    /// `keep_history` the change history is forgotten.
    pub async fn restart(&self, opts: Restart) -> std::io::Result<()> {
        restart(&self.inner, opts).await
    }

    /// Stops the server and the workload controllers.
    pub async fn shutdown(self) {
        let server = lock(&self.inner.server).take();
        let sim = lock(&self.inner.sim).take();
        self.inner.shared.with(|s| s.drop_watches());
        for h in [server, sim].into_iter().flatten() {
            h.abort();
            let _ = h.await;
        }
    }
}

impl Drop for KubeStandin {
    fn drop(&mut self) {
        for h in [
            lock(&self.inner.server).take(),
            lock(&self.inner.sim).take(),
        ]
        .into_iter()
        .flatten()
        {
            h.abort();
        }
        self.inner.shared.with(|s| s.drop_watches());
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn restart(inner: &Arc<Inner>, opts: Restart) -> std::io::Result<()> {
    let old = lock(&inner.server).take();
    if let Some(h) = old {
        h.abort();
        let _ = h.await;
    }
    inner.shared.with(|s| {
        s.drop_watches();
        if !opts.keep_history {
            s.compact();
        }
    });
    if !opts.down_for.is_zero() {
        tokio::time::sleep(opts.down_for).await;
    }
    // The old listener is closed; its port can be bound again at once (SO_REUSEADDR), but
    // retry briefly in case the OS is slow to release it.
    let mut attempts = 0;
    let listener = loop {
        match TcpListener::bind(inner.addr).await {
            Ok(l) => break l,
            Err(e) if attempts < 40 => {
                attempts += 1;
                pause_before_rebinding(e).await;
            }
            Err(e) => return Err(e),
        }
    };
    *lock(&inner.server) = Some(spawn_server(inner.clone(), listener));
    Ok(())
}

/// Waits a little before binding the port again; the error is the last attempt's.
async fn pause_before_rebinding(_e: std::io::Error) {
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Spawns the accept loop. Its future is boxed because the admin restart endpoint, which it
/// serves, spawns it again (a cycle of opaque future types otherwise).
fn spawn_server(inner: Arc<Inner>, listener: TcpListener) -> JoinHandle<()> {
    let fut: std::pin::Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(serve(inner, listener));
    tokio::spawn(fut)
}

async fn serve(inner: Arc<Inner>, listener: TcpListener) {
    // Dropping the set (when this task is aborted) aborts every connection.
    let mut conns = JoinSet::new();
    loop {
        let accepted = listener.accept().await;
        while conns.try_join_next().is_some() {}
        let Ok((stream, _peer)) = accepted else {
            // Out of file descriptors or similar: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let inner = inner.clone();
        conns.spawn(async move {
            let io = TokioIo::new(stream);
            let svc = service_fn(move |req| {
                let inner = inner.clone();
                async move { handle(inner, req).await }
            });
            let _ = http1::Builder::new().serve_connection(io, svc).await;
        });
    }
}

fn split_client(path: &str) -> (Option<String>, String) {
    if let Some(rest) = path.strip_prefix(CLIENT_PREFIX) {
        let (marker, tail) = rest.split_once('/').unwrap_or((rest, ""));
        return (Some(marker.to_owned()), format!("/{tail}"));
    }
    (None, path.to_owned())
}

fn full(status: u16, content_type: &str, body: Bytes) -> Response<Body> {
    let mut r = Response::new(Full::new(body).boxed_unsync());
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}

fn to_response(reply: Reply) -> Response<Body> {
    let mut resp = match reply.body {
        ReplyBody::Full(b) => full(reply.status, &reply.content_type, b),
        ReplyBody::Stream(rx) => {
            let stream = futures::stream::unfold(rx, |mut rx| async move {
                rx.recv()
                    .await
                    .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
            });
            let mut r = Response::new(StreamBody::new(stream).boxed_unsync());
            *r.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
            if let Ok(v) = http::HeaderValue::from_str(&reply.content_type) {
                r.headers_mut().insert(http::header::CONTENT_TYPE, v);
            }
            r
        }
    };
    for (k, v) in reply.headers {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            http::HeaderValue::from_str(&v),
        ) {
            resp.headers_mut().append(k, v);
        }
    }
    resp
}

async fn handle(
    inner: Arc<Inner>,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    let (parts, body) = req.into_parts();
    let (client, path) = split_client(parts.uri.path());
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            let e = crate::error::ApiError::new(
                413,
                "RequestEntityTooLarge",
                "the request body is too large",
            );
            return Ok(to_response(Reply::error(&e)));
        }
    };
    if path == "/_testkit" || path.starts_with("/_testkit/") {
        return Ok(admin(&inner, &parts.method, &path, &query, &body).await);
    }
    let header = |name: http::header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let req = api::Req {
        method: parts.method.clone(),
        path: path.clone(),
        query: form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect(),
        content_type: header(http::header::CONTENT_TYPE).unwrap_or_default(),
        accept: header(http::header::ACCEPT).unwrap_or_default(),
        user_agent: header(http::header::USER_AGENT).unwrap_or_default(),
        body,
        server_address: header(http::header::HOST).unwrap_or_else(|| inner.addr.to_string()),
    };
    let watch = req.is_watch();
    let verdict = inner.faults.evaluate(&RequestInfo {
        method: req.method.as_str(),
        path: &req.path,
        watch,
        client: client.as_deref(),
        user_agent: &req.user_agent,
    });
    if !verdict.delay.is_zero() {
        tokio::time::sleep(verdict.delay).await;
    }
    let text = if req.content_type.starts_with(crate::protobuf::MEDIA_TYPE) {
        // Logged as the JSON it decodes to, so assertions need not parse protobuf.
        crate::protobuf::decode(&req.body)
            .map(|v| v.to_string())
            .unwrap_or_else(|_| format!("<protobuf, {} bytes>", req.body.len()))
    } else {
        String::from_utf8_lossy(&req.body).into_owned()
    };
    let mut record = RequestRecord {
        seq: 0,
        time: clock::now_micro_time(),
        method: req.method.to_string(),
        path: req.path.clone(),
        query,
        content_type: header(http::header::CONTENT_TYPE),
        accept: header(http::header::ACCEPT),
        user_agent: header(http::header::USER_AGENT),
        client,
        body: if req.path.contains("/secrets") && !text.is_empty() {
            redact_secret_body(&text)
        } else {
            text
        },
        status: 0,
        watch,
        injected: false,
    };
    if verdict.reset {
        record.injected = true;
        inner.log.push(record);
        return Err(std::io::Error::other(
            "connection reset by an injected fault",
        ));
    }
    let reply = match verdict.error {
        Some(e) => {
            record.injected = true;
            Reply::error(&e)
        }
        None => api::handle(&inner.api, &req),
    };
    record.status = reply.status;
    inner.log.push(record);
    Ok(to_response(reply))
}

fn admin_json(status: u16, v: &Value) -> Response<Body> {
    full(status, "application/json", Bytes::from(v.to_string()))
}

fn admin_error(status: u16, msg: &str) -> Response<Body> {
    admin_json(status, &json!({"error": msg}))
}

/// The settings of the workload simulation as the admin endpoint shows them.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WorkloadSettings {
    enabled: Option<bool>,
    status_delay_ms: Option<u64>,
    ready_delay_ms: Option<u64>,
}

async fn admin(
    inner: &Arc<Inner>,
    method: &http::Method,
    path: &str,
    query: &str,
    body: &Bytes,
) -> Response<Body> {
    let q = |k: &str| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.into_owned())
    };
    let segs: Vec<&str> = path
        .trim_end_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .skip(1)
        .collect();
    match (method.as_str(), segs.as_slice()) {
        ("GET", ["requests"]) => {
            let since = q("since").and_then(|s| s.parse().ok()).unwrap_or(0);
            admin_json(200, &json!(inner.log.since(since)))
        }
        ("DELETE", ["requests"]) => {
            inner.log.clear();
            admin_json(200, &json!({"cleared": true}))
        }
        ("GET", ["faults"]) => {
            let list: Vec<Value> = inner
                .faults
                .list()
                .into_iter()
                .map(|(id, f)| json!({"id": id.0, "fault": f}))
                .collect();
            admin_json(200, &json!(list))
        }
        ("POST", ["faults"]) => match serde_json::from_slice::<Fault>(body) {
            Ok(f) if f.status.is_none() && f.delay_ms.is_none() && !f.reset => {
                admin_error(400, "a fault needs status, delayMs or reset")
            }
            Ok(f) if f.status.is_some_and(|c| !(400..=599).contains(&c)) => {
                admin_error(400, "status must be an HTTP error code (400 to 599)")
            }
            Ok(f) => admin_json(201, &json!({"id": inner.faults.add(f).0})),
            Err(e) => admin_error(400, &format!("invalid fault: {e}")),
        },
        ("DELETE", ["faults"]) => {
            inner.faults.clear();
            admin_json(200, &json!({"cleared": true}))
        }
        ("DELETE", ["faults", id]) => match id.parse::<u64>() {
            Ok(n) if inner.faults.remove(FaultId(n)) => admin_json(200, &json!({"removed": n})),
            Ok(n) => admin_error(404, &format!("no fault {n}")),
            Err(_) => admin_error(400, &format!("invalid fault id {id:?}")),
        },
        ("GET", ["validation"]) => {
            let on = inner.shared.with(|s| s.pre_1_36_validation);
            admin_json(200, &json!({"pre136": on}))
        }
        ("PUT", ["validation"]) => match serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("pre136").and_then(Value::as_bool))
        {
            Some(on) => {
                inner.shared.with(|s| s.pre_1_36_validation = on);
                admin_json(200, &json!({"pre136": on}))
            }
            None => admin_error(400, "expected {\"pre136\": true|false}"),
        },
        ("POST", ["watches", "drop"]) => {
            let n = inner.shared.with(|s| s.drop_watches());
            admin_json(200, &json!({"dropped": n}))
        }
        ("POST", ["compact"]) => {
            let rv = inner.shared.with(|s| {
                s.compact();
                s.resource_version()
            });
            admin_json(200, &json!({"resourceVersion": rv.to_string()}))
        }
        ("POST", ["restart"]) => {
            let opts = Restart {
                down_for: Duration::from_millis(
                    q("downMs").and_then(|s| s.parse().ok()).unwrap_or(0),
                ),
                keep_history: q("keepHistory").as_deref() == Some("true"),
            };
            let inner = inner.clone();
            tokio::spawn(async move {
                // Let this answer reach the client before its connection is cut.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let _ = restart(&inner, opts).await;
            });
            admin_json(202, &json!({"restarting": true}))
        }
        ("GET", ["workloads"]) => {
            let w = lock(&inner.workloads).clone();
            admin_json(
                200,
                &json!(WorkloadSettings {
                    enabled: Some(w.enabled),
                    status_delay_ms: Some(
                        w.status_delay.as_millis().try_into().unwrap_or(u64::MAX)
                    ),
                    ready_delay_ms: Some(w.ready_delay.as_millis().try_into().unwrap_or(u64::MAX)),
                }),
            )
        }
        ("PUT", ["workloads"]) => match serde_json::from_slice::<WorkloadSettings>(body) {
            Ok(s) => {
                let mut w = lock(&inner.workloads);
                if let Some(e) = s.enabled {
                    w.enabled = e;
                }
                if let Some(ms) = s.status_delay_ms {
                    w.status_delay = Duration::from_millis(ms);
                }
                if let Some(ms) = s.ready_delay_ms {
                    w.ready_delay = Duration::from_millis(ms);
                }
                admin_json(200, &json!({"enabled": w.enabled}))
            }
            Err(e) => admin_error(400, &format!("invalid settings: {e}")),
        },
        ("GET", ["state"]) => {
            let (rv, watches, counts) = inner
                .shared
                .with(|s| (s.resource_version(), s.watch_count(), s.counts()));
            let objects: serde_json::Map<String, Value> = counts
                .into_iter()
                .map(|(k, n)| (k.trim_start_matches('/').to_owned(), json!(n)))
                .collect();
            admin_json(
                200,
                &json!({"resourceVersion": rv.to_string(), "watches": watches, "objects": objects}),
            )
        }
        _ => admin_error(404, &format!("no admin endpoint {method} {path}")),
    }
}
