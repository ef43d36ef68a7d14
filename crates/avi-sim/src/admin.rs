//! Admin endpoints under `/_sim/`, a prefix the real controller does not use. They exist only
//! on the simulator, need no Avi authentication, are never counted and never meet a fault.
//! Every body is JSON; errors are `{"error": …}` with 400 or 404.

use http::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::faults::FaultSpec;
use crate::http::{Request, Response};
use crate::scenario::{LoadSpec, User};
use crate::sim::{Error, SimHandle};

/// Every admin endpoint, for `GET /_sim/`.
const INDEX: &[(&str, &str)] = &[
    (
        "GET /_sim/state",
        "everything: clock, nodes, tenants, entities, users, faults, settings",
    ),
    ("GET /_sim/clock", "the simulated clock"),
    (
        "POST /_sim/clock",
        "{advanceSeconds | elapsedSeconds | time, timeScale, paused}",
    ),
    (
        "GET /_sim/pools/{pool}",
        "users and members of a pool (name or uuid; ?tenant=)",
    ),
    (
        "PUT /_sim/pools/{pool}/servers",
        "{count}: set the member count",
    ),
    (
        "PUT /_sim/pools/{pool}/users",
        "{users, spawnRate?}: move the users from now on",
    ),
    (
        "PUT /_sim/pools/{pool}/load",
        "a scenario load: replace the users from now on",
    ),
    ("GET /_sim/faults", "installed faults and pending events"),
    (
        "POST /_sim/faults",
        "a fault (scenario syntax): returns {id}",
    ),
    ("DELETE /_sim/faults", "remove every fault"),
    ("DELETE /_sim/faults/{id}", "remove one fault"),
    ("POST /_sim/sessions/expire", "expire every session now"),
    ("GET /_sim/nodes", "nodes, their state and the leader"),
    (
        "POST /_sim/nodes/{index}/down",
        "{durationSeconds?}: refuse connections",
    ),
    ("POST /_sim/nodes/{index}/up", "accept connections again"),
    ("GET /_sim/counters", "requests per endpoint (and per node)"),
    ("DELETE /_sim/counters", "reset the counters"),
    ("GET /_sim/users", "user names"),
    (
        "PUT /_sim/users/{username}",
        "{password, tokens?, tenants?}: add or change a user",
    ),
    (
        "DELETE /_sim/users/{username}",
        "remove a user and their sessions",
    ),
    (
        "PATCH /_sim/controller",
        "{basicAuth?, sessionIdleTimeoutSeconds?, behaviour?: {…}}",
    ),
];

/// Handles an admin request.
pub(crate) async fn handle(sim: &SimHandle, req: &Request) -> Response {
    match route(sim, req).await {
        Ok(resp) => resp,
        Err(e @ Error::NotFound(_)) => Response::error(404, e.to_string()),
        Err(e) => Response::error(400, present::error_chain(&e)),
    }
}

fn body<T: DeserializeOwned>(req: &Request) -> Result<T, Error> {
    let bytes: &[u8] = if req.body.is_empty() {
        b"{}"
    } else {
        &req.body
    };
    serde_json::from_slice(bytes).map_err(|e| Error::Invalid {
        field: "(body)".into(),
        message: e.to_string(),
    })
}

