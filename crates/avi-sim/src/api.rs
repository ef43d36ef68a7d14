//! The controller's REST API as the simulator serves it: login and logout, the metrics
//! endpoints, inventory look-ups, tenants and cluster state.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::auth::{INVALID_CREDENTIALS, Principal};
use crate::clock::unix_seconds;
use crate::http::{Request, Response};
use crate::metrics_json::{self, JsonQuery, iso};
use crate::model::{CATALOGUE, EntityType, World};
use crate::prometheus::{self, PromQuery};
use crate::scenario::{ControllerSettings, Followers, PrometheusTenantHeader, Tenant};
use crate::state::{Shared, lock};

/// Handles one controller API request (not an admin one). `empty` is the empty-result fault.
pub(crate) fn handle(shared: &Shared, req: &Request, empty: bool) -> Response {
    let settings = shared.settings();
    let resp = route(shared, req, &settings, empty);
    resp.with_header("avi_api_version", &settings.version)
}

fn route(shared: &Shared, req: &Request, settings: &ControllerSettings, empty: bool) -> Response {
    if settings.behaviour.followers == Followers::Unavailable && shared.leader() != Some(req.node) {
        return Response::error(503, "INITIALIZING - controller not ready (not the leader)");
    }
    if let Some(v) = req.header("x-avi-version")
        && let Err(msg) = check_version(v, &settings.version)
    {
        return Response::error(400, msg);
    }
    let path = req.path.trim_end_matches('/');
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match (&req.method, segments.as_slice()) {
        (&Method::POST, ["login"]) => return login(shared, req, settings),
        (_, ["login"]) => return Response::error(405, "Method not allowed"),
        (&Method::GET, ["api", "initial-data"]) => {
            return Response::ok(&json!({
                "version": version_json(settings),
                "user_initialized": true,
                "banner": "",
            }));
        }
        (&Method::GET, ["api", "cluster", "status"])
            if !settings.behaviour.cluster_status_needs_auth =>
        {
            return Response::ok(&cluster_runtime(shared, &lock(&shared.world), settings));
        }
        _ => {}
    }
    if segments.first() != Some(&"api") && segments != ["logout"] {
        return Response::error(404, "Not found");
    }
    let now = shared.session_now();
    let auth_settings = shared.auth_settings();
    let principal = match lock(&shared.auth).authenticate(req, now, &auth_settings) {
        Ok(p) => p,
        Err(resp) => return *resp,
    };
    if segments == ["logout"] {
        return logout(shared, req, &principal);
    }
    let resp = authenticated(shared, req, settings, &principal, &segments, empty);
    if principal.basic {
        // A controller answering basic auth still sets the session cookies, to "None".
        resp.with_header("set-cookie", "avi-sessionid=None; HttpOnly; Path=/; Secure")
            .with_header("set-cookie", "sessionid=None; HttpOnly; Path=/; Secure")
    } else {
        resp
    }
}

