//! The scenario: a simulated controller described as data.
//!
//! The same structs are read from the YAML file given to `avi-sim --scenario` and built in code
//! by tests. Every field has a default, so `{}` is a valid (empty) controller and
//! [`Scenario::builtin`] is the seed experiment's controller. Field names are camelCase in YAML.

use std::collections::HashSet;
use std::fmt;
use std::net::Ipv4Addr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::faults::FaultSpec;

/// A pool's `load`: the keys `avi-autoscaler simulate` reads too.
pub use load_model::{LoadSpec, SeriesPoint};

/// The seed experiment's pool, named as AKO names the pool of an Ingress host and path:
/// `<cluster>--<host><path with / as _>-<namespace>-<ingress>`.
pub const SEED_POOL: &str = "k8s-03-cluster--kuard.nsx.rockhomelab.org_-routing-ns1-kuard-ingress";
/// The seed experiment's virtual service (AKO's shared L7 parent VS).
pub const SEED_VS: &str = "k8s-03-cluster--Shared-L7-0";
/// The seed experiment's service engine.
pub const SEED_SE: &str = "Avi-se-kuard1";

/// A whole simulated controller.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    /// Controller-wide settings: version, auth, sessions, clock, bucket sizes, behaviours.
    #[serde(default)]
    pub controller: ControllerSettings,
    /// Users who may log in (default: `admin` / `admin`).
    #[serde(default = "default_users")]
    pub users: Vec<User>,
    /// Tenants (the `admin` tenant always exists, listed or not).
    #[serde(default)]
    pub tenants: Vec<TenantSpec>,
    /// Pools, each with its members and its load.
    #[serde(default)]
    pub pools: Vec<PoolSpec>,
    /// Virtual services; their metrics add up the load of their pools.
    #[serde(default)]
    pub virtual_services: Vec<VirtualServiceSpec>,
    /// Service engines; their metrics add up the load of their virtual services.
    #[serde(default)]
    pub service_engines: Vec<ServiceEngineSpec>,
    /// Faults installed at start (each may be delayed with `at`).
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
}

impl Default for Scenario {
    /// An empty controller: settings at their defaults, user `admin`/`admin`, no entities.
    fn default() -> Self {
        Self {
            controller: ControllerSettings::default(),
            users: default_users(),
            tenants: Vec::new(),
            pools: Vec::new(),
            virtual_services: Vec::new(),
            service_engines: Vec::new(),
            faults: Vec::new(),
        }
    }
}

/// Controller-wide settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ControllerSettings {
    /// The controller version: sent in the `AVI_API_VERSION` header, returned by `/login` and
    /// `/api/cluster/version`; a higher `X-Avi-Version` is refused.
    #[serde(default = "default_version")]
    pub version: String,
    /// The cluster's name (`GET /api/cluster`).
    #[serde(default = "default_cluster_name")]
    pub cluster_name: String,
    /// Names of the cluster nodes, one per listener in order (missing ones are `node-<n>`).
    /// The Prometheus `controller` type reports one series per node with its name as `uuid`.
    #[serde(default)]
    pub node_names: Vec<String>,
    /// Whether HTTP basic auth is accepted (`allow_basic_authentication`; off on a real
    /// controller by default, on in the simulator unless `--no-basic-auth`).
    #[serde(default = "yes")]
    pub basic_auth: bool,
    /// A session expires after this many seconds without a request (`api_idle_timeout`,
    /// default 15 min; 0 = never), counted on `sessionClock`.
    #[serde(default = "default_idle")]
    pub session_idle_timeout_seconds: u64,
    /// A session expires this many seconds after login whatever its use
    /// (`api_force_timeout`, default 24 h; 0 = never), counted on `sessionClock`.
    #[serde(default = "default_max_age")]
    pub session_max_age_seconds: u64,
    /// The clock session lifetimes run on: `real` (default: a demo at `timeScale: 60` does not
    /// log its client out every few seconds) or `simulated` (tests expire a session by moving
    /// the simulated clock).
    #[serde(default)]
    pub session_clock: SessionClock,
    /// Simulated seconds per real second (0 freezes the clock).
    #[serde(default = "one")]
    pub time_scale: f64,
    /// The simulated time at start (RFC 3339). Default: the current time rounded down to a
    /// multiple of `metricsPeriodSeconds`, so the load's time 0 is a bucket boundary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Timestamp>,
    /// Start with the clock stopped (tests move it by hand).
    #[serde(default)]
    pub paused: bool,
    /// Bucket size of the regular metrics (Avi: 300 s).
    #[serde(default = "default_period")]
    pub metrics_period_seconds: u64,
    /// Bucket size of realtime metrics (Avi: 5 s).
    #[serde(default = "default_realtime_period")]
    pub realtime_period_seconds: u64,
    /// Bucket size of controller node metrics (Avi tracks them every minute).
    #[serde(default = "default_controller_period")]
    pub controller_period_seconds: u64,
    /// Choices where the real controller's behaviour is not known (see the README).
    #[serde(default)]
    pub behaviour: Behaviour,
}

