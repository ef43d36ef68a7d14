//! `avi-autoscaler migrate`: turns the chain users run today (a HorizontalPodAutoscaler on a
//! metric that the Prometheus Adapter serves from a Prometheus Operator `ServiceMonitor` scraping
//! the Avi controller) into AviAutoscalers that read the same metric from Avi directly.
//!
//! The conversion keeps the HPA's semantics: the same target type and value, min, max and
//! behavior, and for a pool the aggregation that reproduces the pool-level value the HPA saw
//! (Avi's pool series is the total over the pool's servers, so `Sum`). It never guesses: a
//! metric that no ServiceMonitor scrapes, or that several could give, is an error that lists
//! what was found.

use std::collections::BTreeMap;
use std::io::Read as _;

use serde_json::{Map, Value, json};

use crate::cli::MigrateArgs;

/// The path prefix under which the Avi controller publishes Prometheus metrics; the next
/// segment is the entity type.
const PROMETHEUS_PATH: &str = "/api/analytics/prometheus-metrics/";

/// Why a chain could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file (`-` for stdin).
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An input document is not YAML.
    #[error("{path}: not YAML: {source}")]
    Yaml {
        /// The file.
        path: String,
        /// The parse error.
        source: serde_yaml::Error,
    },
    /// Something in the chain has no faithful AviAutoscaler equivalent.
    #[error("{0}")]
    Convert(String),
}

/// The result of a conversion: the AviAutoscalers as one YAML stream, and the advice and the
/// parts that were not carried over, for standard error.
#[derive(Debug)]
pub struct Output {
    /// Multi-document YAML, one AviAutoscaler per HorizontalPodAutoscaler.
    pub yaml: String,
    /// Notes for the user, one line each.
    pub notes: Vec<String>,
}

/// Runs `migrate`: prints the AviAutoscalers on stdout and the notes on stderr.
pub fn run(args: &MigrateArgs) -> Result<(), Error> {
    let mut docs = Vec::new();
    for path in &args.files {
        let text = read(path)?;
        docs.extend(parse_documents(path, &text)?);
    }
    let out = convert(&docs, &args.controller)?;
    for note in &out.notes {
        eprintln!("{note}");
    }
    print!("{}", out.yaml);
    Ok(())
}

/// Reads a file, or standard input for `-`.
fn read(path: &str) -> Result<String, Error> {
    let result = if path == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map(|_| text)
    } else {
        std::fs::read_to_string(path)
    };
    result.map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })
}

/// Splits a multi-document YAML stream into JSON values, skipping empty documents; a `List`
/// (as `kubectl get -o yaml` prints) is flattened into its items.
pub fn parse_documents(path: &str, text: &str) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value: Value = serde::Deserialize::deserialize(doc).map_err(|source| Error::Yaml {
            path: path.to_owned(),
            source,
        })?;
        match value {
            Value::Null => {}
            Value::Object(ref o) if o.get("kind").and_then(Value::as_str) == Some("List") => {
                if let Some(items) = o.get("items").and_then(Value::as_array) {
                    out.extend(items.iter().cloned());
                }
            }
            v => out.push(v),
        }
    }
    Ok(out)
}

/// One series the ServiceMonitors scrape from Avi: an entity and a metric.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Scraped {
    /// Avi's entity type, from the endpoint path.
    entity_type: String,
    /// The entity's name (`entity_name` param).
    entity_name: String,
    /// Avi's metric id (`metric_id` param).
    metric_id: String,
    /// The tenant (`tenant` param), when given.
    tenant: Option<String>,
    /// Where it was found, for messages.
    source: String,
}

impl std::fmt::Display for Scraped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {:?} metric {} (ServiceMonitor {})",
            self.entity_type, self.entity_name, self.metric_id, self.source
        )
    }
}

/// The Prometheus name Avi gives a metric id: `l4_server.avg_open_conns` is published as
/// `avi_l4_server_avg_open_conns`.
pub fn prometheus_name(metric_id: &str) -> String {
    format!("avi_{}", metric_id.replace('.', "_"))
}

