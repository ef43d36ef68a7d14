//! `avi-autoscaler doctor`: checks one AviAutoscaler against the live Avi controller and says
//! what is wrong and how to fix it, then what the operator would decide right now.
//!
//! Everything it does is a read: the AviAutoscaler (from a file or the cluster), its
//! AviController and Secrets, the target's `/scale` from Kubernetes; the login, version,
//! inventory, metric catalog and metric values from Avi (the login is the only POST, and it
//! writes nothing). The decision comes from the same `scaling::decide` the operator runs, with
//! the object's status as history; it is printed, never applied.

use api::{AviAutoscaler, AviController, ConnectionSource, EntityType, ResolvedSpec};
use avi::{ConnectionConfig, InventoryEntity, Poller, PollerSettings};
use kube::{Api, Client, ResourceExt};
use serde::Serialize;

use crate::{
    cli::{DoctorArgs, OutputFormat},
    connection::{Connections, SecretOrigin},
    target::Targets,
};

/// Why the checks could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file given with `-f` could not be read.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not an AviAutoscaler.
    #[error("{path}: not an AviAutoscaler")]
    Parse {
        /// The file.
        path: String,
        /// The YAML error.
        #[source]
        source: serde_yaml::Error,
    },
    /// Neither `-f` nor `--name` was given.
    #[error("give the AviAutoscaler with -f FILE or --name NAME")]
    NoObject,
    /// No Kubernetes configuration could be loaded.
    #[error("connecting to Kubernetes")]
    Kube(#[source] kube::Error),
    /// The AviAutoscaler could not be read from the cluster.
    #[error("reading AviAutoscaler {namespace}/{name}")]
    Get {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Writing the report to standard output failed.
    #[error("writing the report")]
    Write(#[source] serde_json::Error),
}

/// One check: what was checked, whether it passed, what was found, and how to fix a failure.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Check {
    /// What was checked (`login`, `metrics[0] entity`, …).
    pub check: String,
    /// Whether it passed.
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// What to do about a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn pass(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Check {
            check: check.into(),
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(check: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Check {
            check: check.into(),
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// What the operator would do now.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// The target's replica count now.
    pub current_replicas: Option<i32>,
    /// The count it would set.
    pub desired_replicas: i32,
    /// Whether it would write `/scale`.
    pub scale: bool,
    /// Per metric: its value and the count it proposes, or why none.
    pub metrics: Vec<String>,
    /// The `Ready` and `ScalingActive` conditions it would publish, as `Type=Status reason: message`.
    pub conditions: Vec<String>,
}

/// The whole report, as `-o json` prints it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Report {
    /// `namespace/name` of the AviAutoscaler.
    pub object: String,
    /// Whether every check passed.
    pub ok: bool,
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
    /// The decision the operator would take now; absent when the spec cannot be used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Verdict>,
}

/// Runs `doctor`: prints the report and returns whether every check passed.
pub async fn run(args: &DoctorArgs) -> Result<bool, Error> {
    let client = Client::try_default().await.map_err(Error::Kube)?;
    let obj = load(args, &client).await?;
    let report = diagnose(args, &client, &obj).await;
    match args.output {
        OutputFormat::Text => print!("{}", render(&report)),
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(Error::Write)?
        ),
    }
    Ok(report.ok)
}

/// Reads the AviAutoscaler from the file or the cluster.
async fn load(args: &DoctorArgs, client: &Client) -> Result<AviAutoscaler, Error> {
    if let Some(path) = &args.file {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        let mut obj: AviAutoscaler =
            serde_yaml::from_str(&text).map_err(|source| Error::Parse {
                path: path.clone(),
                source,
            })?;
        if obj.metadata.namespace.is_none() {
            obj.metadata.namespace = Some(
                args.namespace
                    .clone()
                    .unwrap_or_else(|| client.default_namespace().to_owned()),
            );
        }
        return Ok(obj);
    }
    let name = args.name.as_ref().ok_or(Error::NoObject)?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_owned());
    Api::<AviAutoscaler>::namespaced(client.clone(), &namespace)
        .get(name)
        .await
        .map_err(|source| Error::Get {
            namespace,
            name: name.clone(),
            source,
        })
}