impl Default for ControllerSettings {
    fn default() -> Self {
        Self {
            version: default_version(),
            cluster_name: default_cluster_name(),
            node_names: Vec::new(),
            basic_auth: true,
            session_idle_timeout_seconds: default_idle(),
            session_max_age_seconds: default_max_age(),
            session_clock: SessionClock::default(),
            time_scale: 1.0,
            start_time: None,
            paused: false,
            metrics_period_seconds: default_period(),
            realtime_period_seconds: default_realtime_period(),
            controller_period_seconds: default_controller_period(),
            behaviour: Behaviour::default(),
        }
    }
}

/// The simulator's answers where the reference marks the controller's behaviour UNKNOWN.
/// Each default is the most plausible choice; each is listed in the crate README.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Behaviour {
    /// Unknown `entity_name`, `entity_id` or `metric_id` on the Prometheus endpoint: `ignore`
    /// (no lines for them, a smaller N) or `error` (400 with `{"error": …}`).
    #[serde(default)]
    pub unknown_selection: UnknownSelection,
    /// Status for a tenant that does not exist (`X-Avi-Tenant`, `tenant=`).
    #[serde(default = "default_unknown_tenant_status")]
    pub unknown_tenant_status: u16,
    /// Status when basic auth is sent while it is switched off.
    #[serde(default = "default_basic_disabled_status")]
    pub basic_auth_disabled_status: u16,
    /// `realtime=true` for an entity without realtime metrics enabled: `omit` its lines or
    /// serve its `slowValues` (the 300 s averages).
    #[serde(default)]
    pub realtime_not_enabled: RealtimeNotEnabled,
    /// Which pool members get lines: those with samples in the reported `bucket` (a removed
    /// member lingers for a bucket, a new one appears once its first bucket closes) or the
    /// `current` members (a new one shows 0.0 at once).
    #[serde(default)]
    pub members: MemberListing,
    /// `l4_server.avg_pool_*` and similar pool-wide metrics on a member's line: the
    /// `poolWide` value repeated on every line, or the `member`'s own share.
    #[serde(default)]
    pub pool_metrics_on_members: PoolMetricsOnMembers,
    /// Between the blocks of several tenants in one Prometheus answer: a `blankLine` or `none`.
    #[serde(default)]
    pub tenant_separator: TenantSeparator,
    /// What `description=true` adds before each sample: `helpAndType` or `helpOnly`.
    #[serde(default)]
    pub description: DescriptionStyle,
    /// Content-Type of the Prometheus text.
    #[serde(default = "default_content_type")]
    pub prometheus_content_type: String,
    /// How the JSON API combines a pool's members when no `obj_id` is given: `byUnit` (sum
    /// counts and rates, average latencies and scores), `sum` or `mean`.
    #[serde(default)]
    pub json_pool_aggregate: JsonPoolAggregate,
    /// What `pad_missing_data=true` puts where a member has no sample: `nullPoints`
    /// (`{"timestamp", "value": 0.0, "is_null": true}`) or `zeros`.
    #[serde(default)]
    pub pad_missing_data: PadMissing,
    /// Whether `X-Avi-Tenant` sets the Prometheus endpoint's tenant when the `tenant`
    /// parameter is absent (`default`) or is ignored (`ignore`).
    #[serde(default)]
    pub prometheus_tenant_header: PrometheusTenantHeader,
    /// Whether `GET /api/cluster/status` needs authentication.
    #[serde(default)]
    pub cluster_status_needs_auth: bool,
    /// Whether nodes other than the leader `serve` API calls or answer them `unavailable`
    /// (503).
    #[serde(default)]
    pub followers: Followers,
    /// Seconds after a bucket ends before it is reported.
    #[serde(default)]
    pub bucket_lag_seconds: f64,
    /// Whether a session write (and `/logout`) without a `Referer` header is refused like a
    /// bad CSRF token (the documentation asks for it; Django enforces it over HTTPS).
    #[serde(default = "yes")]
    pub require_referer: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            unknown_selection: UnknownSelection::default(),
            unknown_tenant_status: default_unknown_tenant_status(),
            basic_auth_disabled_status: default_basic_disabled_status(),
            realtime_not_enabled: RealtimeNotEnabled::default(),
            members: MemberListing::default(),
            pool_metrics_on_members: PoolMetricsOnMembers::default(),
            tenant_separator: TenantSeparator::default(),
            description: DescriptionStyle::default(),
            prometheus_content_type: default_content_type(),
            json_pool_aggregate: JsonPoolAggregate::default(),
            pad_missing_data: PadMissing::default(),
            prometheus_tenant_header: PrometheusTenantHeader::default(),
            cluster_status_needs_auth: false,
            followers: Followers::default(),
            bucket_lag_seconds: 0.0,
            require_referer: true,
        }
    }
}