fn authenticated(
    shared: &Shared,
    req: &Request,
    settings: &ControllerSettings,
    principal: &Principal,
    segments: &[&str],
    empty: bool,
) -> Response {
    // Held for the rest of the request: nothing below takes another lock.
    let world = lock(&shared.world);
    let host = host(req, shared);
    match (&req.method, segments) {
        (&Method::GET, ["api", "analytics", "prometheus-metrics", kind]) => {
            match EntityType::parse(kind) {
                Some(entity) => {
                    prometheus_metrics(shared, req, settings, &world, principal, entity, empty)
                }
                None => Response::error(404, format!("Unknown entity type {kind}")),
            }
        }
        (&Method::GET, ["api", "analytics", "metrics", kind, uuid]) => {
            match EntityType::parse(kind) {
                Some(entity) => json_metrics(
                    shared, req, settings, &world, principal, entity, uuid, empty,
                ),
                None => Response::error(404, format!("Unknown entity type {kind}")),
            }
        }
        (&Method::GET, ["api", "analytics", "metric_id"]) => metric_ids(),
        (&Method::GET, ["api", kind @ ("pool" | "virtualservice" | "serviceengine")]) => {
            inventory(req, settings, &world, principal, kind, None, &host, empty)
        }
        (
            &Method::GET,
            [
                "api",
                kind @ ("pool" | "virtualservice" | "serviceengine"),
                uuid,
            ],
        ) => inventory(
            req,
            settings,
            &world,
            principal,
            kind,
            Some(uuid),
            &host,
            empty,
        ),
        (&Method::GET, ["api", "tenant"]) => tenants(&world, principal, &host, None),
        (&Method::GET, ["api", "tenant", uuid]) => tenants(&world, principal, &host, Some(uuid)),
        (&Method::GET, ["api", "cluster"]) => Response::ok(&cluster(shared, &world, settings)),
        (&Method::GET, ["api", "cluster", "runtime" | "status"]) => {
            Response::ok(&cluster_runtime(shared, &world, settings))
        }
        (&Method::GET, ["api", "cluster", "version"]) => Response::ok(&version_json(settings)),
        (m, _) if *m != Method::GET && *m != Method::POST => {
            Response::error(405, "Method not allowed")
        }
        _ => Response::error(404, "Not found"),
    }
}

/// `POST /logout`: ends the session (a no-op for basic auth) and clears the cookies. Any other
/// method is refused.
fn logout(shared: &Shared, req: &Request, principal: &Principal) -> Response {
    if req.method != Method::POST {
        return Response::error(405, "Method not allowed");
    }
    if let Some(sid) = &principal.session {
        lock(&shared.auth).logout(sid);
    }
    let mut resp = Response::ok(&json!({}));
    for name in ["csrftoken", "avi-sessionid", "sessionid"] {
        resp = resp.with_header(
            "set-cookie",
            &format!("{name}=\"\"; Max-Age=0; Path=/; Secure"),
        );
    }
    resp
}

/// `X-Avi-Version` must be a dotted version not above the controller's.
fn check_version(asked: &str, controller: &str) -> Result<(), String> {
    let parse =
        |s: &str| -> Option<Vec<u32>> { s.trim().split('.').map(|p| p.parse().ok()).collect() };
    let Some(a) = parse(asked) else {
        return Err(format!("Invalid X-Avi-Version {asked:?}"));
    };
    let c = parse(controller).unwrap_or_default();
    if a > c {
        return Err(format!(
            "X-Avi-Version {asked} is newer than the controller's version {controller}"
        ));
    }
    Ok(())
}

fn version_json(settings: &ControllerSettings) -> Value {
    json!({
        "Version": settings.version,
        "build": 9001,
        "Tag": format!("{}-9001-20250101.000000", settings.version),
        "Date": "2025-01-01T00:00:00+00:00",
        "min_version": "15.2",
        "ProductName": "Avi Cloud Controller",
    })
}

fn host(req: &Request, shared: &Shared) -> String {
    req.header("host")
        .map(String::from)
        .unwrap_or_else(|| shared.nodes[req.node].addr.to_string())
}

/// Reads `username` and `password` (or `token`) from a form or JSON body.
fn credentials(req: &Request) -> Option<(String, String)> {
    let is_form = req
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if !is_form && let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&req.body) {
        let get = |k: &str| map.get(k).and_then(Value::as_str).map(String::from);
        return Some((get("username")?, get("password").or_else(|| get("token"))?));
    }
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&req.body)
        .into_owned()
        .collect();
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    Some((get("username")?, get("password").or_else(|| get("token"))?))
}

