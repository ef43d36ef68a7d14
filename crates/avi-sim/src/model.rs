//! The simulated world: tenants, pools, virtual services, service engines and controller
//! nodes, and the metric values they report for a bucket.
//!
//! All traffic comes from the pools' users, through the load model shared with
//! `avi-autoscaler simulate` ([`load_model`]): for a pool, `users × connsPerUser` open
//! connections are spread evenly over the members present at each instant; a member's value
//! for a bucket is the average of its share over the whole bucket (zero while it was not a
//! member), so the members' values always add up to the pool's total. Virtual services add up
//! their pools, service engines their virtual services.

use std::net::Ipv4Addr;

use load_model::{Bucket, Member, Membership, Polyline, Usage};

pub use load_model::Traffic;

use crate::scenario::{JsonPoolAggregate, LoadSpec, Scenario, Tenant};

/// The four entity types of the metrics endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntityType {
    /// `pool`
    Pool,
    /// `virtualservice`
    VirtualService,
    /// `serviceengine`
    ServiceEngine,
    /// `controller`
    Controller,
}

impl EntityType {
    /// The path segment and `type` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pool => "pool",
            Self::VirtualService => "virtualservice",
            Self::ServiceEngine => "serviceengine",
            Self::Controller => "controller",
        }
    }

    /// Parses a path segment.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pool" => Self::Pool,
            "virtualservice" => Self::VirtualService,
            "serviceengine" => Self::ServiceEngine,
            "controller" => Self::Controller,
            _ => return None,
        })
    }

    /// The JSON API's `metric_entity`.
    pub fn metric_entity(self) -> &'static str {
        match self {
            Self::Pool | Self::VirtualService => "VSERVER_METRICS_ENTITY",
            Self::ServiceEngine => "SE_METRICS_ENTITY",
            Self::Controller => "CONTROLLER_METRICS_ENTITY",
        }
    }

    /// The JSON API's `obj_id_type` for the entity itself.
    pub fn obj_id_type(self) -> &'static str {
        match self {
            Self::Pool => "METRICS_OBJ_ID_TYPE_POOL",
            Self::VirtualService => "METRICS_OBJ_ID_TYPE_VIRTUALSERVICE",
            Self::ServiceEngine => "METRICS_OBJ_ID_TYPE_SERVICEENGINE",
            Self::Controller => "METRICS_OBJ_ID_TYPE_CONTROLLER",
        }
    }
}

/// Units, as the JSON API names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Units {
    /// `METRIC_COUNT`
    Count,
    /// `PER_SECOND`
    PerSecond,
    /// `MILLISECONDS`
    Milliseconds,
    /// `PERCENT`
    Percent,
}

impl Units {
    /// The JSON API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "METRIC_COUNT",
            Self::PerSecond => "PER_SECOND",
            Self::Milliseconds => "MILLISECONDS",
            Self::Percent => "PERCENT",
        }
    }

    /// Whether members are summed (counts, rates) rather than averaged.
    fn is_additive(self) -> bool {
        matches!(self, Self::Count | Self::PerSecond)
    }
}

/// What the simulator computes for a metric id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantity {
    /// Average open connections.
    AvgConns,
    /// Largest open connections in the bucket.
    MaxConns,
    /// New connections per second.
    NewConns,
    /// Completed (closed) connections per second.
    ClosedConns,
    /// HTTP requests (and responses) per second.
    Requests,
    /// Response time, ms.
    Latency,
    /// Average open connections per pool member (pool-wide).
    PoolAvgConnsPerServer,
    /// New connections per second, whole pool.
    PoolNewConns,
    /// Completed connections per second, whole pool.
    PoolClosedConns,
    /// Responses per second, whole pool.
    PoolRequests,
    /// Average number of pool members.
    ServerCount,
    /// Health score (always 100).
    HealthScore,
    /// Service engine CPU %.
    SeCpu,
    /// Service engine memory %.
    SeMem,
    /// Controller node CPU %.
    ControllerCpu,
    /// Controller node memory %.
    ControllerMem,
    /// Controller node disk %.
    ControllerDisk,
    /// Client side: largest open connections.
    ClientMaxConns,
    /// Client side: new connections per second.
    ClientNewConns,
    /// Client side: completed connections per second.
    ClientClosedConns,
    /// Client side: requests per second.
    ClientRequests,
}

