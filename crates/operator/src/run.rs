//! `avi-autoscaler run`: the operator process.
//!
//! [`run`] lists what the process runs: the admin endpoints, leader election if asked, one
//! kube-runtime Controller per watched namespace (or one for all namespaces), a ticker that
//! forgets deleted objects, and a graceful shutdown on SIGTERM or SIGINT (in-flight reconciles
//! finish, the lease is released).

use std::{collections::HashSet, sync::Arc, time::Duration};

use api::AviAutoscaler;
use futures::{StreamExt, future};
use kube::{
    Api, Client, ResourceExt,
    runtime::{
        Controller, WatchStreamExt, controller::Config, predicates, reflector, reflector::Store,
        watcher,
    },
};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::{
    admin::{AdminListeners, AdminState},
    cli::RunArgs,
    connection::Connections,
    controller::{self, Context},
    events::Events,
    identity,
    leader::{Election, Leadership, LeaseSettings},
    readiness::Readiness,
    shutdown::{Shutdown, ShutdownSignal},
    target::Targets,
    telemetry::Metrics,
};

/// The `reportingController` of Events.
pub const REPORTING_CONTROLLER: &str = "avi-autoscaler";

/// How often the series and event recorders of deleted AviAutoscalers are dropped.
const FORGET_DELETED_EVERY: Duration = Duration::from_secs(30);