fn login(shared: &Shared, req: &Request, settings: &ControllerSettings) -> Response {
    let Some((username, secret)) = credentials(req) else {
        return Response::error(401, INVALID_CREDENTIALS);
    };
    let now = shared.session_now();
    let mut auth = lock(&shared.auth);
    let Some((sid, csrf)) = auth.login(&username, &secret, now) else {
        return Response::error(401, INVALID_CREDENTIALS);
    };
    let principal = auth.principal(&username, false, Some(sid.clone()));
    drop(auth);
    let world = lock(&shared.world);
    let host = host(req, shared);
    let allowed = allowed_tenants(&world, Some(&principal));
    let default_tenant = allowed.first().cloned().unwrap_or(Tenant {
        name: "admin".into(),
        uuid: "admin".into(),
    });
    let body = json!({
        "user_initialized": true,
        "version": version_json(settings),
        "user": {
            "username": username,
            "name": username,
            "local": true,
            "is_active": true,
            "default_tenant_ref": format!("https://{host}/api/tenant/{}", default_tenant.uuid),
        },
        "tenants": allowed.iter().map(|t| json!({
            "uuid": t.uuid, "name": t.name, "url": format!("https://{host}/api/tenant/{}", t.uuid),
        })).collect::<Vec<_>>(),
        "session_cookie_name": "avi-sessionid",
    });
    let max_age = settings.session_max_age_seconds.max(1);
    Response::ok(&body)
        .with_header(
            "set-cookie",
            &format!("csrftoken={csrf}; Max-Age=31449600; Path=/; SameSite=Lax; Secure"),
        )
        .with_header(
            "set-cookie",
            &format!(
                "avi-sessionid={sid}; HttpOnly; Max-Age={max_age}; Path=/; SameSite=Lax; Secure"
            ),
        )
        .with_header(
            "set-cookie",
            &format!("sessionid={sid}; HttpOnly; Max-Age={max_age}; Path=/; SameSite=Lax; Secure"),
        )
}

/// The tenants a user may use, in scenario order (their own order first when listed).
fn allowed_tenants(world: &World, principal: Option<&Principal>) -> Vec<Tenant> {
    match principal.and_then(|p| p.tenants.as_ref()) {
        Some(names) => names
            .iter()
            .filter_map(|n| world.tenant(n).cloned())
            .collect(),
        None => world.tenants.clone(),
    }
}

/// Resolves a tenant name for a request: unknown → the configured status, not allowed → 403.
fn resolve_tenant(
    world: &World,
    principal: &Principal,
    settings: &ControllerSettings,
    name: &str,
) -> Result<Tenant, Box<Response>> {
    let Some(t) = world.tenant(name) else {
        return Err(Box::new(Response::error(
            settings.behaviour.unknown_tenant_status,
            format!("Tenant {name} does not exist"),
        )));
    };
    if let Some(list) = &principal.tenants
        && !list.iter().any(|n| n == name)
    {
        return Err(Box::new(Response::error(
            403,
            format!("User {} has no access to tenant {name}", principal.username),
        )));
    }
    Ok(t.clone())
}

/// The tenants a JSON API request works in: `X-Avi-Tenant` (a name or `*`) or
/// `X-Avi-Tenant-UUID`, else the user's default tenant.
fn header_tenants(
    req: &Request,
    world: &World,
    principal: &Principal,
    settings: &ControllerSettings,
) -> Result<Vec<Tenant>, Box<Response>> {
    if let Some(uuid) = req.header("x-avi-tenant-uuid") {
        let name = world
            .tenants
            .iter()
            .find(|t| t.uuid == uuid)
            .map(|t| t.name.clone())
            .ok_or_else(|| {
                Box::new(Response::error(
                    settings.behaviour.unknown_tenant_status,
                    format!("Tenant {uuid} does not exist"),
                ))
            })?;
        return Ok(vec![resolve_tenant(world, principal, settings, &name)?]);
    }
    match req.header("x-avi-tenant") {
        Some("*") => Ok(allowed_tenants(world, Some(principal))),
        Some(name) => Ok(vec![resolve_tenant(world, principal, settings, name)?]),
        None => {
            let default = principal
                .tenants
                .as_ref()
                .and_then(|l| l.first().cloned())
                .unwrap_or_else(|| "admin".into());
            Ok(vec![resolve_tenant(world, principal, settings, &default)?])
        }
    }
}

