//! `GET /api/analytics/prometheus-metrics/{type}`: the controller's Prometheus text.
//!
//! Format (reference §2): a first line `# Successfully gathered N metrics for <type>` where N
//! counts the sample lines; no `# HELP`/`# TYPE` unless `description=true`; no timestamps;
//! Python-style floats; labels separated by `", "` in the order `uuid`, `type`, `tenant`,
//! (`server`,) `name`; lines grouped by entity (and by member within a pool); one series per
//! pool member.

use std::collections::HashSet;
use std::fmt::Write as _;

use crate::model::{EntityType, MetricDef, World, metric, metrics_of};
use crate::pyfloat;
use crate::scenario::{
    ControllerSettings, DescriptionStyle, MemberListing, PoolMetricsOnMembers, RealtimeNotEnabled,
    TenantSeparator, UnknownSelection,
};

/// A parsed request.
#[derive(Clone, Debug, Default)]
pub(crate) struct PromQuery {
    pub tenants: Vec<String>,
    pub names: Vec<String>,
    pub ids: Vec<String>,
    pub metric_ids: Vec<String>,
    pub realtime: bool,
    pub description: bool,
}

/// One sample line's labels and value.
struct Line {
    metric: &'static MetricDef,
    server: Option<String>,
    value: f64,
}

/// One entity's lines.
struct Block<'a> {
    uuid: &'a str,
    tenant: &'a str,
    name: Option<&'a str>,
    lines: Vec<Line>,
}

/// Renders the answer, or the message of a 400.
pub(crate) fn render(
    world: &World,
    entity: EntityType,
    q: &PromQuery,
    settings: &ControllerSettings,
    start_unix: i64,
    now_unix: f64,
    empty: bool,
) -> Result<String, String> {
    let b = &settings.behaviour;
    let strict = b.unknown_selection == UnknownSelection::Error;

    let mut metrics: Vec<&'static MetricDef> = Vec::new();
    if q.metric_ids.is_empty() {
        metrics = metrics_of(entity, q.realtime);
    } else {
        for id in &q.metric_ids {
            match metric(entity, id) {
                Some(m) if metrics.contains(&m) => {}
                // Realtime answers carry a subset: the others are left out, not refused.
                Some(m) if q.realtime && !m.realtime => {}
                Some(m) => metrics.push(m),
                None if strict => {
                    return Err(format!("Invalid metric_id {id} for {}", entity.as_str()));
                }
                None => {}
            }
        }
    }

    let names: HashSet<&str> = q.names.iter().map(String::as_str).collect();
    let ids: HashSet<&str> = q.ids.iter().map(String::as_str).collect();
    let selected = |name: &str, uuid: &str| {
        (names.is_empty() && ids.is_empty()) || names.contains(name) || ids.contains(uuid)
    };
    // (tenant, name, uuid, realtime enabled, index) of every entity in the asked tenants.
    let tenants: HashSet<&str> = q.tenants.iter().map(String::as_str).collect();
    let all: Vec<(&str, &str, &str, bool, usize)> = match entity {
        EntityType::Pool => world
            .pools
            .iter()
            .enumerate()
            .map(|(i, p)| {
                (
                    p.tenant.as_str(),
                    p.name.as_str(),
                    p.uuid.as_str(),
                    p.realtime,
                    i,
                )
            })
            .collect(),
        EntityType::VirtualService => world
            .vss
            .iter()
            .enumerate()
            .map(|(i, v)| {
                (
                    v.tenant.as_str(),
                    v.name.as_str(),
                    v.uuid.as_str(),
                    v.realtime,
                    i,
                )
            })
            .collect(),
        EntityType::ServiceEngine => world
            .ses
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (
                    s.tenant.as_str(),
                    s.name.as_str(),
                    s.uuid.as_str(),
                    s.realtime,
                    i,
                )
            })
            .collect(),
        // Controller nodes have no name label; their name is their uuid.
        EntityType::Controller => world
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| ("admin", n.as_str(), n.as_str(), false, i))
            .collect(),
    };
    let entities: Vec<_> = all.into_iter().filter(|e| tenants.contains(e.0)).collect();
    if strict {
        let known_names: HashSet<&str> = entities.iter().map(|e| e.1).collect();
        let known_ids: HashSet<&str> = entities.iter().map(|e| e.2).collect();
        let unknown = names
            .iter()
            .find(|n| !known_names.contains(*n))
            .or_else(|| ids.iter().find(|i| !known_ids.contains(*i)));
        if let Some(x) = unknown {
            return Err(format!(
                "No {} named or with id {x} in tenant(s) {}",
                entity.as_str(),
                q.tenants.join(",")
            ));
        }
    }

    let slow_period = if entity == EntityType::Controller {
        settings.controller_period_seconds
    } else {
        settings.metrics_period_seconds
    };
    let lag = b.bucket_lag_seconds;
    let now_elapsed = now_unix - start_unix as f64;

    let mut tenant_blocks: Vec<Vec<Block>> = Vec::new();
    if !empty {
        for tenant in &q.tenants {
            let mut blocks = Vec::new();
            for &(t, name, uuid, rt_enabled, i) in &entities {
                if t != tenant || !selected(name, uuid) || metrics.is_empty() {
                    continue;
                }
                let period = if q.realtime && rt_enabled {
                    settings.realtime_period_seconds
                } else if q.realtime && b.realtime_not_enabled == RealtimeNotEnabled::Omit {
                    continue;
                } else {
                    slow_period
                };
                // Unix seconds: the controller aligns its buckets to the wall clock.
                let (a_unix, b_unix) = load_model::closed_bucket(now_unix, period as f64, lag);
                let (a, bb) = (a_unix - start_unix as f64, b_unix - start_unix as f64);
                let mut block = Block {
                    uuid,
                    tenant: t,
                    name: (entity != EntityType::Controller).then_some(name),
                    lines: Vec::new(),
                };
                match entity {
                    EntityType::Pool => {
                        let pool = &world.pools[i];
                        let bucket = pool.bucket(a, bb);
                        let pool_wide = b.pool_metrics_on_members == PoolMetricsOnMembers::PoolWide;
                        let rows: Vec<(String, crate::model::MemberValues)> = match b.members {
                            MemberListing::Bucket => bucket
                                .members
                                .iter()
                                .map(|(m, v)| (m.address(), *v))
                                .collect(),
                            MemberListing::Current => pool
                                .members
                                .active_at(now_elapsed)
                                .map(|m| {
                                    let v = bucket
                                        .members
                                        .iter()
                                        .find(|(x, _)| x == m)
                                        .map(|(_, v)| *v)
                                        .unwrap_or_else(crate::model::MemberValues::zero);
                                    (m.address(), v)
                                })
                                .collect(),
                        };
                        for (server, v) in rows {
                            for m in &metrics {
                                block.lines.push(Line {
                                    metric: m,
                                    server: Some(server.clone()),
                                    value: bucket.member_value(&v, m, pool_wide),
                                });
                            }
                        }
                    }
                    EntityType::VirtualService => {
                        for m in &metrics {
                            block.lines.push(Line {
                                metric: m,
                                server: None,
                                value: world.vs_value(i, m, a, bb),
                            });
                        }
                    }
                    EntityType::ServiceEngine => {
                        for m in &metrics {
                            block.lines.push(Line {
                                metric: m,
                                server: None,
                                value: world.se_value(i, m, a, bb),
                            });
                        }
                    }
                    EntityType::Controller => {
                        for m in &metrics {
                            block.lines.push(Line {
                                metric: m,
                                server: None,
                                value: world.controller_value(i, m),
                            });
                        }
                    }
                }
                if !block.lines.is_empty() {
                    blocks.push(block);
                }
            }
            if !blocks.is_empty() {
                tenant_blocks.push(blocks);
            }
        }
    }

    let n: usize = tenant_blocks.iter().flatten().map(|b| b.lines.len()).sum();
    let mut out = format!(
        "# Successfully gathered {n} metrics for {}\n",
        entity.as_str()
    );
    for (ti, blocks) in tenant_blocks.iter().enumerate() {
        if ti > 0 && b.tenant_separator == TenantSeparator::BlankLine {
            out.push('\n');
        }
        for block in blocks {
            for line in &block.lines {
                let name = line.metric.prometheus_name();
                if q.description {
                    let _ = writeln!(out, "# HELP {name} {}", line.metric.description);
                    if b.description == DescriptionStyle::HelpAndType {
                        let _ = writeln!(out, "# TYPE {name} gauge");
                    }
                }
                let _ = write!(
                    out,
                    "{name}{{uuid=\"{}\", type=\"{}\", tenant=\"{}\"",
                    escape(block.uuid),
                    entity.as_str(),
                    escape(block.tenant)
                );
                if let Some(server) = &line.server {
                    let _ = write!(out, ", server=\"{}\"", escape(server));
                }
                if let Some(n) = block.name {
                    let _ = write!(out, ", name=\"{}\"", escape(n));
                }
                let _ = writeln!(out, "}} {}", pyfloat::repr(line.value));
            }
        }
    }
    Ok(out)
}