impl Quantity {
    /// Pool-wide quantities have one value for the pool, whichever member line shows it.
    fn is_pool_wide(self) -> bool {
        matches!(
            self,
            Self::PoolAvgConnsPerServer
                | Self::PoolNewConns
                | Self::PoolClosedConns
                | Self::PoolRequests
                | Self::ServerCount
        )
    }
}

/// One metric the simulator serves.
#[derive(Debug, PartialEq)]
pub struct MetricDef {
    /// The dotted metric id.
    pub id: &'static str,
    /// Which entity type serves it.
    pub entity: EntityType,
    /// Its units.
    pub units: Units,
    /// What `description=true` and the JSON header say about it.
    pub description: &'static str,
    /// Whether `realtime=true` serves it.
    pub realtime: bool,
    /// How it is computed.
    pub quantity: Quantity,
}

impl MetricDef {
    /// `avi_` + the id with dots as underscores.
    pub fn prometheus_name(&self) -> String {
        format!("avi_{}", self.id.replace('.', "_"))
    }
}

macro_rules! metric {
    ($id:literal, $entity:ident, $units:ident, $rt:literal, $q:ident, $desc:literal) => {
        MetricDef {
            id: $id,
            entity: EntityType::$entity,
            units: Units::$units,
            description: $desc,
            realtime: $rt,
            quantity: Quantity::$q,
        }
    };
}