fn prometheus_metrics(
    shared: &Shared,
    req: &Request,
    settings: &ControllerSettings,
    world: &World,
    principal: &Principal,
    entity: EntityType,
    empty: bool,
) -> Response {
    let mut names = req.list("tenant");
    if names.is_empty() {
        let header = req.header("x-avi-tenant");
        names.push(
            match (settings.behaviour.prometheus_tenant_header, header) {
                (PrometheusTenantHeader::Default, Some(h)) => h.to_string(),
                _ => "admin".to_string(),
            },
        );
    }
    let mut tenants = Vec::new();
    for name in names {
        if name == "*" {
            tenants.extend(
                allowed_tenants(world, Some(principal))
                    .into_iter()
                    .map(|t| t.name),
            );
            continue;
        }
        match resolve_tenant(world, principal, settings, &name) {
            Ok(t) if !tenants.contains(&t.name) => tenants.push(t.name),
            Ok(_) => {}
            Err(resp) => return *resp,
        }
    }
    let (realtime, description) =
        match (req.flag("realtime", false), req.flag("description", false)) {
            (Ok(r), Ok(d)) => (r, d),
            (Err(e), _) | (_, Err(e)) => return Response::error(400, e),
        };
    let q = PromQuery {
        tenants,
        names: req.list("entity_name"),
        ids: req.list("entity_id"),
        metric_ids: req.list("metric_id"),
        realtime,
        description,
    };
    match prometheus::render(
        world,
        entity,
        &q,
        settings,
        shared.clock.start_unix(),
        shared.clock.unix(),
        empty,
    ) {
        Ok(text) => Response::new(
            StatusCode::OK,
            &settings.behaviour.prometheus_content_type,
            text,
        ),
        Err(msg) => Response::error(400, msg),
    }
}

/// Parses an ISO 8601 time as the metrics API takes it (with or without an offset; without
/// one it is UTC).
fn parse_time(s: &str) -> Option<f64> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Some(unix_seconds(t));
    }
    let civil: jiff::civil::DateTime = s.parse().ok()?;
    civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| unix_seconds(z.timestamp()))
}