/// Runs every check on `obj`.
async fn diagnose(args: &DoctorArgs, client: &Client, obj: &AviAutoscaler) -> Report {
    let namespace = obj.namespace().unwrap_or_default();
    let mut report = Report {
        object: format!("{namespace}/{}", obj.name_any()),
        ok: false,
        checks: Vec::new(),
        decision: None,
    };
    let spec = match crate::validation::resolve(obj) {
        Ok(spec) => {
            report.checks.push(Check::pass("spec", "valid"));
            spec
        }
        Err(invalid) => {
            report.checks.push(Check::fail(
                "spec",
                invalid.to_string(),
                "fix the fields named (kubectl explain aviautoscaler.spec)",
            ));
            return report;
        }
    };
    let cluster_namespace = args
        .cluster_resource_namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let conn = connection(client, &namespace, &cluster_namespace, &spec, &mut report).await;
    let samples = match conn {
        Some(conn) => avi_checks(&conn, &spec, obj, &mut report).await,
        None => failed_samples(&spec, "no connection to the Avi controller"),
    };
    let target = Targets::new(client.clone(), Vec::new())
        .read_scale(&namespace, &spec.scale_target_ref)
        .await;
    let target_name = format!(
        "{} {namespace}/{}",
        spec.scale_target_ref.kind, spec.scale_target_ref.name
    );
    let target = match target {
        Ok(r) => {
            report.checks.push(Check::pass(
                "target",
                format!("{target_name}: {} replicas", r.replicas.spec),
            ));
            Ok(scaling::TargetState {
                spec_replicas: r.replicas.spec,
                status_replicas: r.replicas.status,
                ready_replicas: r.replicas.ready,
            })
        }
        Err(e) => {
            report.checks.push(Check::fail(
                "target",
                e.message(),
                "fix spec.scaleTargetRef or create the workload",
            ));
            Err(scaling::Failure {
                reason: api::Reason::FailedGetScale,
                message: e.message(),
            })
        }
    };
    let current = target.as_ref().ok().map(|t| t.spec_replicas);
    let decision = scaling::decide(&scaling::Inputs {
        spec: &spec,
        generation: obj.metadata.generation,
        status: obj.status.as_ref(),
        target,
        samples,
        now: api::k8s::jiff::Timestamp::now(),
    });
    report.decision = Some(verdict(current, &decision));
    report.ok = report.checks.iter().all(|c| c.ok);
    report
}

/// The same failure for every metric.
fn failed_samples(
    spec: &ResolvedSpec,
    message: &str,
) -> Vec<Result<scaling::Sample, scaling::Failure>> {
    let failure = scaling::Failure {
        reason: api::Reason::FailedGetAviMetric,
        message: message.to_owned(),
    };
    vec![Err(failure); spec.metrics.len()]
}

/// Reads the AviController (if referenced) and the Secrets, and builds the connection.
async fn connection(
    client: &Client,
    namespace: &str,
    cluster_namespace: &str,
    spec: &ResolvedSpec,
    report: &mut Report,
) -> Option<ConnectionConfig> {
    let referenced;
    let (secret_namespace, controller, origin) = match &spec.connection {
        ConnectionSource::Inline(c) => (namespace, c, SecretOrigin::Inline),
        ConnectionSource::Reference(name) => {
            match Api::<AviController>::all(client.clone())
                .get_opt(name)
                .await
            {
                Ok(Some(c)) => {
                    report
                        .checks
                        .push(Check::pass("controller", format!("AviController {name}")));
                    referenced = c;
                }
                Ok(None) => {
                    report.checks.push(Check::fail(
                        "controller",
                        format!("AviController {name} does not exist"),
                        "create it (kubectl get avic lists those there are) or fix spec.controllerRef",
                    ));
                    return None;
                }
                Err(e) => {
                    report.checks.push(Check::fail(
                        "controller",
                        format!("reading AviController {name}: {}", present::error_chain(&e)),
                        "check that the AviController CRD is installed and you may read it",
                    ));
                    return None;
                }
            }
            (
                cluster_namespace,
                &referenced.spec.connection,
                SecretOrigin::AviController,
            )
        }
    };
    let secrets: Vec<_> = Connections::secret_names(controller)
        .map(|n| format!("{secret_namespace}/{n}"))
        .collect();
    match Connections::new(client.clone())
        .build(secret_namespace, controller, origin)
        .await
    {
        Ok(conn) => {
            report.checks.push(Check::pass(
                "credentials",
                format!("Secret {}", secrets.join(", Secret ")),
            ));
            Some(conn)
        }
        Err(e) => {
            report.checks.push(Check::fail(
                "credentials",
                present::error_chain(&e),
                "create the Secret with keys username and password where the operator reads it \
                 (--cluster-resource-namespace for an AviController, the autoscaler's namespace \
                 for an inline connection)",
            ));
            None
        }
    }
}