/// Why the operator could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No Kubernetes configuration (neither KUBECONFIG nor in-cluster).
    #[error("finding the Kubernetes configuration (KUBECONFIG or in-cluster)")]
    KubeConfig(#[source] kube::Error),
    /// An admin address could not be bound.
    #[error("binding the metrics/health addresses")]
    Bind(#[source] std::io::Error),
    /// Leader election could not start.
    #[error("starting leader election")]
    Lease(#[source] kube_lease_manager::LeaseManagerError),
    /// An admin server failed.
    #[error("serving the metrics/health endpoints")]
    Serve(#[source] std::io::Error),
}

/// Runs the operator until a shutdown signal.
pub async fn run(args: RunArgs) -> Result<(), RunError> {
    let admin = AdminListeners::bind(args.metrics_bind, args.health_bind)
        .await
        .map_err(RunError::Bind)?;
    // The addresses actually bound (port 0 picks a free port; tests read them from the log).
    let bound = admin.addrs().map_err(RunError::Bind)?;
    let mut kube_config = kube::Config::infer()
        .await
        .map_err(|e| RunError::KubeConfig(kube::Error::InferConfig(e)))?;
    identity::identify(&mut kube_config);
    let client = Client::try_from(kube_config).map_err(RunError::KubeConfig)?;
    let metrics = Arc::new(Metrics::new());
    let shutdown = Shutdown::new();

    let election = elect_leader(&args, &client, &metrics).await?;
    let leadership = election
        .as_ref()
        .map(|e| e.leadership.clone())
        .unwrap_or_else(Leadership::always);
    let ctx = context(&args, &client, &metrics, leadership);

    let readiness = Readiness::new();
    let admin = tokio::spawn(admin.serve(
        AdminState {
            metrics: metrics.clone(),
            ready: readiness.flag(),
        },
        shutdown.signal(),
    ));
    let controllers = Controllers::start(&args, &client, &ctx, &readiness, &shutdown);
    readiness.all_watches_added();
    tokio::spawn(forget_deleted_objects(
        controllers.stores.clone(),
        ctx,
        shutdown.signal(),
    ));

    info!(
        metrics = %bound.metrics,
        health = %bound.health,
        namespaces = ?args.namespaces,
        leader_election = args.leader_election,
        "avi-autoscaler running"
    );
    shutdown.on_signal().await;
    controllers.finish().await;
    if let Some(e) = election {
        e.release().await;
    }
    match admin.await {
        Ok(served) => served.map_err(RunError::Serve),
        Err(e) => Err(RunError::Serve(std::io::Error::other(e))),
    }
}

/// Starts campaigning for the leader lease when `--leader-election` is set; without it this
/// replica always leads.
async fn elect_leader(
    args: &RunArgs,
    client: &Client,
    metrics: &Arc<Metrics>,
) -> Result<Option<Election>, RunError> {
    if !args.leader_election {
        metrics.set_leader(true);
        return Ok(None);
    }
    let settings = LeaseSettings {
        namespace: args.lease_namespace.clone(),
        name: args.lease_name.clone(),
        identity: args.identity(),
        duration: Duration::from_secs(args.lease_duration_seconds),
        grace: Duration::from_secs(args.lease_renew_grace_seconds),
    };
    info!(lease = %settings.name, namespace = %settings.namespace, identity = %settings.identity, "campaigning for the leader lease");
    Election::start(client.clone(), settings, metrics.clone())
        .await
        .map(Some)
        .map_err(RunError::Lease)
}

/// The one [`Context`] every reconcile shares.
fn context(
    args: &RunArgs,
    client: &Client,
    metrics: &Arc<Metrics>,
    leadership: Leadership,
) -> Arc<Context> {
    let avi_metrics = metrics.clone();
    let observer: avi::RequestObserver = Arc::new(move |ev: &avi::RequestEvent<'_>| {
        avi_metrics.avi_request(
            ev.endpoint,
            ev.kind.as_str(),
            ev.outcome,
            ev.duration.as_secs_f64(),
        )
    });
    let poller = avi::Poller::new(avi::PollerSettings {
        observer: Some(observer),
        user_agent: identity::USER_AGENT.to_owned(),
        ..avi::PollerSettings::default()
    });
    Arc::new(Context {
        client: client.clone(),
        poller,
        connections: Connections::new(client.clone()),
        targets: Targets::new(client.clone()),
        events: Events::new(client.clone(), REPORTING_CONTROLLER, Some(args.identity())),
        metrics: metrics.clone(),
        leadership,
        failures: Default::default(),
    })
}

/// What one Controller watches.
enum Scope {
    /// Every namespace.
    All,
    /// One namespace.
    Namespace(String),
}

impl Scope {
    /// The scopes `--namespace` asks for: all namespaces when none is named.
    fn of(args: &RunArgs) -> Vec<Scope> {
        if args.namespaces.is_empty() {
            vec![Scope::All]
        } else {
            args.namespaces
                .iter()
                .cloned()
                .map(Scope::Namespace)
                .collect()
        }
    }

    fn api(&self, client: &Client) -> Api<AviAutoscaler> {
        match self {
            Scope::All => Api::all(client.clone()),
            Scope::Namespace(ns) => Api::namespaced(client.clone(), ns),
        }
    }
}

/// The running Controllers, one per [`Scope`], and the caches of their watches.
struct Controllers {
    tasks: Vec<JoinHandle<()>>,
    stores: Vec<Store<AviAutoscaler>>,
}

impl Controllers {
    /// Starts one Controller per scope; each reports to `readiness` when its watch has listed
    /// its objects and stops taking new work on `shutdown`.
    fn start(
        args: &RunArgs,
        client: &Client,
        ctx: &Arc<Context>,
        readiness: &Readiness,
        shutdown: &Shutdown,
    ) -> Self {
        let mut controllers = Controllers {
            tasks: Vec::new(),
            stores: Vec::new(),
        };
        for scope in Scope::of(args) {
            let (reader, writer) = reflector::store();
            let mut synced = readiness.add_watch();
            // Reconcile on spec changes only: the operator's own status writes would otherwise
            // trigger a reconcile each. Timers (requeue) cover everything else.
            let stream = watcher(scope.api(client), watcher::Config::default().any_semantic())
                .default_backoff()
                .reflect(writer)
                .inspect(move |event| {
                    if matches!(event, Ok(watcher::Event::InitDone)) {
                        synced.synced();
                    }
                })
                .applied_objects()
                .predicate_filter(predicates::generation, Default::default());
            controllers.stores.push(reader.clone());
            let controller = Controller::for_stream(stream, reader)
                .with_config(Config::default().concurrency(args.concurrency))
                .graceful_shutdown_on(shutdown.signal().requested());
            let ctx = ctx.clone();
            controllers.tasks.push(tokio::spawn(async move {
                controller
                    .run(controller::reconcile, controller::error_policy, ctx)
                    .for_each(|result| {
                        if let Err(e) = result {
                            match e {
                                kube::runtime::controller::Error::ReconcilerFailed(..) => {}
                                other => {
                                    warn!(error = &other as &dyn std::error::Error, "controller")
                                }
                            }
                        }
                        future::ready(())
                    })
                    .await;
            }));
        }
        controllers
    }

    /// Waits for every Controller to finish its in-flight reconciles and stop.
    async fn finish(self) {
        for task in self.tasks {
            if let Err(e) = task.await {
                error!(
                    error = &e as &dyn std::error::Error,
                    "controller task failed"
                );
            }
        }
    }
}

/// Every [`FORGET_DELETED_EVERY`] until shutdown: drops the per-object metric series and event
/// recorders of AviAutoscalers no longer in any watch's cache.
async fn forget_deleted_objects(
    stores: Vec<Store<AviAutoscaler>>,
    ctx: Arc<Context>,
    shutdown: ShutdownSignal,
) {
    let mut tick = tokio::time::interval(FORGET_DELETED_EVERY);
    let mut shutdown = std::pin::pin!(shutdown.requested());
    loop {
        tokio::select! {
            _ = tick.tick() => {},
            _ = &mut shutdown => return,
        }
        let objects: Vec<_> = stores.iter().flat_map(|s| s.state()).collect();
        let names: HashSet<(String, String)> = objects
            .iter()
            .map(|o| (o.namespace().unwrap_or_default(), o.name_any()))
            .collect();
        let uids: HashSet<String> = objects.iter().filter_map(|o| o.uid()).collect();
        ctx.metrics.set_objects(names.len());
        ctx.metrics
            .retain_objects(|ns, name| names.contains(&(ns.to_owned(), name.to_owned())));
        ctx.events.retain_objects(|uid| uids.contains(uid));
    }
}