macro_rules! choice {
    ($(#[$doc:meta])* $name:ident { $(#[$d0:meta])* $default:ident, $($(#[$dn:meta])* $other:ident),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub enum $name {
            $(#[$d0])*
            #[default]
            $default,
            $($(#[$dn])* $other,)*
        }
    };
}

choice!(
    /// See [`ControllerSettings::session_clock`].
    SessionClock {
        /// Real time.
        Real,
        /// The simulated clock.
        Simulated,
    }
);
choice!(
    /// See [`Behaviour::unknown_selection`].
    UnknownSelection {
        /// No lines for them.
        Ignore,
        /// 400 `{"error": …}`.
        Error,
    }
);
choice!(
    /// See [`Behaviour::realtime_not_enabled`].
    RealtimeNotEnabled {
        /// No lines.
        Omit,
        /// The regular-period values.
        SlowValues,
    }
);
choice!(
    /// See [`Behaviour::members`].
    MemberListing {
        /// Members with samples in the reported bucket.
        Bucket,
        /// Current members.
        Current,
    }
);
choice!(
    /// See [`Behaviour::pool_metrics_on_members`].
    PoolMetricsOnMembers {
        /// The pool-wide value on every line.
        PoolWide,
        /// The member's own share.
        Member,
    }
);
choice!(
    /// See [`Behaviour::tenant_separator`].
    TenantSeparator {
        /// An empty line.
        BlankLine,
        /// Nothing.
        None,
    }
);
choice!(
    /// See [`Behaviour::description`].
    DescriptionStyle {
        /// `# HELP` and `# TYPE … gauge`.
        HelpAndType,
        /// `# HELP` only.
        HelpOnly,
    }
);
choice!(
    /// See [`Behaviour::json_pool_aggregate`].
    JsonPoolAggregate {
        /// Sum counts and rates, average latencies and scores.
        ByUnit,
        /// Sum everything.
        Sum,
        /// Average everything.
        Mean,
    }
);
choice!(
    /// See [`Behaviour::pad_missing_data`].
    PadMissing {
        /// Points with `is_null: true`.
        NullPoints,
        /// Points with value 0.0.
        Zeros,
    }
);
choice!(
    /// See [`Behaviour::prometheus_tenant_header`].
    PrometheusTenantHeader {
        /// The header is ignored.
        Ignore,
        /// The header is the default tenant.
        Default,
    }
);
choice!(
    /// See [`Behaviour::followers`].
    Followers {
        /// Every node answers.
        Serve,
        /// Followers answer 503.
        Unavailable,
    }
);

/// A user who may log in.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct User {
    /// The login name.
    pub username: String,
    /// The password.
    pub password: String,
    /// API tokens accepted in place of the password (`/login` with `password` or `token`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<String>,
    /// Tenants the user may use (default: all). The first is the user's default tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenants: Option<Vec<String>>,
}

impl User {
    /// A user with access to every tenant.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
            tokens: Vec::new(),
            tenants: None,
        }
    }
}