/// Escapes a label value as the text format requires.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{SEED_POOL, Scenario};

    fn q(tenants: &[&str]) -> PromQuery {
        PromQuery {
            tenants: tenants.iter().map(|s| s.to_string()).collect(),
            ..PromQuery::default()
        }
    }

    #[test]
    fn one_pool_member_line_per_metric() {
        let s = Scenario::builtin("x");
        let world = World::new(&s, 1);
        let mut query = q(&["admin"]);
        query.metric_ids = vec!["l4_server.avg_open_conns".into()];
        let start = 1_767_225_600;
        let text = render(
            &world,
            EntityType::Pool,
            &query,
            &s.controller,
            start,
            start as f64 + 650.0,
            false,
        )
        .unwrap();
        let uuid = &world.pools[0].uuid;
        assert_eq!(
            text,
            format!(
                "# Successfully gathered 1 metrics for pool\n\
                 avi_l4_server_avg_open_conns{{uuid=\"{uuid}\", type=\"pool\", tenant=\"admin\", \
                 server=\"10.244.1.10:8080\", name=\"{SEED_POOL}\"}} 1000.0\n"
            )
        );
    }

    #[test]
    fn unknown_selection_is_ignored_or_refused() {
        let mut s = Scenario::builtin("x");
        let world = World::new(&s, 1);
        let mut query = q(&["admin"]);
        query.names = vec!["nope".into()];
        query.metric_ids = vec!["no.such_metric".into()];
        let text = render(
            &world,
            EntityType::Pool,
            &query,
            &s.controller,
            0,
            0.0,
            false,
        )
        .unwrap();
        assert_eq!(text, "# Successfully gathered 0 metrics for pool\n");
        s.controller.behaviour.unknown_selection = UnknownSelection::Error;
        assert!(
            render(
                &world,
                EntityType::Pool,
                &query,
                &s.controller,
                0,
                0.0,
                false
            )
            .is_err()
        );
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
