//! `avi-autoscaler run`: the operator process.
//!
//! [`run`] lists what the process runs: the admin endpoints, leader election if asked, one
//! kube-runtime Controller per watched namespace (or one for all namespaces) fed by a watch
//! that decodes objects one by one (`decode`), a ticker that forgets deleted objects, and a
//! graceful shutdown on SIGTERM or SIGINT (in-flight reconciles
//! finish, the lease is released).

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use api::{AviAutoscaler, AviController};
use futures::{StreamExt, channel::mpsc, future, stream};
use k8s_openapi::api::{autoscaling::v2::HorizontalPodAutoscaler, core::v1::Namespace};
use kube::{
    Api, Client, ResourceExt,
    api::DynamicObject,
    runtime::{
        Controller, WatchStreamExt,
        controller::Config,
        predicates, reflector,
        reflector::{ObjectRef, Store},
        watcher,
    },
};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::{
    admin::{AdminListeners, AdminState},
    avicontroller::{self, ProbeContext},
    cli::RunArgs,
    connection::Connections,
    controller::{self, Context},
    controller_ref::ControllerRefs,
    decode::{self, Decoder},
    events::Events,
    identity,
    inline::InlinePolicy,
    leader::{Election, Leadership, LeaseSettings},
    ownership::TargetKey,
    readiness::Readiness,
    shard::{Shard, ShardFilter, ShardLease},
    shutdown::{Shutdown, ShutdownSignal},
    target::Targets,
    telemetry::Metrics,
};

/// The `reportingController` of Events.
pub const REPORTING_CONTROLLER: &str = "avi-autoscaler";