/// The Avi side: login, version, tenant, then each metric. Returns one sample per metric for
/// the decision.
async fn avi_checks(
    conn: &ConnectionConfig,
    spec: &ResolvedSpec,
    obj: &AviAutoscaler,
    report: &mut Report,
) -> Vec<Result<scaling::Sample, scaling::Failure>> {
    let poller = Poller::new(PollerSettings {
        user_agent: crate::identity::USER_AGENT.to_owned(),
        ..PollerSettings::default()
    });
    match poller.probe(conn).await {
        Ok(info) => {
            report.checks.push(Check::pass(
                "login",
                format!(
                    "logged in to {} as {}",
                    info.endpoint,
                    conn.credentials.username()
                ),
            ));
            report.checks.push(Check::pass(
                "version",
                format!("controller version {}", info.version),
            ));
        }
        Err(e) => {
            let fix = if e.is_unauthorized() || e.is_forbidden() {
                "the controller refused the credentials: fix username and password in the Secret"
            } else if e.is_tls() {
                "the controller's certificate is not trusted: set tls.caSecretRef to its CA"
            } else {
                "check the endpoints and that the controller is reachable from here"
            };
            report
                .checks
                .push(Check::fail("login", present::error_chain(&e), fix));
            return failed_samples(spec, "could not log in to the Avi controller");
        }
    }
    // One inventory read per entity type in use; it also proves the tenant exists and is
    // visible to the user.
    let mut inventories: Vec<(EntityType, Result<Vec<InventoryEntity>, avi::Error>)> = Vec::new();
    for m in &spec.metrics {
        if !inventories.iter().any(|(t, _)| *t == m.entity.kind) {
            let found = poller.inventory(conn, m.entity.kind).await;
            inventories.push((m.entity.kind, found));
        }
    }
    match inventories.iter().find_map(|(_, r)| r.as_ref().err()) {
        None => report
            .checks
            .push(Check::pass("tenant", format!("tenant {}", conn.tenant))),
        Some(e) => report.checks.push(Check::fail(
            "tenant",
            format!("tenant {}: {}", conn.tenant, present::error_chain(e)),
            "fix tenant in the connection, or give the user a role in that tenant",
        )),
    }
    let catalog = poller.metric_catalog(conn).await;
    if let Err(e) = &catalog {
        report.checks.push(Check::fail(
            "metric catalog",
            present::error_chain(e),
            "give the user read access to analytics (GET /api/analytics/metric_id)",
        ));
    }
    let queries: Vec<avi::MetricQuery> = spec
        .metrics
        .iter()
        .map(avi::MetricQuery::from_metric)
        .collect();
    let results = poller.fetch(conn, &queries).await;
    let now = api::k8s::jiff::Timestamp::now();
    let mut samples = Vec::new();
    for (i, (m, result)) in spec.metrics.iter().zip(results).enumerate() {
        let kind = m.entity.kind.as_str();
        let wanted = m
            .entity
            .name
            .clone()
            .or_else(|| m.entity.uuid.clone())
            .unwrap_or_default();
        let label = |what: &str| format!("metrics[{i}] {what}");
        let inventory = inventories
            .iter()
            .find(|(t, _)| *t == m.entity.kind)
            .and_then(|(_, r)| r.as_ref().ok());
        let entity = inventory.and_then(|inv| {
            inv.iter().find(|e| {
                m.entity.name.as_deref() == Some(e.name.as_str())
                    || (m.entity.name.is_none() && m.entity.uuid.as_deref() == Some(&e.uuid))
            })
        });
        if let Some(inv) = inventory {
            match entity {
                Some(_) => report
                    .checks
                    .push(Check::pass(label("entity"), format!("{kind} {wanted}"))),
                None => {
                    let names: Vec<&str> = inv.iter().map(|e| e.name.as_str()).collect();
                    let close = closest(&wanted, &names, 3);
                    let fix = if close.is_empty() {
                        format!("tenant {} has no {kind}; check the tenant", conn.tenant)
                    } else {
                        format!(
                            "did you mean {}? set spec.metrics[{i}].entity to the name Avi shows",
                            close.join(", ")
                        )
                    };
                    report.checks.push(Check::fail(
                        label("entity"),
                        format!("{kind} {wanted} not found in tenant {}", conn.tenant),
                        fix,
                    ));
                }
            }
        }
        if let Ok(catalog) = &catalog {
            let id = &m.metric_id;
            match catalog.get(id) {
                Some(types) if types.is_empty() || types.iter().any(|t| t == kind) => {
                    report.checks.push(Check::pass(
                        label("metricId"),
                        format!("{id} is a {kind} metric"),
                    ))
                }
                Some(types) => report.checks.push(Check::fail(
                    label("metricId"),
                    format!("{id} is a metric of {}, not of {kind}", types.join(", ")),
                    format!(
                        "use a {kind} metric, or set spec.metrics[{i}].entity.type to {}",
                        types.join(" or ")
                    ),
                )),
                None => {
                    let ids: Vec<&str> = catalog
                        .iter()
                        .filter(|(_, t)| t.is_empty() || t.iter().any(|t| t == kind))
                        .map(|(n, _)| n.as_str())
                        .collect();
                    let close = closest(id, &ids, 3);
                    report.checks.push(Check::fail(
                        label("metricId"),
                        format!("the controller knows no metric {id}"),
                        format!("did you mean {}?", close.join(", ")),
                    ));
                }
            }
        }
        if m.realtime {
            match entity.map(|e| e.realtime) {
                Some(Some(true)) => report.checks.push(Check::pass(
                    label("realtime"),
                    format!("realtime metrics enabled on {kind} {wanted}"),
                )),
                Some(Some(false)) => report.checks.push(Check::fail(
                    label("realtime"),
                    format!("realtime metrics are not enabled on {kind} {wanted}"),
                    format!(
                        "enable realtime metrics in the {kind}'s analytics policy, or set \
                         spec.metrics[{i}].realtime: false"
                    ),
                )),
                // Service engines have no such setting; an unknown entity is reported above.
                _ => {}
            }
        }
        let last = obj
            .status
            .as_ref()
            .and_then(|s| s.current_metrics.get(i))
            .and_then(|s| s.sample_time.as_ref())
            .map(|t| format!("{}s ago", now.duration_since(t.0).as_secs()))
            .unwrap_or_else(|| "never".to_owned());
        match result {
            Ok(s) => {
                report.checks.push(Check::pass(
                    label("value"),
                    format!(
                        "{} = {} over {} series; operator's last sample: {last}",
                        m.metric_id, s.value, s.series
                    ),
                ));
                samples.push(Ok(scaling::Sample {
                    value: s.value,
                    series: s.series,
                    read_at: s.read_at,
                }));
            }
            Err(e) => {
                let fix = if e.is_no_data() {
                    "the entity has no value now: a pool without members, or metrics not \
                     collected (realtime metrics not enabled?)"
                } else {
                    "see the checks above"
                };
                report.checks.push(Check::fail(
                    label("value"),
                    format!(
                        "{}: {}; operator's last sample: {last}",
                        m.metric_id,
                        present::error_chain(&e)
                    ),
                    fix,
                ));
                samples.push(Err(scaling::Failure {
                    reason: e.reason(),
                    message: present::error_chain(&e),
                }));
            }
        }
    }
    samples
}

