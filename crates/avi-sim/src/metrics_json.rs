//! `GET /api/analytics/metrics/{type}/{uuid}/`: the JSON metrics API (reference §3).
//!
//! One series per metric (per member with `obj_id=*`), each `{header, data}`; data points are
//! `{timestamp, value}` at bucket ends (ISO 8601 with `+00:00`), oldest first; the header
//! carries units, ids and statistics.

use serde_json::{Map, Value, json};

use crate::clock::timestamp;
use crate::model::{EntityType, MetricDef, World, metric};
use crate::scenario::{ControllerSettings, PadMissing, UnknownSelection};

/// A parsed request for one entity.
#[derive(Clone, Debug)]
pub(crate) struct JsonQuery {
    pub entity: EntityType,
    pub index: usize,
    pub uuid: String,
    pub tenant_uuid: String,
    pub realtime_enabled: bool,
    pub metric_ids: Vec<String>,
    pub step: u64,
    pub limit: usize,
    pub start: Option<f64>,
    pub stop: Option<f64>,
    /// `obj_id` / `server`: `*` or `ip:port` (pools only).
    pub obj_id: Option<String>,
    pub pad_missing_data: bool,
    pub include_statistics: bool,
}

/// ISO 8601 with `+00:00`, as the controller writes times.
pub(crate) fn iso(unix: f64) -> String {
    let t = timestamp(unix);
    let s = t.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    format!("{s}+00:00")
}

/// One series before it becomes JSON.
struct Series {
    metric: &'static MetricDef,
    /// `(ip:port)` for a member series.
    server: Option<String>,
    /// `(bucket end, value or None when missing)`.
    points: Vec<(f64, Option<f64>)>,
}

/// Builds the answer, or a status and message.
pub(crate) fn render(
    world: &World,
    q: &JsonQuery,
    settings: &ControllerSettings,
    start_unix: i64,
    now_unix: f64,
    empty: bool,
) -> Result<Value, (u16, String)> {
    let b = &settings.behaviour;
    let mut metrics: Vec<&'static MetricDef> = Vec::new();
    for id in &q.metric_ids {
        match metric(q.entity, id) {
            Some(m) if !metrics.contains(&m) => metrics.push(m),
            Some(_) => {}
            None if b.unknown_selection == UnknownSelection::Error => {
                return Err((
                    400,
                    format!("Invalid metric_id {id} for {}", q.entity.as_str()),
                ));
            }
            None => {}
        }
    }

    let step = q.step as f64;
    let (_, last_end) = load_model::closed_bucket(now_unix, step, b.bucket_lag_seconds);
    let last_end = match q.stop {
        Some(stop) => last_end.min((stop / step).floor() * step),
        None => last_end,
    };
    let mut ends: Vec<f64> = Vec::new();
    match q.start {
        Some(start) => {
            let mut e = (start / step).ceil() * step + step;
            while e <= last_end {
                ends.push(e);
                e += step;
            }
            // Keep the newest `limit` buckets.
            if ends.len() > q.limit {
                ends.drain(..ends.len() - q.limit);
            }
        }
        None => {
            for k in (0..q.limit).rev() {
                ends.push(last_end - k as f64 * step);
            }
        }
    }
    let realtime_step = q.step == settings.realtime_period_seconds;
    // Realtime buckets exist only for entities with realtime metrics enabled.
    let no_data = empty || (realtime_step && !q.realtime_enabled);
    let to_elapsed = |u: f64| u - start_unix as f64;

    let mut series: Vec<Series> = Vec::new();
    for m in &metrics {
        match (q.entity, &q.obj_id) {
            (EntityType::Pool, Some(obj)) => {
                let pool = &world.pools[q.index];
                let window = (
                    to_elapsed(ends.first().copied().unwrap_or(last_end) - step),
                    to_elapsed(ends.last().copied().unwrap_or(last_end)),
                );
                let members: Vec<_> = pool
                    .members
                    .all()
                    .iter()
                    .filter(|mem| {
                        (obj == "*" && mem.overlaps(window.0, window.1)) || mem.address() == *obj
                    })
                    .cloned()
                    .collect();
                for mem in members {
                    let points = ends
                        .iter()
                        .map(|&e| {
                            let (a, bb) = (to_elapsed(e - step), to_elapsed(e));
                            let bucket = pool.bucket(a, bb);
                            let v = bucket
                                .members
                                .iter()
                                .find(|(x, _)| *x == mem)
                                .map(|(_, v)| bucket.member_value(v, m, true));
                            (e, if no_data { None } else { v })
                        })
                        .collect();
                    series.push(Series {
                        metric: m,
                        server: Some(mem.address()),
                        points,
                    });
                }
            }
            _ => {
                let points = ends
                    .iter()
                    .map(|&e| {
                        let (a, bb) = (to_elapsed(e - step), to_elapsed(e));
                        let v = match q.entity {
                            EntityType::Pool => world.pools[q.index]
                                .bucket(a, bb)
                                .pool_value(m, b.json_pool_aggregate),
                            EntityType::VirtualService => world.vs_value(q.index, m, a, bb),
                            EntityType::ServiceEngine => world.se_value(q.index, m, a, bb),
                            EntityType::Controller => world.controller_value(q.index, m),
                        };
                        (e, (!no_data).then_some(v))
                    })
                    .collect();
                series.push(Series {
                    metric: m,
                    server: None,
                    points,
                });
            }
        }
    }

    let start = ends.first().map_or(last_end - step, |e| e - step);
    let stop = ends.last().copied().unwrap_or(last_end);
    let series: Vec<Value> = series
        .iter()
        .map(|s| series_json(s, q, b.pad_missing_data, step, world))
        .collect();
    Ok(json!({
        "entity_uuid": q.uuid,
        "metric_entity": q.entity.metric_entity(),
        "metric_id": q.metric_ids.join(","),
        "start": iso(start),
        "stop": iso(stop),
        "step": q.step,
        "limit": q.limit,
        "series": series,
    }))
}