/// Converts the documents of a chain. Documents of other kinds are ignored.
pub fn convert(docs: &[Value], controller: &str) -> Result<Output, Error> {
    let mut notes = Vec::new();
    let mut scraped = Vec::new();
    let mut renames = BTreeMap::new();
    let mut hpas = Vec::new();
    for doc in docs {
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
        let api_version = doc
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match kind {
            "HorizontalPodAutoscaler" => match api_version {
                "autoscaling/v2" | "autoscaling/v2beta2" => hpas.push(doc),
                other => {
                    return Err(Error::Convert(format!(
                        "HorizontalPodAutoscaler {}: apiVersion {other} is not supported; \
                         convert it to autoscaling/v2 first (kubectl get hpa -o yaml prints v2)",
                        name_of(doc)
                    )));
                }
            },
            "ServiceMonitor" => scraped.extend(service_monitor(doc, &mut notes)?),
            "ConfigMap" => {
                if let Some(data) = doc.get("data").and_then(Value::as_object) {
                    for text in data.values().filter_map(Value::as_str) {
                        if let Ok(v) = serde_yaml::from_str::<Value>(text) {
                            adapter_rules(&v, &mut renames);
                        }
                    }
                }
            }
            _ if doc.get("rules").is_some() || doc.get("externalRules").is_some() => {
                adapter_rules(doc, &mut renames);
            }
            _ => {}
        }
    }
    if hpas.is_empty() {
        return Err(Error::Convert(
            "no HorizontalPodAutoscaler (autoscaling/v2 or v2beta2) in the input".to_owned(),
        ));
    }
    let mut yaml = String::new();
    for hpa in hpas {
        let object = convert_hpa(hpa, controller, &scraped, &renames, &mut notes)?;
        check(&object)?;
        yaml.push_str("---\n");
        yaml.push_str(
            &serde_yaml::to_string(&object).expect("a JSON value always serializes to YAML"),
        );
    }
    Ok(Output { yaml, notes })
}

/// `namespace/name` of a manifest.
fn name_of(doc: &Value) -> String {
    let meta = &doc["metadata"];
    match meta.get("namespace").and_then(Value::as_str) {
        Some(ns) => format!("{ns}/{}", meta["name"].as_str().unwrap_or("?")),
        None => meta["name"].as_str().unwrap_or("?").to_owned(),
    }
}

