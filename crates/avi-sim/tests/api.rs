//! The controller API over HTTPS with a real client: every auth path, tenants, each parameter
//! of the metrics endpoints, inventory and cluster look-ups.

mod support;

use avi_sim::{Scenario, User};
use serde_json::Value;
use support::{get_basic, login, set_cookie, start};

fn tenants_scenario() -> Scenario {
    Scenario::from_yaml(include_str!("fixtures/tenants.yaml")).expect("fixture is valid")
}

async fn json(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, value)
}

// ---------- authentication ----------

#[tokio::test]
async fn basic_auth_good_bad_missing_and_disabled() {
    let (sim, client) = start(tenants_scenario()).await;
    let url = format!("{}/api/pool", sim.url());
    let (status, _) = get_basic(&client, &url, "pw").await;
    assert_eq!(status, 200);

    let (status, body) = get_basic(&client, &url, "wrong").await;
    assert_eq!(
        (status, body.as_str()),
        (401, r#"{"error":"Invalid credentials"}"#)
    );

    let resp = client.get(&url).send().await.unwrap();
    let (status, body) = json(resp).await;
    assert_eq!(status, 401);
    assert_eq!(
        body["error"],
        "Authentication credentials were not provided."
    );

    sim.handle().set_basic_auth(false);
    let (status, body) = get_basic(&client, &url, "pw").await;
    assert_eq!(status, 401, "{body}");
    // Session login still works with basic auth off, as on a real controller.
    let s = login(&client, &sim.url(), "admin", "pw").await;
    let resp = client
        .get(&url)
        .header("cookie", &s.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn basic_auth_sets_the_none_session_cookies() {
    let (sim, client) = start(tenants_scenario()).await;
    let resp = client
        .get(format!("{}/api/tenant", sim.url()))
        .basic_auth("admin", Some("pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(set_cookie(&resp, "avi-sessionid").as_deref(), Some("None"));
    assert_eq!(set_cookie(&resp, "sessionid").as_deref(), Some("None"));
    // Sending them back along with the credentials changes nothing.
    let resp = client
        .get(format!("{}/api/tenant", sim.url()))
        .basic_auth("admin", Some("pw"))
        .header("cookie", "avi-sessionid=None; sessionid=None")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn session_login_with_form_and_json_bodies() {
    let (sim, client) = start(tenants_scenario()).await;
    let url = sim.url();
    let resp = client
        .post(format!("{url}/login"))
        .form(&[("username", "admin"), ("password", "pw")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cookies: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let find = |name: &str| {
        cookies
            .iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} cookie in {cookies:?}"))
            .clone()
    };
    assert!(find("csrftoken").contains("Max-Age=31449600"));
    assert!(!find("csrftoken").contains("HttpOnly"));
    for name in ["avi-sessionid", "sessionid"] {
        let c = find(name);
        assert!(
            c.contains("HttpOnly") && c.contains("Max-Age=86400") && c.contains("Secure"),
            "{c}"
        );
    }
    let sid = set_cookie(&resp, "avi-sessionid").unwrap();
    assert_eq!(set_cookie(&resp, "sessionid").unwrap(), sid);
    let (_, body) = json(resp).await;
    assert_eq!(body["version"]["Version"], "30.2.1");
    assert_eq!(body["tenants"].as_array().unwrap().len(), 2);

    // Either cookie name is enough.
    for cookie in [format!("avi-sessionid={sid}"), format!("sessionid={sid}")] {
        let resp = client
            .get(format!("{url}/api/pool"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }

    let resp = client
        .post(format!("{url}/login"))
        .json(&serde_json::json!({"username": "admin", "password": "pw"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client
        .post(format!("{url}/login"))
        .json(&serde_json::json!({"username": "admin", "token": "tok-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        200,
        "an API token logs in in place of the password"
    );

    let resp = client
        .post(format!("{url}/login"))
        .json(&serde_json::json!({"username": "admin", "password": "nope"}))
        .send()
        .await
        .unwrap();
    let (status, body) = json(resp).await;
    assert_eq!(
        (status, body),
        (401, serde_json::json!({"error": "Invalid credentials"}))
    );
}

#[tokio::test]
async fn sessions_expire_after_idle_time_on_the_simulated_clock() {
    let mut scenario = tenants_scenario();
    scenario.controller.session_clock = avi_sim::scenario::SessionClock::Simulated;
    let (sim, client) = start(scenario).await;
    let h = sim.handle();
    let url = format!("{}/api/pool", sim.url());
    let s = login(&client, &sim.url(), "admin", "pw").await;
    let get = || client.get(&url).header("cookie", &s.cookie).send();
    h.advance(600.0).await.unwrap();
    assert_eq!(get().await.unwrap().status(), 200);
    h.advance(600.0).await.unwrap();
    assert_eq!(
        get().await.unwrap().status(),
        200,
        "each request resets the idle time"
    );
    h.advance(901.0).await.unwrap();
    let (status, body) = json(get().await.unwrap()).await;
    assert_eq!(status, 401);
    assert_eq!(
        body["error"],
        "Authentication credentials were not provided."
    );
    // A fresh login works again; expiring sessions now ends it at once.
    let s2 = login(&client, &sim.url(), "admin", "pw").await;
    assert_eq!(h.expire_sessions(), 1);
    let resp = client
        .get(&url)
        .header("cookie", &s2.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn sessions_run_on_the_real_clock_by_default() {
    let (sim, client) = start(tenants_scenario()).await;
    let s = login(&client, &sim.url(), "admin", "pw").await;
    // A day of simulated time passes in no real time: the session lives on.
    sim.handle().advance(86_400.0 * 2.0).await.unwrap();
    let resp = client
        .get(format!("{}/api/pool", sim.url()))
        .header("cookie", &s.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn logout_needs_the_csrf_token_and_ends_the_session() {
    let (sim, client) = start(tenants_scenario()).await;
    let url = sim.url();
    let s = login(&client, &url, "admin", "pw").await;
    let resp = client
        .post(format!("{url}/logout"))
        .header("cookie", &s.cookie)
        .header("referer", format!("{url}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.text().await.unwrap(),
        "CSRF token missing or incorrect."
    );
    let resp = client
        .post(format!("{url}/logout"))
        .header("cookie", &s.cookie)
        .header("x-csrftoken", &s.csrf)
        .header("referer", format!("{url}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client
        .get(format!("{url}/api/pool"))
        .header("cookie", &s.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn x_avi_version_is_accepted_up_to_the_controller_version() {
    let (sim, client) = start(tenants_scenario()).await;
    let url = format!("{}/api/pool", sim.url());
    for (version, status) in [
        ("22.1.3", 200),
        ("30.2.1", 200),
        ("31.1.1", 400),
        ("x.y", 400),
    ] {
        let resp = client
            .get(&url)
            .basic_auth("admin", Some("pw"))
            .header("X-Avi-Version", version)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "X-Avi-Version {version}");
        assert_eq!(resp.headers()["avi_api_version"], "30.2.1");
    }
}

#[tokio::test]
async fn a_password_change_refuses_the_old_password() {
    let (sim, client) = start(tenants_scenario()).await;
    sim.handle().set_user(User::new("admin", "new-pw")).unwrap();
    let url = format!("{}/api/pool", sim.url());
    assert_eq!(get_basic(&client, &url, "pw").await.0, 401);
    assert_eq!(get_basic(&client, &url, "new-pw").await.0, 200);
}

// ---------- tenants ----------

async fn prom(client: &reqwest::Client, base: &str, path_and_query: &str) -> (u16, String) {
    get_basic(
        client,
        &format!("{base}/api/analytics/prometheus-metrics/{path_and_query}"),
        "pw",
    )
    .await
}

fn pool_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split("name=\"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .map(String::from)
        .collect();
    names.dedup();
    names
}

#[tokio::test]
async fn tenant_parameter_selects_the_prometheus_tenants() {
    let (sim, client) = start(tenants_scenario()).await;
    sim.handle().advance(300.0).await.unwrap();
    let base = sim.url();
    let q = "pool?metric_id=l4_server.avg_open_conns";
    let (_, text) = prom(&client, &base, q).await;
    assert_eq!(
        pool_names(&text),
        ["web-pool", "api-pool"],
        "default tenant admin"
    );
    let (_, text) = prom(&client, &base, &format!("{q}&tenant=shop")).await;
    assert_eq!(pool_names(&text), ["shop-pool"]);
    let (_, text) = prom(&client, &base, &format!("{q}&tenant=admin,shop")).await;
    assert_eq!(pool_names(&text), ["web-pool", "api-pool", "shop-pool"]);
    assert!(
        text.contains("\n\navi_"),
        "tenant blocks separated by a blank line: {text}"
    );
    assert!(text.starts_with("# Successfully gathered 4 metrics for pool\n"));
    // The header does not choose the tenant here (only the parameter does).
    let resp = client
        .get(format!("{base}/api/analytics/prometheus-metrics/{q}"))
        .basic_auth("admin", Some("pw"))
        .header("X-Avi-Tenant", "shop")
        .send()
        .await
        .unwrap();
    assert_eq!(
        pool_names(&resp.text().await.unwrap()),
        ["web-pool", "api-pool"]
    );

    let (status, body) = prom(&client, &base, &format!("{q}&tenant=nosuch")).await;
    assert_eq!(status, 404);
    assert_eq!(body, r#"{"error":"Tenant nosuch does not exist"}"#);
    let resp = client
        .get(format!(
            "{base}/api/analytics/prometheus-metrics/{q}&tenant=admin"
        ))
        .basic_auth("shop-viewer", Some("pw2"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn x_avi_tenant_scopes_inventory_and_json_metrics() {
    let (sim, client) = start(tenants_scenario()).await;
    let base = sim.url();
    let get = |path: &str, tenant: Option<(&str, &str)>| {
        let mut rb = client
            .get(format!("{base}{path}"))
            .basic_auth("admin", Some("pw"));
        if let Some((h, v)) = tenant {
            rb = rb.header(h, v);
        }
        rb.send()
    };
    let (_, body) = json(get("/api/pool?name=shop-pool", None).await.unwrap()).await;
    assert_eq!(body["count"], 0);
    let (_, body) = json(
        get("/api/pool?name=shop-pool", Some(("X-Avi-Tenant", "shop")))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["count"], 1);
    let shop = body["results"][0].clone();
    assert_eq!(shop["name"], "shop-pool");
    let uuid = shop["uuid"].as_str().unwrap().to_string();
    assert!(uuid.starts_with("pool-"));
    assert!(
        shop["tenant_ref"]
            .as_str()
            .unwrap()
            .contains("/api/tenant/tenant-")
    );
    let (_, body) = json(get("/api/pool", Some(("X-Avi-Tenant", "*"))).await.unwrap()).await;
    assert_eq!(body["count"], 3);
    let shop_uuid = sim.handle().state()["tenants"][1]["uuid"].clone();
    let (_, body) = json(
        get(
            "/api/pool",
            Some(("X-Avi-Tenant-UUID", shop_uuid.as_str().unwrap())),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(body["count"], 1);
    let (status, body) = json(
        get("/api/pool", Some(("X-Avi-Tenant", "nosuch")))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("Tenant nosuch does not exist"))
    );

    let path = format!(
        "/api/analytics/metrics/pool/{uuid}/?metric_id=l4_server.avg_open_conns&step=300&limit=1"
    );
    assert_eq!(
        get(&path, None).await.unwrap().status(),
        404,
        "not in the admin tenant"
    );
    let resp = get(&path, Some(("X-Avi-Tenant", "shop"))).await.unwrap();
    assert_eq!(resp.status(), 200);
}

// ---------- the Prometheus endpoint's parameters ----------

#[tokio::test]
async fn entity_and_metric_selection_by_comma_lists() {
    let (sim, client) = start(tenants_scenario()).await;
    sim.handle().advance(300.0).await.unwrap();
    let base = sim.url();
    let (_, all) = prom(&client, &base, "pool").await;
    let per_member = avi_sim::model::metrics_of(avi_sim::model::EntityType::Pool, false).len();
    assert!(all.starts_with(&format!(
        "# Successfully gathered {} metrics for pool\n",
        3 * per_member
    )));

    let (_, text) = prom(
        &client,
        &base,
        "pool?entity_name=api-pool&metric_id=l4_server.avg_open_conns,l7_server.avg_total_requests",
    )
    .await;
    assert_eq!(text.lines().count(), 3);
    assert!(text.starts_with("# Successfully gathered 2 metrics for pool\n"));

    let uuids: Vec<String> = sim.handle().state()["pools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["uuid"].as_str().unwrap().to_string())
        .collect();
    let (_, text) = prom(
        &client,
        &base,
        &format!(
            "pool/?entity_id={},{}&metric_id=l4_server.avg_open_conns",
            uuids[0], uuids[1]
        ),
    )
    .await;
    assert_eq!(pool_names(&text), ["web-pool", "api-pool"]);
    assert!(
        text.starts_with("# Successfully gathered 3 metrics for pool\n"),
        "web-pool has two members: {text}"
    );

    // Names and ids combine; repeated parameters merge.
    let (_, text) = prom(&client, &base, &format!("pool?entity_name=api-pool&entity_id={}&metric_id=l4_server.avg_open_conns&metric_id=l4_server.max_open_conns", uuids[0])).await;
    assert!(
        text.starts_with("# Successfully gathered 6 metrics for pool\n"),
        "{text}"
    );

    // Unknown names, ids and metric ids give no lines (a smaller N) ...
    let (status, text) = prom(
        &client,
        &base,
        "pool?entity_name=api-pool,ghost&metric_id=l4_server.avg_open_conns,no.such_metric",
    )
    .await;
    assert_eq!(status, 200);
    assert!(text.starts_with("# Successfully gathered 1 metrics for pool\n"));
    let (_, text) = prom(&client, &base, "pool?entity_name=ghost").await;
    assert_eq!(text, "# Successfully gathered 0 metrics for pool\n");
    // ... or a 400 in strict mode.
    let h = sim.handle();
    let mut strict = h.behaviour();
    strict.unknown_selection = avi_sim::scenario::UnknownSelection::Error;
    h.set_behaviour(strict).unwrap();
    let (status, body) = prom(&client, &base, "pool?entity_name=ghost").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.starts_with(r#"{"error":"#), "{body}");
    let (status, _) = prom(&client, &base, "pool?metric_id=no.such_metric").await;
    assert_eq!(status, 400);

    let (status, body) = prom(&client, &base, "cloud").await;
    assert_eq!(status, 404, "{body}");
}

fn value_of(text: &str, metric: &str, needle: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(&format!("{metric}{{")) && l.contains(needle))
        .unwrap_or_else(|| panic!("no {metric} with {needle} in\n{text}"))
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn realtime_serves_five_second_buckets_where_enabled() {
    let (sim, client) = start(tenants_scenario()).await;
    let h = sim.handle();
    h.advance(300.0).await.unwrap();
    // 100 users on web-pool until 302.5 s, then 300.
    h.advance(2.5).await.unwrap();
    h.set_pool_users("web-pool", 300.0, None).unwrap();
    h.advance(5.0).await.unwrap(); // now 307.5: last 5 s bucket is [300, 305)
    let base = sim.url();
    let (_, slow) = prom(
        &client,
        &base,
        "pool?entity_name=web-pool&metric_id=l4_server.avg_open_conns",
    )
    .await;
    let (_, fast) = prom(
        &client,
        &base,
        "pool?entity_name=web-pool&metric_id=l4_server.avg_open_conns&realtime=true",
    )
    .await;
    assert_eq!(
        value_of(&slow, "avi_l4_server_avg_open_conns", "10.0.0.1:80"),
        50.0
    );
    assert_eq!(
        value_of(&fast, "avi_l4_server_avg_open_conns", "10.0.0.1:80"),
        100.0
    );
    h.advance(5.0).await.unwrap(); // [305, 310)
    let (_, fast) = prom(
        &client,
        &base,
        "pool?entity_name=web-pool&metric_id=l4_server.avg_open_conns&realtime=true",
    )
    .await;
    assert_eq!(
        value_of(&fast, "avi_l4_server_avg_open_conns", "10.0.0.1:80"),
        150.0
    );

    // api-pool has no realtime metrics: left out of a realtime answer.
    let (_, text) = prom(&client, &base, "pool?entity_name=api-pool&realtime=true").await;
    assert_eq!(text, "# Successfully gathered 0 metrics for pool\n");
    // Realtime answers carry the realtime subset (no health score).
    let (_, text) = prom(&client, &base, "pool?entity_name=web-pool&realtime=true").await;
    assert!(!text.contains("health_score"));
    let (status, _) = prom(&client, &base, "pool?realtime=maybe").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn description_adds_help_and_type_lines() {
    let (sim, client) = start(tenants_scenario()).await;
    let (_, plain) = prom(
        &client,
        &sim.url(),
        "pool?entity_name=api-pool&metric_id=l4_server.avg_open_conns",
    )
    .await;
    assert!(!plain.contains("# HELP") && !plain.contains("# TYPE"));
    let (_, text) = prom(
        &client,
        &sim.url(),
        "pool?entity_name=api-pool&metric_id=l4_server.avg_open_conns&description=true",
    )
    .await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "# Successfully gathered 1 metrics for pool");
    assert_eq!(
        lines[1],
        "# HELP avi_l4_server_avg_open_conns Average number of open connections to the server."
    );
    assert_eq!(lines[2], "# TYPE avi_l4_server_avg_open_conns gauge");
    assert!(lines[3].starts_with("avi_l4_server_avg_open_conns{"));
}

#[tokio::test]
async fn virtual_services_engines_and_controller_nodes() {
    let (sim, client) = support::start_with(
        avi_sim::SimConfig::new(tenants_scenario())
            .nodes(2)
            .paused(),
    )
    .await;
    sim.handle().advance(300.0).await.unwrap();
    let base = sim.url();
    let (_, vs) = prom(
        &client,
        &base,
        "virtualservice?metric_id=l4_client.max_open_conns,l4_server.avg_open_conns",
    )
    .await;
    assert_eq!(
        value_of(&vs, "avi_l4_server_avg_open_conns", "web-vs"),
        140.0
    );
    assert!(vs.contains(r#"type="virtualservice", tenant="admin", name="web-vs"}"#));
    let (_, se) = prom(
        &client,
        &base,
        "serviceengine?metric_id=se_stats.avg_cpu_usage&tenant=admin",
    )
    .await;
    // 100 + 40 + 10 connections on the engine: 1 % idle + 0.01 % each.
    assert_eq!(value_of(&se, "avi_se_stats_avg_cpu_usage", "se-1"), 2.5);
    let (_, ctrl) = prom(
        &client,
        &base,
        "controller?metric_id=controller_stats.avg_cpu_usage",
    )
    .await;
    assert_eq!(
        ctrl,
        "# Successfully gathered 2 metrics for controller\n\
         avi_controller_stats_avg_cpu_usage{uuid=\"node-1\", type=\"controller\", tenant=\"admin\"} 4.0\n\
         avi_controller_stats_avg_cpu_usage{uuid=\"node-2\", type=\"controller\", tenant=\"admin\"} 4.0\n"
    );

    // The same entities through the JSON API.
    let state = sim.handle().state();
    let vs_uuid = state["virtualServices"][0]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let se_uuid = state["serviceEngines"][0]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    for (path, metric_entity, value) in [
        (
            format!("virtualservice/{vs_uuid}/?metric_id=l4_server.avg_open_conns"),
            "VSERVER_METRICS_ENTITY",
            140.0,
        ),
        (
            format!("serviceengine/{se_uuid}/?metric_id=se_stats.avg_cpu_usage"),
            "SE_METRICS_ENTITY",
            2.5,
        ),
        (
            "controller/node-2/?metric_id=controller_stats.avg_cpu_usage".to_string(),
            "CONTROLLER_METRICS_ENTITY",
            4.0,
        ),
    ] {
        let resp = client
            .get(format!("{base}/api/analytics/metrics/{path}&limit=1"))
            .basic_auth("admin", Some("pw"))
            .send()
            .await
            .unwrap();
        let (status, v) = json(resp).await;
        assert_eq!(status, 200, "{path}: {v}");
        assert_eq!(v["metric_entity"], metric_entity);
        assert_eq!(v["series"][0]["data"][0]["value"], value, "{path}");
    }
}

// ---------- the JSON metrics API ----------

#[tokio::test]
async fn json_metrics_step_limit_start_stop_and_members() {
    let (sim, client) = start(tenants_scenario()).await;
    let h = sim.handle();
    h.advance(900.0).await.unwrap();
    h.set_pool_servers("web-pool", 4).unwrap();
    h.advance(300.0).await.unwrap(); // now 1200 = 2026-01-01T00:20:00Z
    let uuid = h.state()["pools"][0]["uuid"].as_str().unwrap().to_string();
    let get = |query: String| {
        client
            .get(format!(
                "{}/api/analytics/metrics/pool/{uuid}/?{query}",
                sim.url()
            ))
            .basic_auth("admin", Some("pw"))
            .send()
    };
    let (status, v) = json(
        get("metric_id=l4_server.avg_open_conns&step=300&limit=1".into())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["entity_uuid"], uuid.as_str());
    assert_eq!(v["metric_entity"], "VSERVER_METRICS_ENTITY");
    assert_eq!(v["step"], 300);
    assert_eq!(v["limit"], 1);
    assert_eq!(v["start"], "2026-01-01T00:15:00+00:00");
    assert_eq!(v["stop"], "2026-01-01T00:20:00+00:00");
    let s = &v["series"][0];
    assert_eq!(s["header"]["name"], "l4_server.avg_open_conns");
    assert_eq!(s["header"]["units"], "METRIC_COUNT");
    assert_eq!(s["header"]["tenant_uuid"], "admin");
    assert_eq!(
        s["data"],
        serde_json::json!([{"timestamp": "2026-01-01T00:20:00+00:00", "value": 100.0}])
    );

    let (_, v) = json(
        get("metric_id=l4_server.avg_open_conns,l4_server.avg_server_count&limit=4".into())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v["series"].as_array().unwrap().len(), 2);
    let counts: Vec<f64> = v["series"][1]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    assert_eq!(counts, [2.0, 2.0, 2.0, 4.0]);
    assert_eq!(v["series"][1]["header"]["statistics"]["max"], 4.0);

    let (_, v) = json(
        get("metric_id=l4_server.avg_open_conns&obj_id=*&limit=2".into())
            .await
            .unwrap(),
    )
    .await;
    let series = v["series"].as_array().unwrap();
    assert_eq!(series.len(), 4, "every member seen in the window");
    assert_eq!(series[0]["header"]["server"], "10.0.0.1:80");
    assert_eq!(
        series[0]["header"]["obj_id_type"],
        "METRICS_OBJ_ID_TYPE_SERVER"
    );
    assert_eq!(series[0]["data"][0]["value"], 50.0);
    assert_eq!(series[0]["data"][1]["value"], 25.0);
    assert_eq!(
        series[3]["data"][0]["is_null"], true,
        "a new member has no sample before it joined"
    );
    let (_, v) = json(
        get(
            "metric_id=l4_server.avg_open_conns&server=10.0.0.4:80&limit=2&pad_missing_data=false"
                .into(),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(v["series"][0]["data"].as_array().unwrap().len(), 1);

    let (_, v) = json(get("metric_id=l4_server.avg_open_conns&start=2026-01-01T00:05:00%2B00:00&stop=2026-01-01T00:15:00Z".into()).await.unwrap()).await;
    let stamps: Vec<&str> = v["series"][0]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["timestamp"].as_str().unwrap())
        .collect();
    assert_eq!(
        stamps,
        ["2026-01-01T00:10:00+00:00", "2026-01-01T00:15:00+00:00"]
    );

    let (_, v) = json(
        get("metric_id=l4_server.avg_open_conns&step=5&limit=3".into())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        v["series"][0]["data"].as_array().unwrap().len(),
        3,
        "web-pool has realtime metrics"
    );

    for bad in [
        "metric_id=l4_server.avg_open_conns&step=60",
        "metric_id=l4_server.avg_open_conns&limit=0",
        "step=300",
        "metric_id=l4_server.avg_open_conns&start=noon",
    ] {
        let (status, body) = json(get(bad.into()).await.unwrap()).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"].is_string());
    }
    let resp = client
        .get(format!(
            "{}/api/analytics/metrics/pool/pool-nope/?metric_id=l4_server.avg_open_conns",
            sim.url()
        ))
        .basic_auth("admin", Some("pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

// ---------- inventory and cluster ----------

#[tokio::test]
async fn inventory_by_name_uuid_and_pages() {
    let (sim, client) = start(tenants_scenario()).await;
    let get = |path: &str| {
        client
            .get(format!("{}{path}", sim.url()))
            .basic_auth("admin", Some("pw"))
            .send()
    };
    let (_, v) = json(get("/api/pool?name=web-pool").await.unwrap()).await;
    assert_eq!(v["count"], 1);
    let pool = &v["results"][0];
    assert_eq!(pool["servers"].as_array().unwrap().len(), 2);
    assert_eq!(pool["servers"][1]["ip"]["addr"], "10.0.0.2");
    let uuid = pool["uuid"].as_str().unwrap();
    let (status, one) = json(get(&format!("/api/pool/{uuid}")).await.unwrap()).await;
    assert_eq!(
        (status, &one["name"]),
        (200, &serde_json::json!("web-pool"))
    );
    let (_, v) = json(
        get("/api/pool?include_name=true&page_size=1")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v["count"], 2);
    assert_eq!(v["results"].as_array().unwrap().len(), 1);
    assert!(
        v["results"][0]["tenant_ref"]
            .as_str()
            .unwrap()
            .ends_with("/api/tenant/admin#admin")
    );
    let next = v["next"].as_str().unwrap();
    assert!(next.contains("page=2"), "{next}");
    let (_, v) = json(get("/api/virtualservice?name=web-vs").await.unwrap()).await;
    assert_eq!(
        v["results"][0]["analytics_policy"]["metrics_realtime_update"]["duration"],
        0
    );
    let (_, v) = json(get("/api/serviceengine").await.unwrap()).await;
    assert_eq!(v["results"][0]["name"], "se-1");
    assert_eq!(get("/api/pool/pool-nope").await.unwrap().status(), 404);
    let (_, v) = json(get("/api/analytics/metric_id").await.unwrap()).await;
    assert!(
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "l4_server.avg_open_conns")
    );
}

#[tokio::test]
async fn cluster_runtime_follows_the_nodes() {
    let (sim, client) = support::start_with(
        avi_sim::SimConfig::new(tenants_scenario())
            .nodes(3)
            .paused(),
    )
    .await;
    let urls = sim.urls();
    assert_eq!(urls.len(), 3);
    let status = |url: String| {
        let client = client.clone();
        async move {
            json(
                client
                    .get(format!("{url}/api/cluster/status"))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
            .1
        }
    };
    let v = status(urls[0].clone()).await;
    assert_eq!(v["cluster_state"]["state"], "CLUSTER_UP_HA_ACTIVE");
    assert_eq!(v["node_states"][0]["role"], "CLUSTER_LEADER");
    sim.handle().set_node_up(0, false).await.unwrap();
    let v = status(urls[1].clone()).await;
    assert_eq!(v["cluster_state"]["state"], "CLUSTER_UP_HA_COMPROMISED");
    assert_eq!(v["node_states"][1]["role"], "CLUSTER_LEADER");
    assert_eq!(v["node_states"][0]["state"], "CLUSTER_INACTIVE");
    let (_, version) = json(
        client
            .get(format!("{}/api/cluster/version", urls[2]))
            .basic_auth("admin", Some("pw"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(version["Version"], "30.2.1");
}