/// How often the series, Event series, backoff entries and cached Secrets of deleted
/// AviAutoscalers are dropped.
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
    Lease(#[source] kube::Error),
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
    let cluster_namespace = args
        .cluster_resource_namespace
        .clone()
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| kube_config.default_namespace.clone());
    info!(namespace = %cluster_namespace, "reading the Secrets of AviControllers from this namespace");
    let client = Client::try_from(kube_config).map_err(RunError::KubeConfig)?;
    let metrics = Arc::new(Metrics::new());
    let shutdown = Shutdown::new();
    // `main` has checked that the index fits the count.
    let shard = args.shard().unwrap_or(Shard::ALL);
    if shard.count > 1 && !args.leader_election {
        warn!(shard = %shard, "sharded without --leader-election: no shard Lease, so nothing keeps two processes from managing the same objects while the shard count changes");
    }

    metrics.set_shard_objects(shard, 0);
    let election = elect_leader(&args, shard, &client, &metrics).await?;
    let leadership = election
        .as_ref()
        .map(|e| e.leadership.clone())
        .unwrap_or_else(Leadership::always);
    let (avic_reader, avic_writer) = reflector::store();
    let (ns_reader, ns_writer) = reflector::store();
    let refs = ControllerRefs {
        controllers: avic_reader,
        namespaces: ns_reader,
    };
    let ctx = context(
        &args,
        &client,
        &metrics,
        leadership,
        refs,
        cluster_namespace,
        shard,
    );

    let readiness = Readiness::new();
    let admin = tokio::spawn(admin.serve(
        AdminState {
            metrics: metrics.clone(),
            ready: readiness.flag(),
        },
        shutdown.signal(),
    ));
    let mut controllers = Controllers::start(&args, &client, &ctx, &readiness, &shutdown);
    controllers.start_avicontrollers(&args, &client, &ctx, avic_writer, &readiness, &shutdown);
    controllers.watch_namespaces(&client, ns_writer, &readiness, &shutdown);
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
        shard = %shard,
        selector = args.selector.as_ref().map(ToString::to_string),
        inline_controllers = args.allow_inline_controllers,
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
    shard: Shard,
    client: &Client,
    metrics: &Arc<Metrics>,
) -> Result<Option<Election>, RunError> {
    if !args.leader_election {
        metrics.set_leader(true);
        return Ok(None);
    }
    let shard_lease = ShardLease::new(&args.lease_name, &args.identity(), shard);
    let settings = LeaseSettings {
        namespace: args.lease_namespace.clone(),
        name: shard_lease.name.clone(),
        identity: args.identity(),
        duration: Duration::from_secs(args.lease_duration_seconds),
        grace: Duration::from_secs(args.lease_renew_grace_seconds),
        shard: shard_lease,
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
    controller_refs: ControllerRefs,
    cluster_namespace: String,
    shard: Shard,
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
    let circuit_metrics = metrics.clone();
    let circuit_observer: avi::CircuitObserver =
        Arc::new(move |endpoint: &url::Url, open: bool| {
            circuit_metrics.set_circuit_open(endpoint.as_str(), open)
        });
    let poller = avi::Poller::new(avi::PollerSettings {
        observer: Some(observer),
        circuit_observer: Some(circuit_observer),
        user_agent: identity::USER_AGENT.to_owned(),
        max_response_bytes: usize::try_from(args.avi_max_response_bytes).unwrap_or(usize::MAX),
        // One slow or dead controller holds at most half the reconcile workers; the others
        // keep serving every other controller.
        max_waiting_per_connection: usize::from(args.concurrency / 2).max(1),
        ..avi::PollerSettings::default()
    });
    Arc::new(Context {
        client: client.clone(),
        poller,
        connections: Connections::new(client.clone()),
        inline: InlinePolicy {
            allowed: args.allow_inline_controllers,
            endpoints: args.allowed_endpoints.clone(),
            allow_insecure: args.allow_insecure_inline,
        },
        targets: Targets::new(client.clone(), args.namespaces.clone()),
        events: Events::new(client.clone(), REPORTING_CONTROLLER, Some(args.identity())),
        metrics: metrics.clone(),
        leadership,
        shard,
        controller_refs,
        cluster_namespace,
        owners: Default::default(),
        failures: Default::default(),
        scale_conflicts: Default::default(),
        statuses: Default::default(),
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

    /// The raw objects of the scope: decoded one by one, so one bad object cannot fail a list.
    fn api(&self, client: &Client) -> Api<DynamicObject> {
        let ar = decode::api_resource();
        match self {
            Scope::All => Api::all_with(client.clone(), &ar),
            Scope::Namespace(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        }
    }

    /// The namespace of the scope; `None` for all.
    fn namespace(&self) -> Option<&str> {
        match self {
            Scope::All => None,
            Scope::Namespace(ns) => Some(ns),
        }
    }

    /// The HorizontalPodAutoscalers of the scope.
    fn hpas(&self, client: &Client) -> Api<HorizontalPodAutoscaler> {
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
    /// Stripped copies of the AviAutoscalers of other shards, one store per scope.
    others: Vec<Store<AviAutoscaler>>,
    /// One per AviAutoscaler Controller: names of AviControllers whose spec or readiness
    /// changed, so their autoscalers are reconciled at once.
    avic_changes: Vec<mpsc::UnboundedSender<String>>,
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
            others: Vec::new(),
            avic_changes: Vec::new(),
        };
        let scopes = Scope::of(args);
        let single_scope = scopes.len() == 1;
        for scope in scopes {
            let (reader, writer) = reflector::store();
            let mut synced = readiness.add_watch();
            let decoder = Decoder::new(ctx.clone(), reader.clone());
            let (shard_metrics, shard, counted) = (ctx.metrics.clone(), ctx.shard, reader.clone());
            let (others, others_writer) = reflector::store();
            let mut shard_filter = ShardFilter::new(ctx.shard, others_writer);
            controllers.others.push(others);
            let mut config = watcher::Config::default().any_semantic();
            if let Some(selector) = &args.selector {
                // The API server filters: objects outside the selector never reach this process.
                config = config.labels_from(selector);
            }
            let observed = ctx.clone();
            let owners = ctx.clone();
            let watched = scope.namespace().map(str::to_owned);
            // Reconcile on spec changes only: the operator's own status writes would otherwise
            // trigger a reconcile each. Timers (requeue) cover everything else.
            let stream = watcher(scope.api(client), config)
                .default_backoff()
                .filter_map(move |event| {
                    future::ready(match event {
                        Ok(event) => decoder
                            .event(event)
                            .and_then(|e| {
                                // Rivals on a workload count whichever shard they belong to.
                                owners.owners.observe(&e, watched.as_deref());
                                shard_filter.event(e)
                            })
                            .map(Ok),
                        Err(e) => Some(Err(e)),
                    })
                })
                .reflect(writer)
                .inspect(move |event| {
                    match event {
                        Ok(watcher::Event::InitDone) => synced.synced(),
                        // A status this replica remembers may be in the cache now.
                        Ok(watcher::Event::Apply(obj) | watcher::Event::InitApply(obj)) => {
                            observed.statuses.observe(obj)
                        }
                        _ => {}
                    }
                    // With one scope its cache is all the shard holds: the count follows it
                    // (the sweep in `forget_deleted_objects` sums several scopes).
                    if single_scope && event.is_ok() {
                        shard_metrics.set_shard_objects(shard, counted.len());
                    }
                })
                .applied_objects()
                .predicate_filter(predicates::generation, Default::default());
            controllers.stores.push(reader.clone());
            let (changed, changes) = mpsc::unbounded::<String>();
            controllers.avic_changes.push(changed);
            let store = reader.clone();
            let referencing = changes.flat_map(move |name| {
                let refs: Vec<ObjectRef<AviAutoscaler>> = store
                    .state()
                    .iter()
                    .filter(|a| {
                        a.spec
                            .controller_ref
                            .as_ref()
                            .is_some_and(|r| r.name == name)
                    })
                    .map(|a| ObjectRef::from(a.as_ref()))
                    .collect();
                stream::iter(refs)
            });
            // The Controller's graceful shutdown ends its own watch, not streams given to
            // `reconcile_on` or `watches_stream`: these end with the shutdown signal too.
            let referencing = referencing.take_until(shutdown.signal().requested());
            // The HorizontalPodAutoscalers of the scope: a change to one (created, retargeted,
            // deleted) has the autoscalers of its target reconciled at once, to hold or resume.
            let (hpa_reader, hpa_writer) = reflector::store();
            let hpa_synced = ctx.owners.add_hpas(hpa_reader.clone());
            let mut hpa_watch_synced = readiness.add_watch();
            let hpas = watcher(
                scope.hpas(client),
                watcher::Config::default().any_semantic(),
            )
            .default_backoff()
            .reflect(hpa_writer)
            .inspect(move |event| {
                if matches!(event, Ok(watcher::Event::InitDone)) {
                    hpa_synced.store(true, std::sync::atomic::Ordering::Release);
                    hpa_watch_synced.synced();
                }
            })
            .touched_objects();
            let store = reader.clone();
            // The target each HPA named when last seen: one that is pointed elsewhere frees the
            // autoscalers of its old target as well.
            let last_targets: std::sync::Mutex<
                HashMap<ObjectRef<HorizontalPodAutoscaler>, TargetKey>,
            > = Default::default();
            let on_target = move |hpa: HorizontalPodAutoscaler| {
                let key = TargetKey::of_hpa(&hpa);
                let hpa_ref = ObjectRef::from(&hpa);
                // The cache is updated before this runs: a deleted HPA is no longer in it.
                let present = hpa_reader.get(&hpa_ref).is_some();
                let previous = {
                    let mut last = last_targets.lock().expect("HPA targets lock poisoned");
                    match &key {
                        Some(k) if present => last.insert(hpa_ref, k.clone()),
                        _ => last.remove(&hpa_ref),
                    }
                };
                store
                    .state()
                    .iter()
                    .filter(|a| {
                        let target = TargetKey::of_autoscaler(a);
                        key.as_ref() == Some(&target) || previous.as_ref() == Some(&target)
                    })
                    .map(|a| ObjectRef::from(a.as_ref()))
                    .collect::<Vec<_>>()
            };
            let controller = Controller::for_stream(stream, reader)
                .reconcile_on(referencing)
                .watches_stream(hpas.take_until(shutdown.signal().requested()), on_target)
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

    /// Starts the AviController Controller: it probes each AviController (see
    /// [`avicontroller`]) and, when one's spec or readiness changes, has the autoscalers that
    /// reference it reconciled.
    fn start_avicontrollers(
        &mut self,
        args: &RunArgs,
        client: &Client,
        ctx: &Arc<Context>,
        writer: reflector::store::Writer<AviController>,
        readiness: &Readiness,
        shutdown: &Shutdown,
    ) {
        let reader = ctx.controller_refs.controllers.clone();
        let mut synced = readiness.add_watch();
        let senders = self.avic_changes.clone();
        // (generation, Ready status) last seen per AviController.
        let mut seen: HashMap<String, (Option<i64>, Option<String>)> = HashMap::new();
        let metrics = ctx.metrics.clone();
        let stream = watcher(
            Api::<AviController>::all(client.clone()),
            watcher::Config::default().any_semantic(),
        )
        .default_backoff()
        .reflect(writer)
        .inspect(move |event| {
            match event {
                Ok(watcher::Event::InitDone) => synced.synced(),
                // A deleted AviController leaves no readiness series behind.
                Ok(watcher::Event::Delete(obj)) => metrics.forget_controller(&obj.name_any()),
                _ => {}
            }
        })
        .applied_objects()
        .inspect(move |obj| {
            let Ok(obj) = obj else { return };
            let state = (obj.metadata.generation, avicontroller::ready_status(obj));
            if seen.insert(obj.name_any(), state.clone()).as_ref() != Some(&state) {
                for sender in &senders {
                    // A Controller that stopped has no autoscalers left to tell.
                    let _ = sender.unbounded_send(obj.name_any());
                }
            }
        })
        .predicate_filter(predicates::generation, Default::default());
        let controller = Controller::for_stream(stream, reader)
            .with_config(Config::default().concurrency(args.concurrency))
            .graceful_shutdown_on(shutdown.signal().requested());
        let pctx = Arc::new(ProbeContext {
            ctx: ctx.clone(),
            namespace: ctx.cluster_namespace.clone(),
            refs: ctx.controller_refs.clone(),
            // Every shard's autoscalers count: the others' stripped copies keep controllerRef.
            autoscalers: self.stores.iter().chain(&self.others).cloned().collect(),
        });
        self.tasks.push(tokio::spawn(async move {
            controller
                .run(avicontroller::reconcile, avicontroller::error_policy, pctx)
                .for_each(|result| {
                    if let Err(e) = result {
                        match e {
                            kube::runtime::controller::Error::ReconcilerFailed(..) => {}
                            other => warn!(error = &other as &dyn std::error::Error, "controller"),
                        }
                    }
                    future::ready(())
                })
                .await;
        }));
    }

    /// Keeps the cache of Namespaces' metadata (their labels, for `namespaceSelector`s) until
    /// shutdown; metadata only, so a cluster's namespaces cost little memory and traffic.
    fn watch_namespaces(
        &mut self,
        client: &Client,
        writer: reflector::store::Writer<kube::core::PartialObjectMeta<Namespace>>,
        readiness: &Readiness,
        shutdown: &Shutdown,
    ) {
        let mut synced = readiness.add_watch();
        // An `Api` of `PartialObjectMeta` asks for metadata only.
        let stream = watcher(
            Api::<kube::core::PartialObjectMeta<Namespace>>::all(client.clone()),
            watcher::Config::default().any_semantic(),
        )
        .default_backoff()
        .reflect(writer)
        .for_each(move |event| {
            if matches!(event, Ok(watcher::Event::InitDone)) {
                synced.synced();
            }
            future::ready(())
        });
        let stop = shutdown.signal();
        self.tasks.push(tokio::spawn(async move {
            tokio::select! {
                _ = stream => {},
                _ = stop.requested() => {},
            }
        }));
    }

    /// Waits for every Controller to finish its in-flight reconciles and stop, for at most
    /// [`SHUTDOWN_GRACE`] in all; what is left then is aborted, so the lease is still released
    /// before the kubelet's own grace period (30 s by default) runs out. A Controller whose watch
    /// never listed (its CRD not installed) waits for that list even after the shutdown signal,
    /// with nothing in flight: aborting it loses nothing.
    async fn finish(self) {
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        for (i, mut task) in self.tasks.into_iter().enumerate() {
            tokio::select! {
                biased;
                joined = &mut task => {
                    if let Err(e) = joined {
                        error!(
                            error = &e as &dyn std::error::Error,
                            "controller task failed"
                        );
                    }
                }
                () = tokio::time::sleep_until(deadline) => {
                    warn!(task = i, "a controller did not stop within the shutdown grace period: aborting it");
                    task.abort();
                }
            }
        }
    }
}

/// How long in-flight reconciles may take to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Every [`FORGET_DELETED_EVERY`] until shutdown: drops the per-object metric series, event
/// series and backoff entries of AviAutoscalers no longer in any watch's cache, the cached
/// Secrets no AviAutoscaler references, and the Avi poller's state nobody asks for.
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
        ctx.metrics.set_shard_objects(ctx.shard, names.len());
        ctx.metrics
            .retain_objects(|ns, name| names.contains(&(ns.to_owned(), name.to_owned())));
        ctx.events.retain_objects(|uid| uids.contains(uid));
        let refs: HashSet<ObjectRef<AviAutoscaler>> = objects
            .iter()
            .map(|o| ObjectRef::from(o.as_ref()))
            .collect();
        ctx.failures
            .lock()
            .expect("backoff lock poisoned")
            .retain(|r, _| refs.contains(r));
        ctx.statuses.retain(|r| refs.contains(r));
        let secrets: HashSet<(String, String)> = objects
            .iter()
            .flat_map(|o| {
                let ns = o.namespace().unwrap_or_default();
                o.spec
                    .controller
                    .iter()
                    .flat_map(Connections::secret_names)
                    .map(move |name| (ns.clone(), name.to_owned()))
            })
            .collect();
        ctx.connections
            .retain_secrets(|ns, name| secrets.contains(&(ns.to_owned(), name.to_owned())));
        ctx.poller.forget_unused();
        ctx.targets.forget_expired();
    }
}