/// The values of a ServiceMonitor `params` entry; Avi also accepts comma-separated lists.
fn param(params: &Value, key: &str) -> Vec<String> {
    params
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The series a ServiceMonitor's Avi endpoints scrape.
fn service_monitor(doc: &Value, notes: &mut Vec<String>) -> Result<Vec<Scraped>, Error> {
    let source = name_of(doc);
    let mut out = Vec::new();
    for endpoint in doc["spec"]["endpoints"].as_array().into_iter().flatten() {
        let Some(path) = endpoint.get("path").and_then(Value::as_str) else {
            continue;
        };
        let Some(rest) = path.strip_prefix(PROMETHEUS_PATH) else {
            continue;
        };
        let entity_type = rest.trim_matches('/');
        if !["pool", "virtualservice", "serviceengine"].contains(&entity_type) {
            return Err(Error::Convert(format!(
                "ServiceMonitor {source}: path {path}: entity type {entity_type:?} is not one \
                 of pool, virtualservice, serviceengine"
            )));
        }
        let params = endpoint.get("params").cloned().unwrap_or(Value::Null);
        let names = param(&params, "entity_name");
        let metric_ids = param(&params, "metric_id");
        if names.is_empty() || metric_ids.is_empty() {
            return Err(Error::Convert(format!(
                "ServiceMonitor {source}: path {path} has no entity_name or no metric_id params: \
                 which entity and metric it scrapes is not stated, so it cannot be converted"
            )));
        }
        let tenant = param(&params, "tenant").into_iter().next();
        if let Some(t) = tenant.as_deref().filter(|t| *t != "admin") {
            notes.push(format!(
                "note: ServiceMonitor {source} reads tenant {t:?}: the AviController must set \
                 spec.tenant: {t}"
            ));
        }
        for name in &names {
            for id in &metric_ids {
                out.push(Scraped {
                    entity_type: entity_type.to_owned(),
                    entity_name: name.clone(),
                    metric_id: id.clone(),
                    tenant: tenant.clone(),
                    source: source.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// The Prometheus Adapter's renames: the name a rule serves (`name.as`) to the series its
/// `seriesQuery` selects. Rules whose `as` uses capture groups are applied to the series name.
fn adapter_rules(doc: &Value, renames: &mut BTreeMap<String, Vec<String>>) {
    for key in ["rules", "externalRules"] {
        for rule in doc.get(key).and_then(Value::as_array).into_iter().flatten() {
            let Some(query) = rule.get("seriesQuery").and_then(Value::as_str) else {
                continue;
            };
            let series: String = query
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            if series.is_empty() {
                continue;
            }
            let served = match rule["name"].get("as").and_then(Value::as_str) {
                Some(alias) if !alias.contains('$') => alias.to_owned(),
                _ => series.clone(),
            };
            renames.entry(served).or_default().push(series);
        }
    }
}

/// The series names the HPA's metric name may stand for: itself, or what an adapter rule
/// renamed to it.
fn series_names(metric: &str, renames: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut names = renames.get(metric).cloned().unwrap_or_default();
    if !names.iter().any(|n| n == metric) {
        names.push(metric.to_owned());
    }
    names
}

/// Parses a Kubernetes quantity (`200`, `1500m`, `2k`, `1Ki`).
pub fn quantity(value: &Value) -> Option<f64> {
    if let Some(n) = value.as_f64() {
        return Some(n);
    }
    let s = value.as_str()?.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        _ if suffix.starts_with(['e', 'E']) => return s.parse().ok(),
        _ => return None,
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

/// Converts one HPA.
fn convert_hpa(
    hpa: &Value,
    controller: &str,
    scraped: &[Scraped],
    renames: &BTreeMap<String, Vec<String>>,
    notes: &mut Vec<String>,
) -> Result<Value, Error> {
    let id = name_of(hpa);
    let spec = &hpa["spec"];
    let mut metrics = Vec::new();
    for metric in spec["metrics"].as_array().into_iter().flatten() {
        let kind = metric["type"].as_str().unwrap_or_default();
        let source = match kind {
            "Object" => &metric["object"],
            "External" => &metric["external"],
            other => {
                notes.push(format!(
                    "not carried over: HorizontalPodAutoscaler {id}: a {other} metric \
                     (AviAutoscalers read Avi metrics only; keep an HPA for it or drop it)"
                ));
                continue;
            }
        };
        metrics.push(convert_metric(&id, source, scraped, renames, notes)?);
    }
    if metrics.is_empty() {
        return Err(Error::Convert(format!(
            "HorizontalPodAutoscaler {id}: no Object or External metric to convert"
        )));
    }
    let mut out = Map::new();
    out.insert("scaleTargetRef".into(), {
        let r = &spec["scaleTargetRef"];
        json!({"apiVersion": r["apiVersion"], "kind": r["kind"], "name": r["name"]})
    });
    out.insert(
        "minReplicas".into(),
        spec.get("minReplicas").cloned().unwrap_or(json!(1)),
    );
    out.insert("maxReplicas".into(), spec["maxReplicas"].clone());
    out.insert("controllerRef".into(), json!({ "name": controller }));
    out.insert("metrics".into(), Value::Array(metrics));
    if let Some(behavior) = spec.get("behavior").filter(|b| !b.is_null()) {
        out.insert("behavior".into(), behavior.clone());
    }
    let meta = &hpa["metadata"];
    let mut metadata = json!({ "name": meta["name"] });
    if let Some(ns) = meta.get("namespace") {
        metadata["namespace"] = ns.clone();
    }
    Ok(json!({
        "apiVersion": format!("{}/{}", api::GROUP, api::VERSION),
        "kind": "AviAutoscaler",
        "metadata": metadata,
        "spec": out,
    }))
}

/// Converts one Object or External metric source.
fn convert_metric(
    id: &str,
    source: &Value,
    scraped: &[Scraped],
    renames: &BTreeMap<String, Vec<String>>,
    notes: &mut Vec<String>,
) -> Result<Value, Error> {
    let name = source["metric"]["name"].as_str().unwrap_or_default();
    let series = series_names(name, renames);
    let mut candidates: Vec<&Scraped> = scraped
        .iter()
        .filter(|s| series.contains(&prometheus_name(&s.metric_id)))
        .collect();
    // A selector on the entity's name picks one of several scraped entities; any other label
    // cannot be mapped.
    if let Some(labels) = source["metric"]["selector"]["matchLabels"].as_object() {
        for (key, value) in labels {
            match (key.as_str(), value.as_str()) {
                ("entity_name" | "name", Some(v)) => candidates.retain(|s| s.entity_name == v),
                _ => notes.push(format!(
                    "not carried over: HorizontalPodAutoscaler {id}: metric {name}: selector \
                     label {key}={value} (Avi is asked for the entity itself)"
                )),
            }
        }
    }
    if source["metric"]["selector"]["matchExpressions"].is_array() {
        notes.push(format!(
            "not carried over: HorizontalPodAutoscaler {id}: metric {name}: selector \
             matchExpressions"
        ));
    }
    candidates.sort();
    candidates.dedup_by(|a, b| {
        a.entity_type == b.entity_type
            && a.entity_name == b.entity_name
            && a.metric_id == b.metric_id
    });
    let found = match candidates.as_slice() {
        [one] => *one,
        [] => {
            return Err(Error::Convert(format!(
                "HorizontalPodAutoscaler {id}: metric {name}: no ServiceMonitor in the input \
                 scrapes it from Avi (looked for {}); pass the ServiceMonitor (and the \
                 Prometheus Adapter's rules if it renames the metric) with -f",
                series.join(", ")
            )));
        }
        many => {
            let list: Vec<String> = many.iter().map(|c| format!("  - {c}")).collect();
            return Err(Error::Convert(format!(
                "HorizontalPodAutoscaler {id}: metric {name} is ambiguous; candidates:\n{}\n\
                 select one with the metric's selector (matchLabels: {{entity_name: ...}}) or \
                 pass only the ServiceMonitor that scrapes it",
                list.join("\n")
            )));
        }
    };
    let target = &source["target"];
    let target = match target["type"].as_str() {
        Some("Value") => {
            let v = quantity(&target["value"]).ok_or_else(|| {
                Error::Convert(format!(
                    "HorizontalPodAutoscaler {id}: metric {name}: target value {} is not a \
                     quantity",
                    target["value"]
                ))
            })?;
            json!({"type": "Value", "value": v})
        }
        Some("AverageValue") => {
            let v = quantity(&target["averageValue"]).ok_or_else(|| {
                Error::Convert(format!(
                    "HorizontalPodAutoscaler {id}: metric {name}: target averageValue {} is \
                     not a quantity",
                    target["averageValue"]
                ))
            })?;
            json!({"type": "AverageValue", "averageValue": v})
        }
        other => {
            return Err(Error::Convert(format!(
                "HorizontalPodAutoscaler {id}: metric {name}: target type {} has no Avi \
                 equivalent (Value or AverageValue)",
                other.unwrap_or("(none)")
            )));
        }
    };
    let mut out = json!({
        "entity": {"type": found.entity_type, "name": found.entity_name},
        "metricId": found.metric_id,
    });
    if found.entity_type == "pool" {
        // Avi's pool-level series is the total over the pool's servers: Sum is what the HPA saw.
        out["aggregation"] = json!("Sum");
        if target["type"] == "Value" {
            notes.push(format!(
                "advice: HorizontalPodAutoscaler {id}: Value {} on the pool total {} grows with \
                 replicas (desired = ceil(replicas x total / target)), so every step multiplies \
                 again; kept as it is to reproduce the HPA, but consider type: AverageValue with \
                 averageValue: {} on the Sum, or aggregation: Average with the same Value",
                target["value"], found.metric_id, target["value"]
            ));
        }
    }
    out["target"] = target;
    Ok(out)
}

/// Checks a converted object against the CRD and resolves it, as the operator would.
fn check(object: &Value) -> Result<(), Error> {
    let invalid = |e: api::InvalidSpec| {
        Error::Convert(format!(
            "the converted AviAutoscaler {} is not valid: {e}",
            name_of(object)
        ))
    };
    crate::validation::admit(object).map_err(invalid)?;
    let typed: api::AviAutoscaler = serde_json::from_value(object.clone())
        .map_err(|e| Error::Convert(format!("the converted AviAutoscaler: {e}")))?;
    crate::validation::resolve(&typed).map_err(invalid)?;
    Ok(())
}

#[cfg(test)]
mod tests;