impl fmt::Debug for User {
    // Credentials never reach a log line or a test failure message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("tokens", &format_args!("<{} redacted>", self.tokens.len()))
            .field("tenants", &self.tenants)
            .finish()
    }
}

/// A tenant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantSpec {
    /// The tenant's name.
    pub name: String,
    /// Its UUID (default `admin` for the admin tenant, else `tenant-` and a hash of the name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
}

/// A pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PoolSpec {
    /// The pool's name (AKO: `<cluster>--<host><path>-<namespace>-<ingress>` and friends).
    pub name: String,
    /// Its UUID (default `pool-` and a hash of tenant and name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Its tenant.
    #[serde(default = "admin")]
    pub tenant: String,
    /// Its members at start.
    #[serde(default)]
    pub servers: ServersSpec,
    /// Whether realtime metrics are enabled (`analytics_policy.enable_realtime_metrics`).
    #[serde(default)]
    pub realtime: bool,
    /// The users sending traffic to it (none if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadSpec>,
}

/// A pool's members at start. Members added later get the next addresses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServersSpec {
    /// How many.
    #[serde(default = "one_u32")]
    pub count: u32,
    /// The first member's IPv4 address (default `10.244.<pool index + 1>.10`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_ip: Option<Ipv4Addr>,
    /// Their port.
    #[serde(default = "default_port")]
    pub port: u16,
}

impl Default for ServersSpec {
    fn default() -> Self {
        Self {
            count: 1,
            first_ip: None,
            port: default_port(),
        }
    }
}

/// A virtual service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualServiceSpec {
    /// Its name.
    pub name: String,
    /// Its UUID (default `virtualservice-` and a hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Its tenant.
    #[serde(default = "admin")]
    pub tenant: String,
    /// Names (or UUIDs) of its pools, in its tenant.
    #[serde(default)]
    pub pools: Vec<String>,
    /// Whether realtime metrics are enabled (`metrics_realtime_update.enabled`, duration 0).
    #[serde(default)]
    pub realtime: bool,
}

/// A service engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceEngineSpec {
    /// Its name.
    pub name: String,
    /// Its UUID (default `se-` and a hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Its tenant.
    #[serde(default = "admin")]
    pub tenant: String,
    /// Names (or UUIDs) of the virtual services it hosts, in any tenant.
    #[serde(default)]
    pub virtual_services: Vec<String>,
    /// Whether realtime metrics are enabled.
    #[serde(default)]
    pub realtime: bool,
}