fn series_json(s: &Series, q: &JsonQuery, pad: PadMissing, step: f64, world: &World) -> Value {
    let mut header = Map::new();
    header.insert("name".into(), json!(s.metric.id));
    header.insert("entity_uuid".into(), json!(q.uuid));
    header.insert("tenant_uuid".into(), json!(q.tenant_uuid));
    header.insert("units".into(), json!(s.metric.units.as_str()));
    header.insert("metric_description".into(), json!(s.metric.description));
    header.insert("priority".into(), json!(true));
    match &s.server {
        Some(server) => {
            header.insert("obj_id".into(), json!(server));
            header.insert("obj_id_type".into(), json!("METRICS_OBJ_ID_TYPE_SERVER"));
            header.insert("server".into(), json!(server));
        }
        None => {
            header.insert("obj_id".into(), json!(q.uuid));
            header.insert("obj_id_type".into(), json!(q.entity.obj_id_type()));
        }
    }
    if q.entity == EntityType::Pool {
        header.insert("pool_uuid".into(), json!(world.pools[q.index].uuid));
    }

    let present: Vec<(f64, f64)> = s
        .points
        .iter()
        .filter_map(|(t, v)| v.map(|v| (*t, v)))
        .collect();
    if q.include_statistics && !present.is_empty() {
        let (min_ts, min) = present
            .iter()
            .copied()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or_default();
        let (max_ts, max) = present
            .iter()
            .copied()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or_default();
        let sum: f64 = present.iter().map(|p| p.1).sum();
        let n = present.len();
        let first = present[0].1;
        let last = present[n - 1].1;
        header.insert(
            "statistics".into(),
            json!({
                "min": min, "min_ts": iso(min_ts),
                "max": max, "max_ts": iso(max_ts),
                "mean": sum / n as f64, "sum": sum,
                "num_samples": n,
                // Change per sample across the window.
                "trend": if n > 1 { (last - first) / (n - 1) as f64 } else { 0.0 },
                "last_sample": last,
            }),
        );
    }
    let missing: Vec<Value> = s
        .points
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(t, _)| json!({"start": iso(t - step), "end": iso(*t)}))
        .collect();
    if !missing.is_empty() && q.pad_missing_data {
        header.insert("missing_intervals".into(), Value::Array(missing));
    }

    let data: Vec<Value> = s
        .points
        .iter()
        .filter_map(|(t, v)| match (v, q.pad_missing_data, pad) {
            (Some(v), _, _) => Some(json!({"timestamp": iso(*t), "value": v})),
            (None, false, _) => None,
            (None, true, PadMissing::NullPoints) => {
                Some(json!({"timestamp": iso(*t), "value": 0.0, "is_null": true}))
            }
            (None, true, PadMissing::Zeros) => Some(json!({"timestamp": iso(*t), "value": 0.0})),
        })
        .collect();
    let mut out = Map::new();
    out.insert("header".into(), Value::Object(header));
    // Without padding, a series with no samples has no `data` key at all, which Avi's own
    // scripts read as "no value".
    if !data.is_empty() {
        out.insert("data".into(), Value::Array(data));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    fn query(world: &World) -> JsonQuery {
        JsonQuery {
            entity: EntityType::Pool,
            index: 0,
            uuid: world.pools[0].uuid.clone(),
            tenant_uuid: "admin".into(),
            realtime_enabled: true,
            metric_ids: vec!["l4_server.avg_open_conns".into()],
            step: 300,
            limit: 1,
            start: None,
            stop: None,
            obj_id: None,
            pad_missing_data: true,
            include_statistics: true,
        }
    }

    #[test]
    fn latest_sample_at_the_bucket_end() {
        let s = Scenario::builtin("x");
        let world = World::new(&s, 1);
        let start = 1_767_225_600; // 2026-01-01T00:00:00Z
        let v = render(
            &world,
            &query(&world),
            &s.controller,
            start,
            start as f64 + 650.0,
            false,
        )
        .unwrap();
        assert_eq!(v["start"], "2026-01-01T00:05:00+00:00");
        assert_eq!(v["stop"], "2026-01-01T00:10:00+00:00");
        let data = &v["series"][0]["data"];
        assert_eq!(data[0]["timestamp"], "2026-01-01T00:10:00+00:00");
        assert_eq!(data[0]["value"], 1000.0);
        assert_eq!(v["series"][0]["header"]["statistics"]["num_samples"], 1);
    }

    #[test]
    fn members_missing_from_a_bucket_are_padded_or_left_out() {
        let s = Scenario::builtin("x");
        let mut world = World::new(&s, 1);
        world.pools[0].members.set_count(600.0, 2);
        let start = 0;
        let mut q = query(&world);
        q.obj_id = Some("*".into());
        q.limit = 3;
        let v = render(&world, &q, &s.controller, start, 900.0, false).unwrap();
        let series = v["series"].as_array().unwrap();
        assert_eq!(series.len(), 2);
        let newer = &series[1];
        assert_eq!(newer["header"]["server"], "10.244.1.11:8080");
        assert_eq!(newer["data"][0]["is_null"], true);
        assert_eq!(newer["data"][2]["value"], 500.0);
        q.pad_missing_data = false;
        let v = render(&world, &q, &s.controller, start, 900.0, false).unwrap();
        assert_eq!(v["series"][1]["data"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn empty_realtime_without_realtime_enabled() {
        let s = Scenario::builtin("x");
        let world = World::new(&s, 1);
        let mut q = query(&world);
        q.step = 5;
        q.realtime_enabled = false;
        q.pad_missing_data = false;
        let v = render(&world, &q, &s.controller, 0, 900.0, false).unwrap();
        assert!(v["series"][0].get("data").is_none());
    }
}