/// Every metric served, in the order an answer without `metric_id` lists them.
pub static CATALOGUE: &[MetricDef] = &[
    metric!(
        "l4_server.avg_open_conns",
        Pool,
        Count,
        true,
        AvgConns,
        "Average number of open connections to the server."
    ),
    metric!(
        "l4_server.max_open_conns",
        Pool,
        Count,
        true,
        MaxConns,
        "Maximum number of open connections to the server."
    ),
    metric!(
        "l4_server.avg_new_established_conns",
        Pool,
        PerSecond,
        true,
        NewConns,
        "Rate of new connections established to the server."
    ),
    metric!(
        "l4_server.avg_complete_conns",
        Pool,
        PerSecond,
        true,
        ClosedConns,
        "Rate of completed connections to the server."
    ),
    metric!(
        "l4_server.avg_pool_open_conns",
        Pool,
        Count,
        true,
        PoolAvgConnsPerServer,
        "Average number of open connections per server of the pool."
    ),
    metric!(
        "l4_server.avg_pool_new_established_conns",
        Pool,
        PerSecond,
        true,
        PoolNewConns,
        "Rate of new connections established across all servers of the pool."
    ),
    metric!(
        "l4_server.avg_pool_complete_conns",
        Pool,
        PerSecond,
        true,
        PoolClosedConns,
        "Rate of completed connections across all servers of the pool."
    ),
    metric!(
        "l4_server.avg_server_count",
        Pool,
        Count,
        true,
        ServerCount,
        "Number of servers of the pool."
    ),
    metric!(
        "l7_server.avg_complete_responses",
        Pool,
        PerSecond,
        true,
        Requests,
        "Rate of HTTP responses from the server."
    ),
    metric!(
        "l7_server.avg_total_requests",
        Pool,
        PerSecond,
        true,
        Requests,
        "Rate of HTTP requests received by the server."
    ),
    metric!(
        "l7_server.avg_pool_complete_responses",
        Pool,
        PerSecond,
        true,
        PoolRequests,
        "Rate of HTTP responses across all servers of the pool."
    ),
    metric!(
        "l7_server.avg_resp_latency",
        Pool,
        Milliseconds,
        true,
        Latency,
        "Average latency measured for the server."
    ),
    metric!(
        "l7_server.avg_application_response_time",
        Pool,
        Milliseconds,
        true,
        Latency,
        "Average server response latency."
    ),
    metric!(
        "healthscore.health_score_value",
        Pool,
        Count,
        false,
        HealthScore,
        "Health score."
    ),
    metric!(
        "l4_client.max_open_conns",
        VirtualService,
        Count,
        true,
        ClientMaxConns,
        "Maximum number of open client connections."
    ),
    metric!(
        "l4_client.avg_new_established_conns",
        VirtualService,
        PerSecond,
        true,
        ClientNewConns,
        "Rate of new client connections."
    ),
    metric!(
        "l4_client.avg_complete_conns",
        VirtualService,
        PerSecond,
        true,
        ClientClosedConns,
        "Rate of completed client connections."
    ),
    metric!(
        "l7_client.avg_total_requests",
        VirtualService,
        PerSecond,
        true,
        ClientRequests,
        "Rate of client HTTP requests."
    ),
    metric!(
        "l7_client.avg_complete_responses",
        VirtualService,
        PerSecond,
        true,
        ClientRequests,
        "Rate of HTTP responses sent to clients."
    ),
    metric!(
        "l7_client.avg_ssl_handshakes_new",
        VirtualService,
        PerSecond,
        true,
        ClientNewConns,
        "Rate of new successful SSL sessions."
    ),
    metric!(
        "l4_server.avg_open_conns",
        VirtualService,
        Count,
        true,
        AvgConns,
        "Average number of open connections to the servers of the virtual service."
    ),
    metric!(
        "l4_server.max_open_conns",
        VirtualService,
        Count,
        true,
        MaxConns,
        "Maximum number of open connections to the servers of the virtual service."
    ),
    metric!(
        "l7_server.avg_complete_responses",
        VirtualService,
        PerSecond,
        true,
        Requests,
        "Rate of HTTP responses from the servers."
    ),
    metric!(
        "l7_server.avg_total_requests",
        VirtualService,
        PerSecond,
        true,
        Requests,
        "Rate of HTTP requests received by the servers."
    ),
    metric!(
        "l7_server.avg_resp_latency",
        VirtualService,
        Milliseconds,
        true,
        Latency,
        "Average latency measured for the servers."
    ),
    metric!(
        "healthscore.health_score_value",
        VirtualService,
        Count,
        false,
        HealthScore,
        "Health score."
    ),
    metric!(
        "se_stats.avg_cpu_usage",
        ServiceEngine,
        Percent,
        true,
        SeCpu,
        "Average CPU usage of the service engine."
    ),
    metric!(
        "se_stats.avg_mem_usage",
        ServiceEngine,
        Percent,
        true,
        SeMem,
        "Average memory usage of the service engine."
    ),
    metric!(
        "healthscore.health_score_value",
        ServiceEngine,
        Count,
        false,
        HealthScore,
        "Health score."
    ),
    metric!(
        "controller_stats.avg_cpu_usage",
        Controller,
        Percent,
        false,
        ControllerCpu,
        "Average CPU usage of the controller node."
    ),
    metric!(
        "controller_stats.avg_mem_usage",
        Controller,
        Percent,
        false,
        ControllerMem,
        "Average memory usage of the controller node."
    ),
    metric!(
        "controller_stats.avg_disk_usage",
        Controller,
        Percent,
        false,
        ControllerDisk,
        "Average disk usage of the controller node."
    ),
];

/// The metric `id` of entity type `entity`, if served.
pub fn metric(entity: EntityType, id: &str) -> Option<&'static MetricDef> {
    CATALOGUE.iter().find(|m| m.entity == entity && m.id == id)
}

/// Every metric of `entity`, or the realtime subset.
pub fn metrics_of(entity: EntityType, realtime: bool) -> Vec<&'static MetricDef> {
    CATALOGUE
        .iter()
        .filter(|m| m.entity == entity && (!realtime || m.realtime))
        .collect()
}

