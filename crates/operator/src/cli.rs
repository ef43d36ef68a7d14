//! The command line: `avi-autoscaler <command>`.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Scale Kubernetes workloads on load-balancer metrics read straight from an Avi controller.
///
/// One AviAutoscaler object names the workload, the Avi pool, virtual service or service
/// engine, the metric and the target; the operator polls the controller, computes replicas with
/// the HorizontalPodAutoscaler's arithmetic and writes the workload's scale subresource.
#[derive(Parser, Debug)]
#[command(
    name = "avi-autoscaler",
    version = crate::identity::VERSION,
    about,
    long_about,
    propagate_version = true
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Arguments of `crd`.
#[derive(Args, Debug)]
pub struct CrdArgs {
    /// Write each CRD to its own file in this directory (`<plural>.<group>.yaml`) instead of
    /// printing the stream.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<std::path::PathBuf>,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the operator: watch AviAutoscalers and scale their targets.
    ///
    /// The Kubernetes configuration is found the usual way: $KUBECONFIG (or ~/.kube/config),
    /// then the in-cluster service account.
    Run(Box<RunArgs>),
    /// Print the CustomResourceDefinitions (AviAutoscaler, then AviController) as one
    /// multi-document YAML stream (apply it with kubectl apply --server-side -f -).
    Crd(CrdArgs),
    /// Replay a scenario through the scaling engine on a virtual clock.
    ///
    /// The scenario file gives an AviAutoscaler, the target's starting replicas, how long new
    /// replicas take to become ready, and for each metric either what Avi reports over time or a
    /// load model (users spawning, connections per user) that is turned into Avi's bucket
    /// averages. One decision per pollingIntervalSeconds, with the engine the operator runs.
    /// Exits with 2 when the scenario is invalid.
    Simulate(SimulateArgs),
    /// Convert a HorizontalPodAutoscaler chain (HPA, the ServiceMonitor scraping the Avi
    /// controller, optionally the Prometheus Adapter's rules) into AviAutoscalers.
    ///
    /// Prints one AviAutoscaler per HPA on standard output, ready for kubectl apply -f -;
    /// advice and what could not be carried over go to standard error. Exits with 1, and says
    /// why, when something cannot be converted faithfully.
    Migrate(MigrateArgs),
    /// Check one AviAutoscaler against the live Avi controller: credentials and login, tenant,
    /// controller version, each entity (with the closest names when one is not found), each
    /// metricId, realtime metrics, each metric's current value; then the decision the operator
    /// would take now.
    ///
    /// Reads only: nothing is written to Avi or Kubernetes. Exits with 0 when every check
    /// passes, 1 otherwise.
    Doctor(DoctorArgs),
}

/// Arguments of `avi-autoscaler doctor`.
#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("object").required(true).args(["file", "name"]))]
pub struct DoctorArgs {
    /// The AviAutoscaler to check, from a YAML file (its Secrets and AviController are read
    /// from the cluster).
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: Option<String>,
    /// The AviAutoscaler to check, by name, from the cluster.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Its namespace; the kubeconfig's namespace when omitted.
    #[arg(short = 'n', long, value_name = "NS")]
    pub namespace: Option<String>,
    /// The namespace the Secrets of AviControllers are read from (as for `run`); when neither
    /// this nor $POD_NAMESPACE is set, the kubeconfig's default namespace.
    #[arg(long, value_name = "NS", env = "POD_NAMESPACE")]
    pub cluster_resource_namespace: Option<String>,
    /// text: one line per check, for people; json: the report, for scripts.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// Output formats of `doctor`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// One line per check.
    Text,
    /// One JSON document.
    Json,
}

/// Arguments of `avi-autoscaler migrate`.
#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// Input manifests (multi-document YAML; `-` reads standard input); repeat the flag.
    #[arg(short = 'f', long = "filename", value_name = "FILE", required = true)]
    pub files: Vec<String>,
    /// Name of the AviController the AviAutoscalers refer to (spec.controllerRef.name).
    #[arg(long, value_name = "NAME")]
    pub controller: String,
}