/// Up to `n` of `candidates` closest to `wanted` (Jaro-Winkler similarity, which favours a
/// shared prefix, as AKO names share theirs), best first.
pub fn closest<'a>(wanted: &str, candidates: &[&'a str], n: usize) -> Vec<&'a str> {
    let mut scored: Vec<(f64, &str)> = candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(wanted, c), *c))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    scored.into_iter().take(n).map(|(_, c)| c).collect()
}

/// What the decision says, for the report.
fn verdict(current: Option<i32>, d: &scaling::Decision) -> Verdict {
    Verdict {
        current_replicas: current,
        desired_replicas: d.desired_replicas,
        scale: d.scale,
        metrics: d
            .proposals
            .iter()
            .map(|p| {
                let value = match &p.value {
                    Ok(v) => format!("{v}"),
                    Err(f) => format!("no value ({})", f.reason),
                };
                match p.replicas {
                    Some(r) => format!("{}: {value} → {r} replicas", p.metric),
                    None => format!("{}: {value} → no proposal", p.metric),
                }
            })
            .collect(),
        conditions: d
            .status
            .conditions
            .iter()
            .filter(|c| c.type_ == "Ready" || c.type_ == "ScalingActive")
            .map(|c| format!("{}={} {}: {}", c.type_, c.status, c.reason, c.message))
            .collect(),
    }
}