#[allow(clippy::too_many_arguments)]
fn json_metrics(
    shared: &Shared,
    req: &Request,
    settings: &ControllerSettings,
    world: &World,
    principal: &Principal,
    entity: EntityType,
    uuid: &str,
    empty: bool,
) -> Response {
    let tenants = match header_tenants(req, world, principal, settings) {
        Ok(t) => t,
        Err(resp) => return *resp,
    };
    let in_scope = |t: &str| tenants.iter().any(|x| x.name == t);
    let found = match entity {
        EntityType::Pool => world
            .pools
            .iter()
            .position(|p| p.uuid == uuid && in_scope(&p.tenant))
            .map(|i| (i, world.pools[i].tenant.clone(), world.pools[i].realtime)),
        EntityType::VirtualService => world
            .vss
            .iter()
            .position(|v| v.uuid == uuid && in_scope(&v.tenant))
            .map(|i| (i, world.vss[i].tenant.clone(), world.vss[i].realtime)),
        EntityType::ServiceEngine => world
            .ses
            .iter()
            .position(|s| s.uuid == uuid && in_scope(&s.tenant))
            .map(|i| (i, world.ses[i].tenant.clone(), world.ses[i].realtime)),
        EntityType::Controller => world
            .nodes
            .iter()
            .position(|n| n == uuid)
            .map(|i| (i, "admin".to_string(), false)),
    };
    let Some((index, tenant, realtime_enabled)) = found else {
        return Response::error(404, format!("{} object {uuid} not found", entity.as_str()));
    };
    let metric_ids = req.list("metric_id");
    if metric_ids.is_empty() {
        return Response::error(400, "metric_id is required");
    }
    let allowed_steps = [
        settings.realtime_period_seconds,
        settings.metrics_period_seconds,
        3600,
        86400,
    ];
    let step = match req.param("step").map(str::parse::<u64>) {
        None => settings.metrics_period_seconds,
        Some(Ok(s)) if allowed_steps.contains(&s) => s,
        Some(_) => {
            return Response::error(
                400,
                format!(
                    "step must be one of {}",
                    allowed_steps.map(|s| s.to_string()).join(", ")
                ),
            );
        }
    };
    let limit = match req.param("limit").map(str::parse::<usize>) {
        None => 60,
        Some(Ok(l)) if (1..=100_000).contains(&l) => l,
        Some(_) => return Response::error(400, "limit must be a number from 1 to 100000"),
    };
    let mut times = [None, None];
    for (slot, name) in times.iter_mut().zip(["start", "stop"]) {
        if let Some(s) = req.param(name) {
            match parse_time(s) {
                Some(t) => *slot = Some(t),
                None => {
                    return Response::error(400, format!("{name} is not an ISO 8601 time: {s:?}"));
                }
            }
        }
    }
    let (pad, stats) = match (
        req.flag("pad_missing_data", true),
        req.flag("include_statistics", true),
    ) {
        (Ok(p), Ok(s)) => (p, s),
        (Err(e), _) | (_, Err(e)) => return Response::error(400, e),
    };
    let q = JsonQuery {
        entity,
        index,
        uuid: uuid.to_string(),
        tenant_uuid: world
            .tenant(&tenant)
            .map(|t| t.uuid.clone())
            .unwrap_or(tenant),
        realtime_enabled,
        metric_ids,
        step,
        limit,
        start: times[0],
        stop: times[1],
        obj_id: req
            .param("obj_id")
            .or_else(|| req.param("server"))
            .map(|s| s.replace(' ', ":")),
        pad_missing_data: pad,
        include_statistics: stats,
    };
    match metrics_json::render(
        world,
        &q,
        settings,
        shared.clock.start_unix(),
        shared.clock.unix(),
        empty,
    ) {
        Ok(v) => Response::ok(&v),
        Err((status, msg)) => Response::error(status, msg),
    }
}

fn metric_ids() -> Response {
    let mut results: Vec<Value> = Vec::new();
    for m in CATALOGUE {
        match results.iter_mut().find(|r| r["name"] == m.id) {
            Some(r) => {
                if let Some(types) = r["entity_types"].as_array_mut() {
                    types.push(json!(m.entity.as_str()));
                }
            }
            None => results.push(json!({
                "name": m.id,
                "entity_types": [m.entity.as_str()],
                "units": m.units.as_str(),
                "description": m.description,
            })),
        }
    }
    Response::ok(&json!({"count": results.len(), "results": results}))
}

fn object_ref(host: &str, kind: &str, uuid: &str, name: &str, include_name: bool) -> String {
    if include_name {
        format!("https://{host}/api/{kind}/{uuid}#{name}")
    } else {
        format!("https://{host}/api/{kind}/{uuid}")
    }
}