/// A pool and its history.
#[derive(Clone, Debug)]
pub struct PoolState {
    /// Name.
    pub name: String,
    /// UUID.
    pub uuid: String,
    /// Tenant name.
    pub tenant: String,
    /// Realtime metrics enabled.
    pub realtime: bool,
    /// Members over time.
    pub members: Membership,
    /// Users over time.
    pub users: Polyline,
    /// What a user does.
    pub traffic: Traffic,
    /// The first member's address (for the inventory's default port and tests).
    pub first_ip: Ipv4Addr,
    /// Members' port.
    pub port: u16,
}

/// A virtual service.
#[derive(Clone, Debug)]
pub struct VsState {
    /// Name.
    pub name: String,
    /// UUID.
    pub uuid: String,
    /// Tenant name.
    pub tenant: String,
    /// Realtime metrics enabled.
    pub realtime: bool,
    /// Indices of its pools.
    pub pools: Vec<usize>,
}

/// A service engine.
#[derive(Clone, Debug)]
pub struct SeState {
    /// Name.
    pub name: String,
    /// UUID.
    pub uuid: String,
    /// Tenant name.
    pub tenant: String,
    /// Realtime metrics enabled.
    pub realtime: bool,
    /// Indices of its virtual services.
    pub vss: Vec<usize>,
}

/// Everything the controller knows about.
#[derive(Clone, Debug)]
pub struct World {
    /// Tenants, `admin` included.
    pub tenants: Vec<Tenant>,
    /// Pools.
    pub pools: Vec<PoolState>,
    /// Virtual services.
    pub vss: Vec<VsState>,
    /// Service engines.
    pub ses: Vec<SeState>,
    /// Controller node names, one per listener.
    pub nodes: Vec<String>,
}

impl World {
    /// Builds the world of a validated scenario with `node_count` listeners.
    pub fn new(s: &Scenario, node_count: usize) -> Self {
        let pools = s
            .pools
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let first_ip =
                    p.servers
                        .first_ip
                        .unwrap_or(Ipv4Addr::new(10, 244, ((i + 1) % 256) as u8, 10));
                PoolState {
                    name: p.name.clone(),
                    uuid: s.pool_uuid(i),
                    tenant: p.tenant.clone(),
                    realtime: p.realtime,
                    members: Membership::new(p.servers.count, first_ip, p.servers.port),
                    users: p
                        .load
                        .as_ref()
                        .map(LoadSpec::users)
                        .unwrap_or_else(|| Polyline::constant(0.0)),
                    traffic: p
                        .load
                        .as_ref()
                        .map_or_else(|| LoadSpec::constant(0.0).traffic(), LoadSpec::traffic),
                    first_ip,
                    port: p.servers.port,
                }
            })
            .collect::<Vec<_>>();
        let vss = s
            .virtual_services
            .iter()
            .enumerate()
            .map(|(i, v)| VsState {
                name: v.name.clone(),
                uuid: s.vs_uuid(i),
                tenant: v.tenant.clone(),
                realtime: v.realtime,
                pools: v
                    .pools
                    .iter()
                    .filter_map(|r| {
                        pools
                            .iter()
                            .position(|p| p.tenant == v.tenant && (p.name == *r || p.uuid == *r))
                    })
                    .collect(),
            })
            .collect::<Vec<_>>();
        let ses = s
            .service_engines
            .iter()
            .enumerate()
            .map(|(i, e)| SeState {
                name: e.name.clone(),
                uuid: s.se_uuid(i),
                tenant: e.tenant.clone(),
                realtime: e.realtime,
                vss: e
                    .virtual_services
                    .iter()
                    .filter_map(|r| vss.iter().position(|v| v.name == *r || v.uuid == *r))
                    .collect(),
            })
            .collect();
        let nodes = (0..node_count)
            .map(|i| {
                s.controller
                    .node_names
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("node-{}", i + 1))
            })
            .collect();
        Self {
            tenants: s.tenant_list(),
            pools,
            vss,
            ses,
            nodes,
        }
    }

    /// The tenant called `name`.
    pub fn tenant(&self, name: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.name == name)
    }

    /// The pool with this name or UUID; `tenant` narrows the name. Errors say why not.
    pub fn find_pool(&self, key: &str, tenant: Option<&str>) -> Result<usize, String> {
        let hits: Vec<usize> = self
            .pools
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                (p.uuid == key || p.name == key) && tenant.is_none_or(|t| p.tenant == t)
            })
            .map(|(i, _)| i)
            .collect();
        match hits.as_slice() {
            [one] => Ok(*one),
            [] => Err(format!("no pool {key:?}")),
            _ => Err(format!(
                "pool name {key:?} exists in several tenants: give ?tenant= or the uuid"
            )),
        }
    }
}