/// Arguments of `avi-autoscaler simulate`.
#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// The scenario file (YAML); see examples/scenarios/.
    #[arg(long, value_name = "FILE")]
    pub scenario: PathBuf,
    /// table: the ticks where something changed, for people; json: one record per tick; svg: a
    /// chart of metric, target, current and desired replicas.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Output formats of `simulate`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A table for people.
    Table,
    /// A JSON array, one record per tick.
    Json,
    /// An SVG chart.
    Svg,
}

/// Log output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Options of `avi-autoscaler run`.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Watch only these namespaces (repeat the flag or separate with commas); all namespaces
    /// when omitted.
    #[arg(
        long = "namespace",
        value_name = "NS",
        value_delimiter = ',',
        env = "AVI_AUTOSCALER_NAMESPACES"
    )]
    pub namespaces: Vec<String>,

    /// Address of the Prometheus `/metrics` endpoint. The default `[::]` accepts IPv6 and,
    /// where the kernel maps them (Linux's default), IPv4 connections: single-stack IPv6 and
    /// dual-stack pods alike. An IPv4 address such as `0.0.0.0:8080` listens on IPv4 only.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "[::]:8080",
        env = "AVI_AUTOSCALER_METRICS_BIND"
    )]
    pub metrics_bind: SocketAddr,

    /// Address of the `/healthz` and `/readyz` endpoints (may equal --metrics-bind); `[::]`
    /// as for --metrics-bind.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "[::]:8081",
        env = "AVI_AUTOSCALER_HEALTH_BIND"
    )]
    pub health_bind: SocketAddr,

    /// Elect a leader through a Lease, so that of several replicas exactly one scales.
    #[arg(long, env = "AVI_AUTOSCALER_LEADER_ELECTION")]
    pub leader_election: bool,

    /// Namespace of the Lease (the operator's own namespace).
    #[arg(
        long,
        value_name = "NS",
        env = "POD_NAMESPACE",
        default_value = "default"
    )]
    pub lease_namespace: String,

    /// The namespace the Secrets of AviControllers are read from (the operator's own); when
    /// neither this nor $POD_NAMESPACE is set, the kubeconfig's default namespace.
    #[arg(long, value_name = "NS", env = "POD_NAMESPACE")]
    pub cluster_resource_namespace: Option<String>,

    /// Name of the Lease.
    #[arg(long, value_name = "NAME", default_value = "avi-autoscaler")]
    pub lease_name: String,

    /// Seconds a lease stays valid without renewal: a standby takes over within this time
    /// after the leader dies.
    #[arg(long, value_name = "SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(2..=300))]
    pub lease_duration_seconds: u64,

    /// Seconds before expiry at which the leader renews the lease.
    #[arg(long, value_name = "SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=299))]
    pub lease_renew_grace_seconds: u64,

    /// Identity of this replica in the Lease and in Events; defaults to $POD_NAME, then the host
    /// name.
    #[arg(long, value_name = "ID", env = "POD_NAME")]
    pub identity: Option<String>,

    /// Split the AviAutoscalers among N processes: an object belongs to shard
    /// `fnv1a64("<namespace>/<name>") mod N` (docs/sharding.md). Each shard elects its leader on a
    /// Lease of its own, `<lease-name>-<index>` (just `<lease-name>` with one shard).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024), env = "AVI_AUTOSCALER_SHARD_COUNT")]
    pub shard_count: u32,

    /// Which shard this process manages, from 0 to --shard-count minus 1.
    #[arg(
        long,
        value_name = "I",
        default_value_t = 0,
        env = "AVI_AUTOSCALER_SHARD_INDEX"
    )]
    pub shard_index: u32,

    /// Manage only the AviAutoscalers whose labels match this label selector (`team=web`,
    /// `tier in (a,b)`, `!legacy`, terms joined by commas). The API server filters the watch;
    /// shards then split what it passes.
    #[arg(long, value_name = "SELECTOR", value_parser = parse_selector, env = "AVI_AUTOSCALER_SELECTOR")]
    pub selector: Option<kube::core::Selector>,

    /// How many AviAutoscalers are reconciled at the same time.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// Allow AviAutoscalers with an inline `spec.controller` (namespace self-service). Off by
    /// default: such autoscalers get InlineControllerNotAllowed and nothing is read or
    /// requested for them. When on, their Secrets must carry the label
    /// `autoscaling.avi.dev/credentials: "true"`.
    #[arg(long, env = "AVI_AUTOSCALER_ALLOW_INLINE_CONTROLLERS")]
    pub allow_inline_controllers: bool,

    /// Where inline connections may go (repeat the flag or separate with commas): a host name
    /// (`avi.example.com`), `*.domain`, or a CIDR (`10.0.0.0/8`, `fd00::/8`). Host names that
    /// no name pattern matches are resolved, and every address must lie in a CIDR. Any
    /// endpoint when omitted.
    #[arg(
        long = "allowed-endpoints",
        value_name = "PATTERN",
        value_delimiter = ',',
        env = "AVI_AUTOSCALER_ALLOWED_ENDPOINTS"
    )]
    pub allowed_endpoints: Vec<crate::inline::EndpointPattern>,

    /// Allow `tls.insecureSkipVerify: true` on inline connections.
    #[arg(long, env = "AVI_AUTOSCALER_ALLOW_INSECURE_INLINE")]
    pub allow_insecure_inline: bool,

    /// The largest answer read from an Avi controller, in bytes. A larger one is dropped while
    /// it streams in, and its autoscalers report `AviResponseTooLarge`.
    #[arg(long, value_name = "N", default_value_t = 8 << 20, value_parser = clap::value_parser!(u64).range(1024..), env = "AVI_AUTOSCALER_AVI_MAX_RESPONSE_BYTES")]
    pub avi_max_response_bytes: u64,

    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "AVI_AUTOSCALER_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// Log level or filter (`info`, `debug`, `avi_autoscaler=debug,kube=info`); RUST_LOG wins.
    #[arg(
        long,
        value_name = "FILTER",
        default_value = "info",
        env = "AVI_AUTOSCALER_LOG_LEVEL"
    )]
    pub log_level: String,
}