/// A scenario that cannot be used, with the field at fault.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ScenarioError {
    /// Where, for example `pools[0].load.spawnRate`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl ScenarioError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl Scenario {
    /// The seed experiment's controller: tenant `admin`, the kuard pool (one member, 1000 users
    /// spawned at 5/s, stopped after 22 minutes), its virtual service and service engine, user
    /// `admin` with `password`, basic auth on, realtime metrics enabled.
    pub fn builtin(password: &str) -> Self {
        Self {
            users: vec![User::new("admin", password)],
            tenants: vec![TenantSpec {
                name: "admin".into(),
                uuid: None,
            }],
            pools: vec![PoolSpec {
                name: SEED_POOL.into(),
                uuid: None,
                tenant: "admin".into(),
                servers: ServersSpec {
                    first_ip: Some(Ipv4Addr::new(10, 244, 1, 10)),
                    ..ServersSpec::default()
                },
                realtime: true,
                load: Some(LoadSpec::seed()),
            }],
            virtual_services: vec![VirtualServiceSpec {
                name: SEED_VS.into(),
                uuid: None,
                tenant: "admin".into(),
                pools: vec![SEED_POOL.into()],
                realtime: true,
            }],
            service_engines: vec![ServiceEngineSpec {
                name: SEED_SE.into(),
                uuid: None,
                tenant: "admin".into(),
                virtual_services: vec![SEED_VS.into()],
                realtime: true,
            }],
            ..Self::default()
        }
    }

    /// Reads a scenario from YAML and validates it. Errors name the field.
    pub fn from_yaml(text: &str) -> Result<Self, ScenarioError> {
        let scenario: Scenario = serde_yaml::from_str(text).map_err(|e| {
            // serde_yaml prefixes the field path ("pools[0].load: …") when it has one.
            let msg = e.to_string();
            match msg.split_once(": ") {
                Some((path, rest)) if looks_like_path(path) => ScenarioError::new(path, rest),
                _ => ScenarioError::new("(document)", msg),
            }
        })?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Checks references, ranges and uniqueness. Errors name the field.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let c = &self.controller;
        if c.version.split('.').any(|p| p.parse::<u32>().is_err()) {
            return Err(ScenarioError::new(
                "controller.version",
                format!("must be dotted numbers like 30.2.1, got {:?}", c.version),
            ));
        }
        if !(c.time_scale.is_finite() && c.time_scale >= 0.0) {
            return Err(ScenarioError::new(
                "controller.timeScale",
                format!("must be a finite number >= 0, got {}", c.time_scale),
            ));
        }
        for (field, v) in [
            ("controller.metricsPeriodSeconds", c.metrics_period_seconds),
            (
                "controller.realtimePeriodSeconds",
                c.realtime_period_seconds,
            ),
            (
                "controller.controllerPeriodSeconds",
                c.controller_period_seconds,
            ),
        ] {
            if v == 0 {
                return Err(ScenarioError::new(field, "must be at least 1"));
            }
        }
        let b = &c.behaviour;
        for (field, status) in [
            (
                "controller.behaviour.unknownTenantStatus",
                b.unknown_tenant_status,
            ),
            (
                "controller.behaviour.basicAuthDisabledStatus",
                b.basic_auth_disabled_status,
            ),
        ] {
            if !(400..=599).contains(&status) {
                return Err(ScenarioError::new(
                    field,
                    format!("must be 400-599, got {status}"),
                ));
            }
        }
        if !(b.bucket_lag_seconds.is_finite() && b.bucket_lag_seconds >= 0.0) {
            return Err(ScenarioError::new(
                "controller.behaviour.bucketLagSeconds",
                format!("must be a finite number >= 0, got {}", b.bucket_lag_seconds),
            ));
        }

        let tenants = self.tenant_list();
        let mut seen = HashSet::new();
        for (i, t) in self.tenants.iter().enumerate() {
            check_name(&format!("tenants[{i}].name"), &t.name)?;
            if !seen.insert(t.name.as_str()) {
                return Err(ScenarioError::new(
                    format!("tenants[{i}].name"),
                    format!("duplicate tenant {:?}", t.name),
                ));
            }
        }
        let known_tenant = |name: &str| tenants.iter().any(|t| t.name == name);

        let mut seen = HashSet::new();
        for (i, u) in self.users.iter().enumerate() {
            check_name(&format!("users[{i}].username"), &u.username)?;
            if !seen.insert(u.username.as_str()) {
                return Err(ScenarioError::new(
                    format!("users[{i}].username"),
                    format!("duplicate user {:?}", u.username),
                ));
            }
            if let Some(list) = &u.tenants {
                if list.is_empty() {
                    return Err(ScenarioError::new(
                        format!("users[{i}].tenants"),
                        "must name at least one tenant (omit it for all)",
                    ));
                }
                for (j, t) in list.iter().enumerate() {
                    if !known_tenant(t) {
                        return Err(ScenarioError::new(
                            format!("users[{i}].tenants[{j}]"),
                            format!("unknown tenant {t:?}"),
                        ));
                    }
                }
            }
        }

        let mut uuids = HashSet::new();
        for t in &tenants {
            uuids.insert(t.uuid.clone());
        }
        let mut names = HashSet::new();
        for (i, p) in self.pools.iter().enumerate() {
            let at = format!("pools[{i}]");
            let entity = (p.name.as_str(), p.tenant.as_str(), self.pool_uuid(i));
            check_entity(&at, "pool", entity, &known_tenant, &mut names, &mut uuids)?;
            if let Some(load) = &p.load {
                load.validate()
                    .map_err(|e| ScenarioError::new(format!("{at}.load.{}", e.field), e.message))?;
            }
        }
        let mut names = HashSet::new();
        for (i, v) in self.virtual_services.iter().enumerate() {
            let at = format!("virtualServices[{i}]");
            let entity = (v.name.as_str(), v.tenant.as_str(), self.vs_uuid(i));
            check_entity(
                &at,
                "virtual service",
                entity,
                &known_tenant,
                &mut names,
                &mut uuids,
            )?;
            for (j, pool) in v.pools.iter().enumerate() {
                let found = self.pools.iter().enumerate().any(|(k, p)| {
                    p.tenant == v.tenant && (p.name == *pool || self.pool_uuid(k) == *pool)
                });
                if !found {
                    return Err(ScenarioError::new(
                        format!("{at}.pools[{j}]"),
                        format!("no pool {pool:?} in tenant {:?}", v.tenant),
                    ));
                }
            }
        }
        let mut names = HashSet::new();
        for (i, s) in self.service_engines.iter().enumerate() {
            let at = format!("serviceEngines[{i}]");
            let entity = (s.name.as_str(), s.tenant.as_str(), self.se_uuid(i));
            check_entity(
                &at,
                "service engine",
                entity,
                &known_tenant,
                &mut names,
                &mut uuids,
            )?;
            for (j, vs) in s.virtual_services.iter().enumerate() {
                let matches = self
                    .virtual_services
                    .iter()
                    .enumerate()
                    .filter(|(k, v)| v.name == *vs || self.vs_uuid(*k) == *vs)
                    .count();
                if matches != 1 {
                    return Err(ScenarioError::new(
                        format!("{at}.virtualServices[{j}]"),
                        if matches == 0 {
                            format!("no virtual service {vs:?}")
                        } else {
                            format!(
                                "{vs:?} names virtual services in several tenants: use the uuid"
                            )
                        },
                    ));
                }
            }
        }
        for (i, f) in self.faults.iter().enumerate() {
            f.validate(None)
                .map_err(|(field, m)| ScenarioError::new(format!("faults[{i}].{field}"), m))?;
        }
        Ok(())
    }

    /// The tenants, the `admin` tenant first if it was not listed, with their UUIDs.
    pub(crate) fn tenant_list(&self) -> Vec<Tenant> {
        let mut out = Vec::new();
        if !self.tenants.iter().any(|t| t.name == "admin") {
            out.push(Tenant {
                name: "admin".into(),
                uuid: "admin".into(),
            });
        }
        out.extend(self.tenants.iter().map(|t| Tenant {
            name: t.name.clone(),
            uuid: t.uuid.clone().unwrap_or_else(|| {
                if t.name == "admin" {
                    "admin".into()
                } else {
                    derived_uuid("tenant", &t.name, "")
                }
            }),
        }));
        out
    }

    /// The UUID of pool `i`.
    pub(crate) fn pool_uuid(&self, i: usize) -> String {
        let p = &self.pools[i];
        p.uuid
            .clone()
            .unwrap_or_else(|| derived_uuid("pool", &p.tenant, &p.name))
    }

    /// The UUID of virtual service `i`.
    pub(crate) fn vs_uuid(&self, i: usize) -> String {
        let v = &self.virtual_services[i];
        v.uuid
            .clone()
            .unwrap_or_else(|| derived_uuid("virtualservice", &v.tenant, &v.name))
    }

    /// The UUID of service engine `i`.
    pub(crate) fn se_uuid(&self, i: usize) -> String {
        let s = &self.service_engines[i];
        s.uuid
            .clone()
            .unwrap_or_else(|| derived_uuid("se", &s.tenant, &s.name))
    }

    /// Sets the password of `username`, adding the user if missing.
    pub fn set_password(&mut self, username: &str, password: &str) {
        match self.users.iter_mut().find(|u| u.username == username) {
            Some(u) => u.password = password.to_string(),
            None => self.users.push(User::new(username, password)),
        }
    }
}