/// A pool's bucket: each member with samples in it, and the pool as a whole.
#[derive(Clone, Debug)]
pub struct PoolBucket {
    len: f64,
    traffic: Traffic,
    /// Members with samples in the bucket, oldest first.
    pub members: Vec<(Member, MemberValues)>,
    pool: Usage,
}

/// One member's numbers for a bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MemberValues(Usage);

impl MemberValues {
    /// A member with no samples in the bucket.
    pub fn zero() -> Self {
        Self(Usage::default())
    }
}

impl PoolState {
    /// Evaluates the bucket `[a, b)` (seconds since the start).
    pub fn bucket(&self, a: f64, b: f64) -> PoolBucket {
        let bucket = Bucket::of_pool(&self.users, &self.traffic, &self.members, a, b);
        PoolBucket {
            len: bucket.seconds(),
            traffic: self.traffic,
            members: bucket
                .members
                .into_iter()
                .map(|(m, usage)| (m, MemberValues(usage)))
                .collect(),
            pool: bucket.pool,
        }
    }
}

impl PoolBucket {
    /// The pool-wide value of a pool-wide quantity.
    fn pool_wide(&self, q: Quantity) -> f64 {
        let p = &self.pool;
        match q {
            Quantity::PoolAvgConnsPerServer if p.present > 0.0 => p.per_server_integral / p.present,
            Quantity::PoolNewConns => p.new_conns / self.len,
            Quantity::PoolClosedConns => p.closed_conns / self.len,
            Quantity::PoolRequests => p.request_integral / self.len,
            Quantity::ServerCount => p.server_integral / self.len,
            _ => 0.0,
        }
    }

    /// The value of `metric` on `member`'s line.
    pub fn member_value(
        &self,
        member: &MemberValues,
        metric: &MetricDef,
        pool_wide_on_members: bool,
    ) -> f64 {
        let q = metric.quantity;
        if q.is_pool_wide() && pool_wide_on_members {
            return self.pool_wide(q);
        }
        let m = &member.0;
        match q {
            Quantity::AvgConns | Quantity::PoolAvgConnsPerServer => m.conn_integral / self.len,
            Quantity::MaxConns => m.max_conns,
            Quantity::NewConns | Quantity::PoolNewConns => m.new_conns / self.len,
            Quantity::ClosedConns | Quantity::PoolClosedConns => m.closed_conns / self.len,
            Quantity::Requests | Quantity::PoolRequests => m.request_integral / self.len,
            Quantity::Latency => latency(m.present, self.traffic.response_time_ms),
            Quantity::ServerCount => 1.0_f64.min(m.present / self.len),
            Quantity::HealthScore => 100.0,
            _ => 0.0,
        }
    }