/// Decodes `%XX` escapes in a path segment.
fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let hex = |b: u8| (b as char).to_digit(16);
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 3 <= bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ClockChange {
    advance_seconds: Option<f64>,
    elapsed_seconds: Option<f64>,
    time: Option<jiff::Timestamp>,
    time_scale: Option<f64>,
    paused: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ServerCount {
    count: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Users {
    users: f64,
    spawn_rate: Option<f64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NodeDown {
    duration_seconds: Option<f64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UserChange {
    password: String,
    #[serde(default)]
    tokens: Vec<String>,
    tenants: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ControllerChange {
    basic_auth: Option<bool>,
    session_idle_timeout_seconds: Option<u64>,
    session_clock: Option<crate::scenario::SessionClock>,
    behaviour: Option<serde_json::Map<String, Value>>,
}

async fn route(sim: &SimHandle, req: &Request) -> Result<Response, Error> {
    let segments: Vec<String> = req
        .path
        .split('/')
        .filter(|s| !s.is_empty())
        .skip(1)
        .map(decode)
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let m = &req.method;
    let ok = |v: Value| Ok(Response::ok(&v));
    match (m, segs.as_slice()) {
        (&Method::GET, []) => ok(json!({
            "endpoints": INDEX.iter().map(|(e, d)| json!({"endpoint": e, "description": d})).collect::<Vec<_>>(),
        })),
        (&Method::GET, ["state"]) => ok(sim.state()),
        (&Method::GET, ["clock"]) => ok(json!(sim.clock())),
        (&Method::POST | &Method::PUT, ["clock"]) => {
            let c: ClockChange = body(req)?;
            if let Some(scale) = c.time_scale {
                sim.set_time_scale(scale)?;
            }
            if let Some(p) = c.paused {
                sim.set_paused(p);
            }
            match (c.advance_seconds, c.elapsed_seconds, c.time) {
                (Some(a), None, None) => {
                    sim.advance(a).await?;
                }
                (None, Some(e), None) => {
                    sim.set_elapsed(e).await?;
                }
                (None, None, Some(t)) => {
                    let start = crate::clock::unix_seconds(sim.clock().start);
                    sim.set_elapsed(crate::clock::unix_seconds(t) - start)
                        .await?;
                }
                (None, None, None) => {}
                _ => {
                    return Err(Error::Invalid {
                        field: "advanceSeconds".into(),
                        message: "give one of advanceSeconds, elapsedSeconds, time".into(),
                    });
                }
            }
            ok(json!(sim.clock()))
        }
        (&Method::GET, ["pools"]) => ok(sim.state()["pools"].clone()),
        (_, ["pools", pool, rest @ ..]) => {
            let uuid = sim.find_pool_in(pool, req.param("tenant"))?;
            match (m, rest) {
                (&Method::GET, []) => {}
                (&Method::PUT | &Method::POST, ["servers"]) => {
                    let c: ServerCount = body(req)?;
                    sim.set_pool_servers(&uuid, c.count)?;
                }
                (&Method::PUT | &Method::POST, ["users"]) => {
                    let u: Users = body(req)?;
                    sim.set_pool_users(&uuid, u.users, u.spawn_rate)?;
                }
                (&Method::PUT | &Method::POST, ["load"]) => {
                    let load: LoadSpec = body(req)?;
                    sim.set_pool_load(&uuid, &load)?;
                }
                _ => return Ok(not_found(req)),
            }
            let state = sim.state();
            let pool = state["pools"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p["uuid"] == uuid.as_str()))
                .cloned()
                .unwrap_or(Value::Null);
            ok(pool)
        }
        (&Method::GET, ["faults"]) => ok(json!(sim.faults())),
        (&Method::POST, ["faults"]) => {
            let spec: FaultSpec = body(req)?;
            let id = sim.add_fault(spec).await?;
            Ok(Response::json(StatusCode::CREATED, &json!({"id": id})))
        }
        (&Method::DELETE, ["faults"]) => {
            sim.clear_faults();
            ok(json!({}))
        }
        (&Method::DELETE, ["faults", id]) => {
            let found = id.parse::<u64>().is_ok_and(|id| sim.remove_fault(id));
            if found {
                ok(json!({}))
            } else {
                Err(Error::NotFound(format!("no fault {id}")))
            }
        }
        (&Method::POST, ["sessions", "expire"]) => ok(json!({"expired": sim.expire_sessions()})),
        (&Method::GET, ["nodes"]) => ok(sim.nodes_json()),
        (&Method::POST | &Method::PUT, ["nodes", index, action @ ("up" | "down")]) => {
            let index: usize = index
                .parse()
                .map_err(|_| Error::NotFound(format!("no node {index}")))?;
            if *action == "up" {
                sim.set_node_up(index, true).await?;
            } else {
                let d: NodeDown = body(req)?;
                let mut spec = FaultSpec::new(crate::faults::FaultKind::NodeDown).on_node(index);
                spec.duration_seconds = d.duration_seconds;
                sim.add_fault(spec).await?;
            }
            ok(sim.nodes_json())
        }
        (&Method::GET, ["counters"]) => ok(json!(sim.counters())),
        (&Method::DELETE, ["counters"]) | (&Method::POST, ["counters", "reset"]) => {
            sim.reset_counters();
            ok(json!(sim.counters()))
        }
        (&Method::GET, ["users"]) => ok(json!(sim.usernames())),
        (&Method::PUT | &Method::POST, ["users", name]) => {
            let c: UserChange = body(req)?;
            sim.set_user(User {
                username: name.to_string(),
                password: c.password,
                tokens: c.tokens,
                tenants: c.tenants,
            })?;
            ok(json!(sim.usernames()))
        }
        (&Method::DELETE, ["users", name]) => {
            if sim.remove_user(name) {
                ok(json!(sim.usernames()))
            } else {
                Err(Error::NotFound(format!("no user {name:?}")))
            }
        }
        (&Method::GET, ["controller"]) => ok(json!(sim.settings())),
        (&Method::PATCH | &Method::PUT, ["controller"]) => {
            let c: ControllerChange = body(req)?;
            if let Some(fields) = c.behaviour {
                let mut current = serde_json::to_value(sim.behaviour()).unwrap_or_default();
                if let Some(obj) = current.as_object_mut() {
                    obj.extend(fields);
                }
                let merged = serde_json::from_value(current).map_err(|e| Error::Invalid {
                    field: "behaviour".into(),
                    message: e.to_string(),
                })?;
                sim.set_behaviour(merged)?;
            }
            if let Some(b) = c.basic_auth {
                sim.set_basic_auth(b);
            }
            if let Some(s) = c.session_idle_timeout_seconds {
                sim.set_session_idle_timeout(s);
            }
            if let Some(clock) = c.session_clock {
                sim.set_session_clock(clock);
            }
            ok(json!(sim.settings()))
        }
        _ => Ok(not_found(req)),
    }
}

fn not_found(req: &Request) -> Response {
    Response::error(
        404,
        format!(
            "no admin endpoint {} {} (GET /_sim/ lists them)",
            req.method, req.path
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn readme_lists_every_admin_endpoint() {
        let readme = include_str!("../README.md");
        for (endpoint, _) in super::INDEX {
            assert!(readme.contains(endpoint), "README lacks {endpoint}");
        }
    }

    #[test]
    fn path_segments_are_percent_decoded() {
        assert_eq!(decode("a%2Fb%20c"), "a/b c");
        assert_eq!(decode("plain"), "plain");
        assert_eq!(decode("bad%zz"), "bad%zz");
        assert_eq!(decode("end%2"), "end%2");
        assert_eq!(decode("%é%41"), "%éA");
    }
}