#[allow(clippy::too_many_arguments)]
fn inventory(
    req: &Request,
    settings: &ControllerSettings,
    world: &World,
    principal: &Principal,
    kind: &str,
    uuid: Option<&str>,
    host: &str,
    empty: bool,
) -> Response {
    let tenants = match header_tenants(req, world, principal, settings) {
        Ok(t) => t,
        Err(resp) => return *resp,
    };
    let include_name = req.flag("include_name", false).unwrap_or(false);
    let tenant_ref = |name: &str| {
        let t = world.tenant(name);
        let uuid = t.map_or(name, |t| t.uuid.as_str());
        object_ref(host, "tenant", uuid, name, include_name)
    };
    let in_scope = |t: &str| tenants.iter().any(|x| x.name == t);
    let mut objects: Vec<(String, String, Value)> = Vec::new(); // (name, uuid, object)
    match kind {
        "pool" => {
            for p in world.pools.iter().filter(|p| in_scope(&p.tenant)) {
                let now_members: Vec<Value> = p
                    .members
                    .all()
                    .iter()
                    .filter(|m| m.to.is_infinite())
                    .map(|m| {
                        json!({
                            "ip": {"addr": m.ip.to_string(), "type": "V4"},
                            "port": m.port, "hostname": m.ip.to_string(),
                            "enabled": true, "ratio": 1,
                        })
                    })
                    .collect();
                let vs_refs: Vec<String> = world
                    .vss
                    .iter()
                    .filter(|v| v.pools.iter().any(|&i| world.pools[i].uuid == p.uuid))
                    .map(|v| object_ref(host, "virtualservice", &v.uuid, &v.name, include_name))
                    .collect();
                objects.push((
                    p.name.clone(),
                    p.uuid.clone(),
                    json!({
                        "url": object_ref(host, "pool", &p.uuid, &p.name, include_name),
                        "uuid": p.uuid, "name": p.name,
                        "tenant_ref": tenant_ref(&p.tenant),
                        "cloud_ref": object_ref(host, "cloud", "cloud-default", "Default-Cloud", include_name),
                        "default_server_port": p.port,
                        "servers": now_members,
                        "analytics_policy": {"enable_realtime_metrics": p.realtime},
                        "vs_refs": vs_refs,
                    }),
                ));
            }
        }
        "virtualservice" => {
            for v in world.vss.iter().filter(|v| in_scope(&v.tenant)) {
                let pool_ref = v.pools.first().map(|&i| {
                    let p = &world.pools[i];
                    object_ref(host, "pool", &p.uuid, &p.name, include_name)
                });
                objects.push((
                    v.name.clone(),
                    v.uuid.clone(),
                    json!({
                        "url": object_ref(host, "virtualservice", &v.uuid, &v.name, include_name),
                        "uuid": v.uuid, "name": v.name,
                        "tenant_ref": tenant_ref(&v.tenant),
                        "enabled": true,
                        "pool_ref": pool_ref,
                        "analytics_policy": {
                            "metrics_realtime_update": {"enabled": v.realtime, "duration": 0},
                        },
                    }),
                ));
            }
        }
        _ => {
            for s in world.ses.iter().filter(|s| in_scope(&s.tenant)) {
                let vs_refs: Vec<String> = s
                    .vss
                    .iter()
                    .map(|&i| {
                        let v = &world.vss[i];
                        object_ref(host, "virtualservice", &v.uuid, &v.name, include_name)
                    })
                    .collect();
                objects.push((
                    s.name.clone(),
                    s.uuid.clone(),
                    json!({
                        "url": object_ref(host, "serviceengine", &s.uuid, &s.name, include_name),
                        "uuid": s.uuid, "name": s.name,
                        "tenant_ref": tenant_ref(&s.tenant),
                        "enable_state": "SE_STATE_ENABLED",
                        "virtualservice_refs": vs_refs,
                    }),
                ));
            }
        }
    }
    if let Some(uuid) = uuid {
        return match objects.into_iter().find(|(_, u, _)| u == uuid) {
            Some((_, _, obj)) if !empty => Response::ok(&obj),
            _ => Response::error(404, format!("{kind} object {uuid} not found")),
        };
    }
    let names = req.list("name");
    let uuids = req.list("uuid");
    let mut hits: Vec<Value> = if empty {
        Vec::new()
    } else {
        objects
            .into_iter()
            .filter(|(n, u, _)| {
                (names.is_empty() || names.contains(n)) && (uuids.is_empty() || uuids.contains(u))
            })
            .map(|(_, _, o)| o)
            .collect()
    };
    let count = hits.len();
    let page_size = req
        .param("page_size")
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(25);
    let page = req
        .param("page")
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1);
    let from = (page - 1).saturating_mul(page_size).min(count);
    let to = from.saturating_add(page_size).min(count);
    let results: Vec<Value> = hits.drain(from..to).collect();
    let mut body = json!({"count": count, "results": results});
    if to < count {
        let mut next: Vec<(String, String)> = req
            .query
            .iter()
            .filter(|(k, _)| k != "page")
            .cloned()
            .collect();
        next.push(("page".into(), (page + 1).to_string()));
        let qs = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(next)
            .finish();
        body["next"] = json!(format!("https://{host}/api/{kind}?{qs}"));
    }
    Response::ok(&body)
}