    /// The pool-level value (the JSON API without `obj_id`).
    pub fn pool_value(&self, metric: &MetricDef, how: JsonPoolAggregate) -> f64 {
        let q = metric.quantity;
        if q.is_pool_wide() {
            return self.pool_wide(q);
        }
        if q == Quantity::HealthScore {
            return 100.0;
        }
        let values: Vec<f64> = self
            .members
            .iter()
            .map(|(_, v)| self.member_value(v, metric, true))
            .collect();
        let sum: f64 = values.iter().sum();
        let mean = if values.is_empty() {
            0.0
        } else {
            sum / values.len() as f64
        };
        match how {
            JsonPoolAggregate::Sum => sum,
            JsonPoolAggregate::Mean => mean,
            JsonPoolAggregate::ByUnit if metric.units.is_additive() => {
                // The pool's own maximum, not the sum of members' maxima taken at other times.
                if q == Quantity::MaxConns {
                    self.pool.max_conns
                } else {
                    sum
                }
            }
            JsonPoolAggregate::ByUnit => mean,
        }
    }

    /// Average connections per second etc. of the whole pool, for virtual services.
    fn backend(&self) -> (f64, f64, f64, f64) {
        (
            self.pool.conn_integral / self.len,
            self.pool.max_conns,
            self.pool.request_integral / self.len,
            latency(self.pool.present, self.traffic.response_time_ms),
        )
    }
}

fn latency(present: f64, ms: f64) -> f64 {
    if present > 0.0 { ms } else { 0.0 }
}

impl World {
    /// The value of `metric` for virtual service `vs` over `[a, b)`.
    pub fn vs_value(&self, vs: usize, metric: &MetricDef, a: f64, b: f64) -> f64 {
        let pools: Vec<&PoolState> = self.vss[vs].pools.iter().map(|&i| &self.pools[i]).collect();
        let len = b - a;
        let client = |f: &dyn Fn(&PoolState) -> f64| pools.iter().map(|p| f(p)).sum::<f64>();
        match metric.quantity {
            Quantity::ClientMaxConns => max_of_sum(&pools, a, b),
            Quantity::ClientNewConns => {
                client(&|p| p.traffic.conns_per_user * p.users.increase(a, b)) / len
            }
            Quantity::ClientClosedConns => {
                client(&|p| p.traffic.conns_per_user * p.users.decrease(a, b)) / len
            }
            Quantity::ClientRequests => {
                client(&|p| p.traffic.requests_per_user_per_second * p.users.integral(a, b)) / len
            }
            Quantity::AvgConns => pools.iter().map(|p| p.bucket(a, b).backend().0).sum(),
            // Sum of the pools' maxima: exact for one pool, an upper bound for several.
            Quantity::MaxConns => pools.iter().map(|p| p.bucket(a, b).backend().1).sum(),
            Quantity::Requests => pools.iter().map(|p| p.bucket(a, b).backend().2).sum(),
            Quantity::Latency => {
                let served: Vec<f64> = pools
                    .iter()
                    .map(|p| p.bucket(a, b).backend().3)
                    .filter(|&l| l > 0.0)
                    .collect();
                if served.is_empty() {
                    0.0
                } else {
                    served.iter().sum::<f64>() / served.len() as f64
                }
            }
            Quantity::HealthScore => 100.0,
            _ => 0.0,
        }
    }

    /// Average client connections of virtual service `vs` over `[a, b)`.
    fn vs_client_conns(&self, vs: usize, a: f64, b: f64) -> f64 {
        self.vss[vs]
            .pools
            .iter()
            .map(|&i| {
                let p = &self.pools[i];
                load_model::client_conns(&p.users, &p.traffic, a, b)
            })
            .sum::<f64>()
    }

    /// The value of `metric` for service engine `se` over `[a, b)`.
    pub fn se_value(&self, se: usize, metric: &MetricDef, a: f64, b: f64) -> f64 {
        let conns: f64 = self.ses[se]
            .vss
            .iter()
            .map(|&v| self.vs_client_conns(v, a, b))
            .sum();
        match metric.quantity {
            // A small idle cost plus a share per connection, as a busy engine shows.
            Quantity::SeCpu => (1.0 + conns * 0.01).min(100.0),
            Quantity::SeMem => (10.0 + conns * 0.002).min(100.0),
            Quantity::HealthScore => 100.0,
            _ => 0.0,
        }
    }

