//! `avi-autoscaler run`: the operator process.
//!
//! Binds the admin endpoints, starts leader election if asked, runs one kube-runtime
//! Controller per watched namespace (or one for all namespaces), and shuts down gracefully on
//! SIGTERM or SIGINT: in-flight reconciles finish, the lease is released.

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use api::AviAutoscaler;
use futures::{StreamExt, future};
use kube::{
    Api, Client, ResourceExt,
    runtime::{Controller, WatchStreamExt, controller::Config, predicates, reflector, watcher},
};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::{
    admin,
    cli::RunArgs,
    connection::Connections,
    controller::{self, Context},
    events::Events,
    identity,
    leader::{Election, Leadership, LeaseSettings},
    target::Targets,
    telemetry::Metrics,
};

/// The `reportingController` of Events.
pub const REPORTING_CONTROLLER: &str = "avi-autoscaler";

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

/// Resolves when SIGTERM or SIGINT arrives.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler cannot fail on Unix");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Runs the operator until a shutdown signal.
pub async fn run(args: RunArgs) -> Result<(), RunError> {
    let listeners = admin::bind(args.metrics_bind, args.health_bind)
        .await
        .map_err(RunError::Bind)?;
    // The addresses actually bound (port 0 picks a free port; tests read them from this log).
    let local = |want_metrics: bool| {
        listeners
            .iter()
            .find(|(_, m, h)| if want_metrics { *m } else { *h })
            .and_then(|(l, _, _)| l.local_addr().ok())
            .map(|a| a.to_string())
            .unwrap_or_default()
    };
    let (bound_metrics, bound_health) = (local(true), local(false));
    let mut kube_config = kube::Config::infer()
        .await
        .map_err(|e| RunError::KubeConfig(kube::Error::InferConfig(e)))?;
    identity::identify(&mut kube_config);
    let client = Client::try_from(kube_config).map_err(RunError::KubeConfig)?;
    let metrics = Arc::new(Metrics::new());

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let shutdown = {
        let rx = shutdown_rx.clone();
        move || {
            let mut rx = rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        }
    };

    let election = if args.leader_election {
        let settings = LeaseSettings {
            namespace: args.lease_namespace.clone(),
            name: args.lease_name.clone(),
            identity: args.identity(),
            duration: Duration::from_secs(args.lease_duration_seconds),
            grace: Duration::from_secs(args.lease_renew_grace_seconds),
        };
        info!(lease = %settings.name, namespace = %settings.namespace, identity = %settings.identity, "campaigning for the leader lease");
        Some(
            Election::start(client.clone(), settings, metrics.clone())
                .await
                .map_err(RunError::Lease)?,
        )
    } else {
        metrics.set_leader(true);
        None
    };
    let leadership = election
        .as_ref()
        .map(|e| e.leadership.clone())
        .unwrap_or_else(Leadership::always);

    let avi_metrics = metrics.clone();
    let observer: avi::RequestObserver = Arc::new(move |ev: &avi::RequestEvent<'_>| {
        avi_metrics.avi_request(ev.kind.as_str(), ev.outcome, ev.duration.as_secs_f64())
    });
    let poller = avi::Poller::new(avi::PollerSettings {
        observer: Some(observer),
        user_agent: identity::USER_AGENT.to_owned(),
        ..avi::PollerSettings::default()
    });
    let ctx = Arc::new(Context {
        client: client.clone(),
        poller,
        connections: Connections::new(client.clone()),
        targets: Targets::new(client.clone()),
        events: Events::new(client.clone(), REPORTING_CONTROLLER, Some(args.identity())),
        metrics: metrics.clone(),
        leadership,
        failures: Default::default(),
    });

    let (ready_tx, ready_rx) = watch::channel(false);
    let admin_task = tokio::spawn(admin::serve(
        listeners,
        admin::AdminState {
            metrics: metrics.clone(),
            ready: ready_rx,
        },
        shutdown_rx.clone(),
    ));

    let scopes: Vec<Option<String>> = if args.namespaces.is_empty() {
        vec![None]
    } else {
        args.namespaces.iter().cloned().map(Some).collect()
    };
    // Ready once every watch has listed its objects. Readiness is read off the watch streams
    // (their first InitDone) rather than awaited with Store::wait_until_ready, whose shared
    // one-shot keeps only the last waiter's waker: with the Controller also waiting on it, a
    // second waiter may never wake.
    let unsynced = Arc::new(AtomicUsize::new(scopes.len()));
    let ready_tx = Arc::new(ready_tx);
    let mut stores = Vec::new();
    let mut controllers = Vec::new();
    for scope in scopes {
        let api: Api<AviAutoscaler> = match &scope {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let (reader, writer) = reflector::store();
        // Reconcile on spec changes only: the operator's own status writes would otherwise
        // trigger a reconcile each. Timers (requeue) cover everything else.
        let mut synced = false;
        let (unsynced, ready_tx) = (unsynced.clone(), ready_tx.clone());
        let stream = watcher(api, watcher::Config::default().any_semantic())
            .default_backoff()
            .reflect(writer)
            .inspect(move |event| {
                if !synced && matches!(event, Ok(watcher::Event::InitDone)) {
                    synced = true;
                    if unsynced.fetch_sub(1, Ordering::AcqRel) == 1 {
                        let _ = ready_tx.send(true);
                        info!("watches synced");
                    }
                }
            })
            .applied_objects()
            .predicate_filter(predicates::generation, Default::default());
        stores.push(reader.clone());
        let shutdown = shutdown();
        let ctx = ctx.clone();
        let concurrency = args.concurrency;
        controllers.push(tokio::spawn(async move {
            Controller::for_stream(stream, reader)
                .with_config(Config::default().concurrency(concurrency))
                .graceful_shutdown_on(shutdown)
                .run(controller::reconcile, controller::error_policy, ctx)
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

    // Drop per-object metric series and event recorders of deleted AviAutoscalers.
    {
        let stores = stores.clone();
        let ctx = ctx.clone();
        let mut stop = shutdown_rx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            loop {
                tokio::select! {
                    _ = tick.tick() => {},
                    _ = stop.wait_for(|s| *s) => return,
                }
                let objects: Vec<_> = stores.iter().flat_map(|s| s.state()).collect();
                let names: HashSet<(String, String)> = objects
                    .iter()
                    .map(|o| (o.namespace().unwrap_or_default(), o.name_any()))
                    .collect();
                let uids: HashSet<String> = objects.iter().filter_map(|o| o.uid()).collect();
                ctx.metrics
                    .retain_objects(|ns, name| names.contains(&(ns.to_owned(), name.to_owned())));
                ctx.events.retain_objects(|uid| uids.contains(uid));
            }
        });
    }

    info!(
        metrics = %bound_metrics,
        health = %bound_health,
        namespaces = ?args.namespaces,
        leader_election = args.leader_election,
        "avi-autoscaler running"
    );
    shutdown_signal().await;
    info!("shutting down");
    let _ = shutdown_tx.send(true);
    for c in controllers {
        if let Err(e) = c.await {
            error!(
                error = &e as &dyn std::error::Error,
                "controller task failed"
            );
        }
    }
    if let Some(e) = election {
        e.release().await;
    }
    match admin_task.await {
        Ok(r) => r.map_err(RunError::Serve),
        Err(e) => Err(RunError::Serve(std::io::Error::other(e))),
    }
}