fn tenants(world: &World, principal: &Principal, host: &str, uuid: Option<&str>) -> Response {
    let list: Vec<Value> = allowed_tenants(world, Some(principal))
        .into_iter()
        .filter(|t| uuid.is_none_or(|u| t.uuid == u))
        .map(|t| {
            json!({"uuid": t.uuid, "name": t.name, "url": format!("https://{host}/api/tenant/{}", t.uuid)})
        })
        .collect();
    match uuid {
        Some(u) => match list.into_iter().next() {
            Some(t) => Response::ok(&t),
            None => Response::error(404, format!("tenant object {u} not found")),
        },
        None => Response::ok(&json!({"count": list.len(), "results": list})),
    }
}

fn cluster(shared: &Shared, world: &World, settings: &ControllerSettings) -> Value {
    let nodes: Vec<Value> = shared
        .nodes
        .iter()
        .zip(&world.nodes)
        .map(|(n, name)| json!({"name": name, "ip": {"addr": n.addr.ip().to_string(), "type": "V4"}}))
        .collect();
    json!({
        "uuid": crate::scenario::derived_uuid("cluster", "admin", &settings.cluster_name),
        "name": settings.cluster_name,
        "nodes": nodes,
    })
}

fn cluster_runtime(shared: &Shared, world: &World, settings: &ControllerSettings) -> Value {
    let total = shared.nodes.len();
    let up = (0..total).filter(|&i| shared.is_up(i)).count();
    let leader = shared.leader();
    let state = if total == 1 {
        "CLUSTER_UP_NO_HA"
    } else if up == total {
        "CLUSTER_UP_HA_ACTIVE"
    } else if up * 2 > total {
        "CLUSTER_UP_HA_COMPROMISED"
    } else {
        "CLUSTER_UP_HA_NOT_READY"
    };
    let since = iso(shared.clock.start_unix() as f64);
    let nodes: Vec<Value> = (0..total)
        .map(|i| {
            json!({
                "name": world.nodes[i],
                "mgmt_ip": shared.nodes[i].addr.ip().to_string(),
                "role": if Some(i) == leader { "CLUSTER_LEADER" } else { "CLUSTER_FOLLOWER" },
                "state": if shared.is_up(i) { "CLUSTER_ACTIVE" } else { "CLUSTER_INACTIVE" },
                "up_since": since,
            })
        })
        .collect();
    json!({
        "cluster_state": {"state": state, "up_since": since, "progress": 100},
        "node_states": nodes,
        "version": settings.version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(check_version("22.1.3", "30.2.1").is_ok());
        assert!(check_version("30.2.1", "30.2.1").is_ok());
        assert!(check_version("30.10.1", "30.2.1").is_err());
        assert!(check_version("latest", "30.2.1").is_err());
    }

    #[test]
    fn times_with_and_without_offset() {
        assert_eq!(parse_time("1970-01-01T00:05:00+00:00"), Some(300.0));
        assert_eq!(parse_time("1970-01-01T00:05:00Z"), Some(300.0));
        assert_eq!(parse_time("1970-01-01T00:05:00"), Some(300.0));
        assert_eq!(parse_time("yesterday"), None);
    }
}