    /// The value of `metric` for controller node `node` (constant: the simulator does not
    /// model the controller's own load).
    pub fn controller_value(&self, _node: usize, metric: &MetricDef) -> f64 {
        match metric.quantity {
            Quantity::ControllerCpu => 4.0,
            Quantity::ControllerMem => 35.0,
            Quantity::ControllerDisk => 20.0,
            _ => 0.0,
        }
    }
}

/// The largest total client connections of several pools on `[a, b)`: the sum of
/// piecewise-linear functions peaks at one of their vertices.
fn max_of_sum(pools: &[&PoolState], a: f64, b: f64) -> f64 {
    let total = |t: f64, left: bool| -> f64 {
        pools
            .iter()
            .map(|p| {
                p.traffic.conns_per_user
                    * if left {
                        p.users.left_limit(t)
                    } else {
                        p.users.value_at(t)
                    }
            })
            .sum()
    };
    let mut best = total(a, false).max(total(b, true));
    for p in pools {
        for v in p.users.points() {
            if v.t > a && v.t < b {
                best = best.max(total(v.t, false)).max(total(v.t, true));
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{SEED_POOL, SEED_SE, SEED_VS};

    fn seed_world() -> World {
        World::new(&Scenario::builtin("x"), 1)
    }

    fn value(world: &World, id: &str, a: f64, b: f64) -> Vec<(String, f64)> {
        let m = metric(EntityType::Pool, id).unwrap();
        let bucket = world.pools[0].bucket(a, b);
        bucket
            .members
            .iter()
            .map(|(mem, v)| (mem.address(), bucket.member_value(v, m, true)))
            .collect()
    }

    #[test]
    fn catalogue_ids_are_unique_per_type() {
        for (i, a) in CATALOGUE.iter().enumerate() {
            for b in &CATALOGUE[i + 1..] {
                assert!(!(a.entity == b.entity && a.id == b.id), "{} twice", a.id);
            }
        }
        assert_eq!(
            metric(EntityType::Pool, "l4_server.avg_open_conns")
                .unwrap()
                .prometheus_name(),
            "avi_l4_server_avg_open_conns"
        );
    }

    #[test]
    fn readme_lists_every_metric() {
        let readme = include_str!("../README.md");
        for m in CATALOGUE {
            assert!(
                readme.contains(&format!("`{}`", m.id)),
                "README lacks {}",
                m.id
            );
        }
    }

    #[test]
    fn one_member_carries_the_whole_seed_load() {
        let w = seed_world();
        assert_eq!(w.pools[0].name, SEED_POOL);
        let first = value(&w, "l4_server.avg_open_conns", 0.0, 300.0);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].0, "10.244.1.10:8080");
        assert!((first[0].1 - 2000.0 / 3.0).abs() < 1e-9);
        assert_eq!(
            value(&w, "l4_server.avg_open_conns", 300.0, 600.0)[0].1,
            1000.0
        );
        assert_eq!(
            value(&w, "l4_server.max_open_conns", 0.0, 300.0)[0].1,
            1000.0
        );
        assert_eq!(
            value(&w, "l4_server.avg_new_established_conns", 0.0, 300.0)[0].1,
            1000.0 / 300.0
        );
        assert_eq!(
            value(&w, "l4_server.avg_complete_conns", 1200.0, 1500.0)[0].1,
            1000.0 / 300.0
        );
        assert_eq!(
            value(&w, "l4_server.avg_server_count", 0.0, 300.0)[0].1,
            1.0
        );
    }

    #[test]
    fn members_split_the_load_and_add_up_to_the_total() {
        let mut w = seed_world();
        // Scale to 5 members at 450 s, in the middle of the [300, 600) bucket.
        w.pools[0].members.set_count(450.0, 5);
        let mid = value(&w, "l4_server.avg_open_conns", 300.0, 600.0);
        assert_eq!(mid.len(), 5);
        // The first member had everything for 150 s, then a fifth for 150 s.
        assert!((mid[0].1 - (1000.0 * 150.0 + 200.0 * 150.0) / 300.0).abs() < 1e-9);
        for (_, v) in &mid[1..] {
            assert!((v - 100.0).abs() < 1e-9);
        }
        let total: f64 = mid.iter().map(|(_, v)| v).sum();
        assert!((total - 1000.0).abs() < 1e-9);
        let next = value(&w, "l4_server.avg_open_conns", 600.0, 900.0);
        assert!(next.iter().all(|(_, v)| (v - 200.0).abs() < 1e-9));
        assert_eq!(
            value(&w, "l4_server.avg_server_count", 300.0, 600.0)[0].1,
            3.0
        );
        assert_eq!(
            value(&w, "l4_server.avg_pool_open_conns", 600.0, 900.0)[3].1,
            200.0
        );
    }

    #[test]
    fn pool_aggregates_follow_the_choice() {
        let mut w = seed_world();
        w.pools[0].members.set_count(0.0, 4);
        let b = w.pools[0].bucket(300.0, 600.0);
        let conns = metric(EntityType::Pool, "l4_server.avg_open_conns").unwrap();
        let lat = metric(EntityType::Pool, "l7_server.avg_resp_latency").unwrap();
        assert_eq!(b.pool_value(conns, JsonPoolAggregate::ByUnit), 1000.0);
        assert_eq!(b.pool_value(conns, JsonPoolAggregate::Mean), 250.0);
        assert_eq!(b.pool_value(lat, JsonPoolAggregate::ByUnit), 5.0);
        assert_eq!(b.pool_value(lat, JsonPoolAggregate::Sum), 20.0);
    }

    #[test]
    fn client_metrics_keep_counting_when_the_pool_has_no_members() {
        let mut w = seed_world();
        let m = |id| metric(EntityType::VirtualService, id).unwrap();
        let ids = [
            "l4_client.avg_new_established_conns",
            "l4_client.avg_complete_conns",
            "l7_client.avg_complete_responses",
        ];
        let with_members: Vec<f64> = ids
            .iter()
            .map(|id| w.vs_value(0, m(id), 0.0, 3600.0))
            .collect();
        w.pools[0].members.set_count(0.0, 0);
        assert_eq!(w.pools[0].members.count_at(10.0), 0);
        for (id, before) in ids.iter().zip(&with_members) {
            let without = w.vs_value(0, m(id), 0.0, 3600.0);
            assert!(*before > 0.0, "{id} counts clients");
            assert_eq!(without, *before, "{id} with no members");
        }
        // The backend side sees nothing.
        assert_eq!(
            w.vs_value(0, m("l4_server.avg_open_conns"), 0.0, 3600.0),
            0.0
        );
    }

    #[test]
    fn virtual_service_and_engine_follow_the_users() {
        let w = seed_world();
        assert_eq!(w.vss[0].name, SEED_VS);
        assert_eq!(w.ses[0].name, SEED_SE);
        let m = |id| metric(EntityType::VirtualService, id).unwrap();
        assert_eq!(
            w.vs_value(0, m("l4_server.avg_open_conns"), 300.0, 600.0),
            1000.0
        );
        assert_eq!(
            w.vs_value(0, m("l4_client.max_open_conns"), 0.0, 300.0),
            1000.0
        );
        assert_eq!(
            w.vs_value(0, m("l7_client.avg_total_requests"), 300.0, 600.0),
            1000.0
        );
        let cpu = metric(EntityType::ServiceEngine, "se_stats.avg_cpu_usage").unwrap();
        assert_eq!(w.se_value(0, cpu, 300.0, 600.0), 11.0);
        assert_eq!(w.se_value(0, cpu, 3000.0, 3300.0), 1.0);
    }
}