/// A tenant with its UUID resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tenant {
    /// Its name.
    pub name: String,
    /// Its UUID.
    pub uuid: String,
}

/// Checks one entity's name, tenant and uniqueness (name within its tenant, uuid
/// across the whole controller); `at` is the entity's path in the scenario.
fn check_entity<'a>(
    at: &str,
    kind: &str,
    (name, tenant, uuid): (&'a str, &'a str, String),
    known_tenant: &dyn Fn(&str) -> bool,
    names: &mut HashSet<(&'a str, &'a str)>,
    uuids: &mut HashSet<String>,
) -> Result<(), ScenarioError> {
    check_name(&format!("{at}.name"), name)?;
    if !known_tenant(tenant) {
        return Err(ScenarioError::new(
            format!("{at}.tenant"),
            format!("unknown tenant {tenant:?}"),
        ));
    }
    if !names.insert((tenant, name)) {
        return Err(ScenarioError::new(
            format!("{at}.name"),
            format!("duplicate {kind} {name:?} in tenant {tenant:?}"),
        ));
    }
    if !uuids.insert(uuid.clone()) {
        return Err(ScenarioError::new(
            format!("{at}.uuid"),
            format!("duplicate uuid {uuid:?}"),
        ));
    }
    Ok(())
}

fn check_name(field: &str, name: &str) -> Result<(), ScenarioError> {
    if name.is_empty() {
        return Err(ScenarioError::new(field, "must not be empty"));
    }
    if name.len() > 255 {
        return Err(ScenarioError::new(
            field,
            "must be at most 255 characters (Avi refuses longer names)",
        ));
    }
    if name.contains(',') {
        // Names travel as comma-separated lists in `entity_name`.
        return Err(ScenarioError::new(
            field,
            format!("must not contain ',': {name:?}"),
        ));
    }
    Ok(())
}