impl RunArgs {
    /// The shard this process manages; an error when the index does not fit the count.
    pub fn shard(&self) -> Result<crate::shard::Shard, String> {
        if self.shard_index >= self.shard_count {
            return Err(format!(
                "--shard-index {} is out of range: with --shard-count {} it must be below {}",
                self.shard_index, self.shard_count, self.shard_count
            ));
        }
        Ok(crate::shard::Shard {
            index: self.shard_index,
            count: self.shard_count,
        })
    }

    /// This replica's identity.
    pub fn identity(&self) -> String {
        self.identity
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_owned())
                    .ok()
                    .filter(|h| !h.is_empty())
                    .unwrap_or_else(|| format!("avi-autoscaler-{}", std::process::id()))
            })
    }
}

/// Parses a label selector in the API server's syntax into kube's [`Selector`]: terms joined by
/// commas, each `key`, `!key`, `key=value`, `key==value`, `key!=value`, `key in (v1,v2)` or
/// `key notin (v1,v2)`; keys and values follow the rules of label keys and values.
///
/// [`Selector`]: kube::core::Selector
pub fn parse_selector(text: &str) -> Result<kube::core::Selector, String> {
    use kube::core::{Expression, Selector};
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0u32, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.checked_sub(1).ok_or("unbalanced ')'")?,
            ',' if depth == 0 => {
                terms.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced '('".into());
    }
    terms.push(&text[start..]);
    let mut expressions = Vec::new();
    for term in terms {
        let term = term.trim();
        if term.is_empty() {
            return Err(format!("an empty term in {text:?}"));
        }
        let set = |values: &str| -> Result<std::collections::BTreeSet<String>, String> {
            let inner = values
                .trim()
                .strip_prefix('(')
                .and_then(|v| v.strip_suffix(')'))
                .ok_or_else(|| format!("{term:?}: the values must be in parentheses"))?;
            inner
                .split(',')
                .map(|v| label_value(v.trim()).map(str::to_owned))
                .collect()
        };
        let expression = if let Some(key) = term.strip_prefix('!') {
            Expression::DoesNotExist(label_key(key.trim())?.to_owned())
        } else if let Some((key, values)) = term.split_once(" notin ") {
            Expression::NotIn(label_key(key.trim())?.to_owned(), set(values)?)
        } else if let Some((key, values)) = term.split_once(" in ") {
            Expression::In(label_key(key.trim())?.to_owned(), set(values)?)
        } else if let Some((key, value)) = term.split_once("!=") {
            Expression::NotEqual(
                label_key(key.trim())?.to_owned(),
                label_value(value.trim())?.to_owned(),
            )
        } else if let Some((key, value)) = term.split_once('=') {
            let value = value.strip_prefix('=').unwrap_or(value);
            Expression::Equal(
                label_key(key.trim())?.to_owned(),
                label_value(value.trim())?.to_owned(),
            )
        } else {
            Expression::Exists(label_key(term)?.to_owned())
        };
        expressions.push(expression);
    }
    Ok(expressions.into_iter().collect::<Selector>())
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name of at most 63
/// characters.
fn label_key(key: &str) -> Result<&str, String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let valid = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            });
        if !valid {
            return Err(format!(
                "{key:?}: the prefix of a label key must be a DNS subdomain"
            ));
        }
    }
    if name.is_empty() || !is_label_name(name) {
        return Err(format!(
            "{key:?} is not a label key: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ));
    }
    Ok(key)
}

/// A label value: empty, or like the name part of a key.
fn label_value(value: &str) -> Result<&str, String> {
    if value.is_empty() || is_label_name(value) {
        Ok(value)
    } else {
        Err(format!(
            "{value:?} is not a label value: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ))
    }
}

fn is_label_name(s: &str) -> bool {
    s.len() <= 63
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse_into_the_api_servers_syntax() {
        for (text, expected) in [
            ("team=web", "team=web"),
            ("team==web", "team=web"),
            ("team!=web", "team!=web"),
            ("team", "team"),
            ("!legacy", "!legacy"),
            (
                "tier in (a, b),example.com/x notin (c)",
                "tier in (a,b),example.com/x notin (c)",
            ),
            ("a=1, b", "a=1,b"),
        ] {
            assert_eq!(
                parse_selector(text).unwrap().to_string(),
                expected,
                "{text}"
            );
        }
    }

    #[test]
    fn a_bad_selector_is_refused_with_a_reason() {
        for text in [
            "",
            "a=1,",
            "tier in (a",
            "tier in a",
            "-bad=1",
            "a=b c",
            "Bad_/x=1",
            "a=(b)",
        ] {
            assert!(parse_selector(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn the_shard_index_must_fit_the_count() {
        let args = |extra: &[&str]| {
            let cli = Cli::try_parse_from(["avi-autoscaler", "run"].iter().chain(extra)).unwrap();
            let Command::Run(args) = cli.command else {
                unreachable!("parsed run")
            };
            args
        };
        assert_eq!(args(&[]).shard().unwrap(), crate::shard::Shard::ALL);
        assert!(
            args(&["--shard-count", "3", "--shard-index", "2"])
                .shard()
                .is_ok()
        );
        let err = args(&["--shard-count", "2", "--shard-index", "2"])
            .shard()
            .unwrap_err();
        assert!(err.contains("below 2"), "{err}");
        assert!(Cli::try_parse_from(["avi-autoscaler", "run", "--shard-count", "0"]).is_err());
    }
}