/// The report for people: one line per check, then the decision.
pub fn render(report: &Report) -> String {
    let mut out = format!("AviAutoscaler {}\n", report.object);
    for c in &report.checks {
        let mark = if c.ok { '✓' } else { '✗' };
        out.push_str(&format!("{mark} {}: {}\n", c.check, c.detail));
        if let Some(fix) = &c.fix {
            out.push_str(&format!("    fix: {fix}\n"));
        }
    }
    if let Some(d) = &report.decision {
        let desired = d.desired_replicas;
        let action = match d.current_replicas {
            Some(current) if current != desired && d.scale => {
                format!("scale from {current} to {desired}")
            }
            // A dry run decides a count it does not write.
            Some(current) if current != desired => {
                format!("would scale from {current} to {desired}, without writing /scale")
            }
            Some(_) => format!("keep {desired} replicas"),
            None => format!("keep {desired} replicas (the target could not be read)"),
        };
        out.push_str(&format!("decision now: {action}\n"));
        for m in d.metrics.iter().chain(&d.conditions) {
            out.push_str(&format!("    {m}\n"));
        }
    }
    out.push_str(if report.ok {
        "all checks passed\n"
    } else {
        "some checks failed\n"
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closest_names_come_first() {
        let names = [
            "k8s--kuard.example.com_-ns-kuard",
            "k8s--shop.example.com_-ns-shop",
            "other",
        ];
        assert_eq!(
            closest("k8s--kaurd.example.com_-ns-kuard", &names, 2),
            vec![
                "k8s--kuard.example.com_-ns-kuard",
                "k8s--shop.example.com_-ns-shop"
            ]
        );
        assert!(closest("x", &[], 3).is_empty());
    }

    #[test]
    fn a_failed_check_prints_a_cross_and_its_fix() {
        let report = Report {
            object: "ns/web".into(),
            ok: false,
            checks: vec![
                Check::pass("login", "logged in"),
                Check::fail("metrics[0] entity", "pool p not found", "did you mean q?"),
            ],
            decision: None,
        };
        let text = render(&report);
        assert!(text.contains("✓ login: logged in\n"), "{text}");
        assert!(
            text.contains("✗ metrics[0] entity: pool p not found\n    fix: did you mean q?\n"),
            "{text}"
        );
        assert!(text.ends_with("some checks failed\n"), "{text}");
        let mut report = report;
        let decision = |current, desired, scale| Verdict {
            current_replicas: current,
            desired_replicas: desired,
            scale,
            metrics: Vec::new(),
            conditions: Vec::new(),
        };
        report.decision = Some(decision(Some(1), 4, true));
        assert!(render(&report).contains("decision now: scale from 1 to 4\n"));
        report.decision = Some(decision(Some(1), 4, false));
        assert!(render(&report).contains("would scale from 1 to 4, without writing /scale"));
        report.decision = Some(decision(Some(3), 3, false));
        assert!(render(&report).contains("decision now: keep 3 replicas\n"));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["checks"][1]["ok"], false);
        assert!(json["checks"][0].get("fix").is_none());
    }
}