fn looks_like_path(s: &str) -> bool {
    !s.is_empty()
        && !s.contains(' ')
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '[' | ']' | '_'))
}

/// A UUID-shaped id that is the same for the same entity on every run:
/// `<prefix>-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` from a 128-bit FNV-1a of tenant and name.
pub(crate) fn derived_uuid(prefix: &str, tenant: &str, name: &str) -> String {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    let mut h = OFFSET;
    for b in prefix
        .bytes()
        .chain([0])
        .chain(tenant.bytes())
        .chain([0])
        .chain(name.bytes())
    {
        h ^= u128::from(b);
        h = h.wrapping_mul(PRIME);
    }
    let hex = format!("{h:032x}");
    format!(
        "{prefix}-{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn default_users() -> Vec<User> {
    vec![User::new("admin", "admin")]
}
fn default_version() -> String {
    "30.2.1".into()
}
fn default_cluster_name() -> String {
    "cluster-0-1".into()
}
fn yes() -> bool {
    true
}
fn one() -> f64 {
    1.0
}
fn one_u32() -> u32 {
    1
}
fn admin() -> String {
    "admin".into()
}
fn default_idle() -> u64 {
    15 * 60
}
fn default_max_age() -> u64 {
    24 * 3600
}
fn default_period() -> u64 {
    300
}
fn default_realtime_period() -> u64 {
    5
}
fn default_controller_period() -> u64 {
    60
}
fn default_port() -> u16 {
    8080
}
fn default_unknown_tenant_status() -> u16 {
    404
}
fn default_basic_disabled_status() -> u16 {
    401
}
fn default_content_type() -> String {
    "text/plain; charset=utf-8".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_is_valid_and_round_trips_through_yaml() {
        let s = Scenario::builtin("s3cret");
        s.validate().unwrap();
        let yaml = serde_yaml::to_string(&s).unwrap();
        assert_eq!(Scenario::from_yaml(&yaml).unwrap(), s);
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    #[test]
    fn example_scenarios_are_valid() {
        let seed = Scenario::from_yaml(include_str!("../scenarios/seed.yaml")).unwrap();
        assert_eq!(
            seed,
            Scenario::builtin("admin"),
            "seed.yaml is the built-in controller"
        );
        Scenario::from_yaml(include_str!("../scenarios/cluster.yaml")).unwrap();
        Scenario::from_yaml(include_str!("../scenarios/multi-tenant.yaml")).unwrap();
    }

    #[test]
    fn empty_document_is_an_empty_controller() {
        let s = Scenario::from_yaml("{}").unwrap();
        assert_eq!(s, Scenario::default());
        assert_eq!(s.tenant_list()[0].uuid, "admin");
    }

    #[test]
    fn uuids_are_stable_and_distinct() {
        let a = derived_uuid("pool", "admin", SEED_POOL);
        assert_eq!(a, derived_uuid("pool", "admin", SEED_POOL));
        assert_ne!(a, derived_uuid("pool", "other", SEED_POOL));
        assert_eq!(a.len(), "pool-".len() + 36);
    }

    fn field_of(yaml: &str) -> String {
        Scenario::from_yaml(yaml).unwrap_err().field
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            field_of("pools:\n- name: p\n  load: {maxUsers: 10, spawnRate: -1}\n"),
            "pools[0].load.spawnRate"
        );
        assert_eq!(
            field_of("virtualServices:\n- name: v\n  pools: [nope]\n"),
            "virtualServices[0].pools[0]"
        );
        assert_eq!(
            field_of("pools:\n- name: p\n  tenant: t9\n"),
            "pools[0].tenant"
        );
        assert_eq!(
            field_of("pools:\n- name: p\n  servers: {count: many}\n"),
            "pools[0].servers.count"
        );
        let unknown = Scenario::from_yaml("pools:\n- name: p\n  colour: red\n").unwrap_err();
        assert_eq!(unknown.field, "pools[0]");
        assert!(unknown.message.contains("colour"), "{unknown}");
        assert_eq!(field_of("faults:\n- kind: latency\n"), "faults[0].delayMs");
        assert_eq!(
            field_of("controller: {behaviour: {unknownSelection: maybe}}\n"),
            "controller.behaviour.unknownSelection"
        );
        assert_eq!(
            field_of(
                "pools:\n- name: p\n  load: {series: [{at: 10, users: 1}, {at: 5, users: 2}]}\n"
            ),
            "pools[0].load.series[1].at"
        );
        let twice = Scenario::from_yaml("pools:\n- name: p\n- name: p\n").unwrap_err();
        assert_eq!(twice.field, "pools[1].name");
        assert!(twice.message.contains("duplicate pool \"p\""), "{twice}");
        let twice = Scenario::from_yaml("serviceEngines:\n- name: se\n- name: se\n").unwrap_err();
        assert_eq!(twice.field, "serviceEngines[1].name");
        assert!(
            twice.message.contains("duplicate service engine"),
            "{twice}"
        );
        assert_eq!(
            field_of("pools:\n- name: p\n  uuid: u-1\nvirtualServices:\n- name: v\n  uuid: u-1\n"),
            "virtualServices[0].uuid"
        );
        assert_eq!(
            field_of("virtualServices:\n- name: v\n  tenant: t9\n"),
            "virtualServices[0].tenant"
        );
        // The same name in two tenants is two entities.
        let tenants = "tenants:\n- name: t2\n";
        Scenario::from_yaml(&format!(
            "{tenants}pools:\n- name: p\n- name: p\n  tenant: t2\n"
        ))
        .unwrap();
    }
}
