//! The Kubernetes REST API: routing, verbs, content negotiation and watch streams.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::discovery;
use crate::error::ApiError;
use crate::openapi;
use crate::patch::Patch;
use crate::resources::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{
    Change, ChangeType, DeleteOpts, FieldValidation, ListOpts, ScaleChange, Shared, State, Sub,
    WatchOpts, WriteCtx,
};
use crate::table::{self, Include};

/// A request, as the API handlers see it.
pub(crate) struct Req {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub content_type: String,
    pub accept: String,
    pub user_agent: String,
    pub body: Bytes,
    /// `host:port` the server is reached at, for `/api`'s `serverAddressByClientCIDRs`.
    pub server_address: String,
}

impl Req {
    fn q(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.q(key), Some("true" | "1"))
    }

    /// Whether this is a watch (`?watch=true` or a legacy `/watch/` path).
    pub(crate) fn is_watch(&self) -> bool {
        self.flag("watch") || self.path.contains("/watch/")
    }
}

/// A response body: bytes, or a stream of watch events.
pub(crate) enum ReplyBody {
    Full(Bytes),
    Stream(mpsc::Receiver<Bytes>),
}

/// A response.
pub(crate) struct Reply {
    pub status: u16,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub body: ReplyBody,
}

impl Reply {
    pub(crate) fn json(status: u16, v: &Value) -> Self {
        Self::bytes(status, "application/json", Bytes::from(v.to_string()))
    }

    pub(crate) fn bytes(status: u16, content_type: &str, b: Bytes) -> Self {
        Self {
            status,
            content_type: content_type.to_owned(),
            headers: Vec::new(),
            body: ReplyBody::Full(b),
        }
    }

    pub(crate) fn error(e: &ApiError) -> Self {
        let mut r = Self::json(e.code, &e.to_status());
        if let Some(s) = e.retry_after {
            r.headers.push(("Retry-After".into(), s.to_string()));
        }
        r
    }

    fn text(status: u16, s: &str) -> Self {
        Self::bytes(
            status,
            "text/plain; charset=utf-8",
            Bytes::from(s.to_owned()),
        )
    }

    fn with_warnings(mut self, warnings: &[String]) -> Self {
        for w in warnings {
            self.headers.push((
                "Warning".into(),
                format!("299 - {}", serde_json::to_string(w).unwrap_or_default()),
            ));
        }
        self
    }
}

/// Settings the API handlers need.
#[derive(Clone)]
pub(crate) struct ApiCtx {
    pub shared: Arc<Shared>,
    pub bookmark_interval: Duration,
    pub default_watch_timeout: Duration,
}

/// Answers a Kubernetes API request.
pub(crate) fn handle(ctx: &ApiCtx, req: &Req) -> Reply {
    match route(ctx, req) {
        Ok(r) => r,
        Err(e) => Reply::error(&e),
    }
}

fn route(ctx: &ApiCtx, req: &Req) -> Result<Reply, ApiError> {
    let path = req.path.trim_end_matches('/');
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let get_only = || {
        if req.method == Method::GET || req.method == Method::HEAD {
            Ok(())
        } else {
            Err(ApiError::method_not_allowed())
        }
    };
    match segs.as_slice() {
        ["version"] => {
            get_only()?;
            Ok(Reply::json(200, &discovery::version()))
        }
        ["healthz" | "livez" | "readyz", ..] => {
            get_only()?;
            Ok(Reply::text(200, "ok"))
        }
        ["api"] => {
            get_only()?;
            if discovery::wants_aggregated(&req.accept) {
                let doc = ctx
                    .shared
                    .with(|s| discovery::aggregated(&s.registry, true));
                Ok(Reply::bytes(
                    200,
                    discovery::AGGREGATED_V2,
                    Bytes::from(doc.to_string()),
                ))
            } else {
                Ok(Reply::json(
                    200,
                    &discovery::api_versions(&req.server_address),
                ))
            }
        }
        ["apis"] => {
            get_only()?;
            if discovery::wants_aggregated(&req.accept) {
                let doc = ctx
                    .shared
                    .with(|s| discovery::aggregated(&s.registry, false));
                Ok(Reply::bytes(
                    200,
                    discovery::AGGREGATED_V2,
                    Bytes::from(doc.to_string()),
                ))
            } else {
                Ok(Reply::json(
                    200,
                    &ctx.shared.with(|s| discovery::api_group_list(&s.registry)),
                ))
            }
        }
        ["openapi", "v3"] => {
            get_only()?;
            Ok(Reply::json(
                200,
                &ctx.shared.with(|s| openapi::root(&s.registry)),
            ))
        }
        ["openapi", "v3", rest @ ..] => {
            get_only()?;
            let doc = ctx
                .shared
                .with(|s| openapi::group_version(&s.registry, &rest.join("/")))
                .ok_or_else(ApiError::no_such_path)?;
            Ok(Reply::json(200, &doc))
        }
        ["api", "v1", rest @ ..] => resource_request(ctx, req, "", "v1", rest),
        ["apis", group] => {
            get_only()?;
            let doc = ctx
                .shared
                .with(|s| discovery::api_group(&s.registry, group))
                .ok_or_else(ApiError::no_such_path)?;
            Ok(Reply::json(200, &doc))
        }
        ["apis", group, version, rest @ ..] => resource_request(ctx, req, group, version, rest),
        _ => Err(ApiError::no_such_path()),
    }
}

/// The output a client asked for.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Format {
    Object,
    Table(Include),
    Partial,
}

fn negotiate(req: &Req) -> Result<Format, ApiError> {
    if req.accept.trim().is_empty() {
        return Ok(Format::Object);
    }
    for range in req.accept.split(',') {
        let mut params = range.split(';').map(str::trim);
        let media = params.next().unwrap_or_default();
        let params: Vec<&str> = params.collect();
        let has = |p: &str| params.contains(&p);
        if !matches!(media, "application/json" | "*/*" | "application/*") {
            continue;
        }
        if has("as=Table") && has("g=meta.k8s.io") {
            return Ok(Format::Table(
                Include::parse(req.q("includeObject")).map_err(ApiError::bad_request)?,
            ));
        }
        if (has("as=PartialObjectMetadata") || has("as=PartialObjectMetadataList"))
            && has("g=meta.k8s.io")
        {
            return Ok(Format::Partial);
        }
        if params.iter().any(|p| p.starts_with("as=")) {
            continue;
        }
        return Ok(Format::Object);
    }
    Err(ApiError::new(
        406,
        "NotAcceptable",
        "only the following media types are accepted: application/json",
    ))
}

fn write_ctx(req: &Req) -> Result<WriteCtx, ApiError> {
    let field_validation = match req.q("fieldValidation") {
        None | Some("") | Some("Warn") => FieldValidation::Warn,
        Some("Ignore") => FieldValidation::Ignore,
        Some("Strict") => FieldValidation::Strict,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: \"{other}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
            )));
        }
    };
    let manager = req.q("fieldManager").map(str::to_owned);
    if let Some(m) = &manager
        && m.len() > 128
    {
        return Err(ApiError::new(
            422,
            "Invalid",
            "fieldManager: Too long: may not be more than 128 bytes",
        ));
    }
    let dry_run = match req.q("dryRun") {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "dryRun: Unsupported value: \"{other}\": supported values: \"All\""
            )));
        }
    };
    Ok(WriteCtx {
        field_manager: manager,
        user_agent: req.user_agent.clone(),
        dry_run,
        field_validation,
    })
}

fn parse_body(req: &Req) -> Result<Value, ApiError> {
    let ct = media_type(&req.content_type);
    if ct == crate::protobuf::MEDIA_TYPE {
        return crate::protobuf::decode(&req.body).map_err(|e| {
            ApiError::new(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml ({e})"))
        });
    }
    let parsed = if ct == "application/yaml" || ct == "application/apply-patch+yaml" {
        serde_yaml::from_slice::<Value>(&req.body).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice::<Value>(&req.body).map_err(|e| e.to_string())
    };
    parsed.map_err(|e| {
        ApiError::bad_request(format!("the body of the request could not be decoded: {e}"))
    })
}

fn media_type(ct: &str) -> &str {
    ct.split(';').next().unwrap_or_default().trim()
}

struct Target<'a> {
    rt: Arc<ResourceType>,
    ns: Option<&'a str>,
    name: Option<&'a str>,
    sub: Sub,
}

fn resource_request(
    ctx: &ApiCtx,
    req: &Req,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Result<Reply, ApiError> {
    let (rest, legacy_watch) = match rest {
        ["watch", tail @ ..] => (tail, true),
        other => (other, false),
    };
    if rest.is_empty() {
        if req.method != Method::GET {
            return Err(ApiError::method_not_allowed());
        }
        let doc = ctx
            .shared
            .with(|s| discovery::api_resource_list(&s.registry, group, version))
            .ok_or_else(ApiError::no_such_path)?;
        return Ok(Reply::json(200, &doc));
    }
    let (ns, resource, tail): (Option<&str>, &str, &[&str]) = match rest {
        ["namespaces", ns, res, tail @ ..]
            if !(group.is_empty() && tail.is_empty() && matches!(*res, "status" | "finalize")) =>
        {
            (Some(*ns), *res, tail)
        }
        [res, tail @ ..] => (None, *res, tail),
        [] => unreachable!("checked above"),
    };
    let rt = ctx
        .shared
        .with(|s| s.registry.by_plural(group, version, resource))
        .ok_or_else(ApiError::no_such_path)?;
    let (name, sub) = match tail {
        [] => (None, None),
        [n] => (Some(*n), None),
        [n, s] => (Some(*n), Some(*s)),
        _ => return Err(ApiError::no_such_path()),
    };
    if (!rt.namespaced && ns.is_some()) || (rt.namespaced && name.is_some() && ns.is_none()) {
        return Err(ApiError::no_such_path());
    }
    let sub = match sub {
        None => Sub::Main,
        Some("status") if rt.status => Sub::Status,
        Some("scale") if rt.scale.is_some() => Sub::Scale,
        Some(_) => return Err(ApiError::no_such_path()),
    };
    let t = Target { rt, ns, name, sub };
    if legacy_watch || req.flag("watch") {
        if req.method != Method::GET || t.name.is_some() {
            return Err(ApiError::method_not_allowed());
        }
        return watch(ctx, req, &t);
    }
    match (&req.method, t.name) {
        (&Method::GET, None) => list(ctx, req, &t),
        (&Method::GET, Some(name)) => get(ctx, req, &t, name),
        (&Method::POST, None) => create(ctx, req, &t),
        (&Method::PUT, Some(name)) => update(ctx, req, &t, name),
        (&Method::PATCH, Some(name)) => patch(ctx, req, &t, name),
        (&Method::DELETE, Some(name)) => delete(ctx, req, &t, name),
        (&Method::DELETE, None) => delete_collection(ctx, req, &t),
        _ => Err(ApiError::method_not_allowed()),
    }
}

fn object_reply(status: u16, rt: &ResourceType, obj: &Value, format: Format) -> Reply {
    match format {
        Format::Object => Reply::json(status, obj),
        Format::Partial => Reply::json(status, &table::partial_metadata(obj)),
        Format::Table(include) => {
            let stored = stored_form(rt, obj);
            let row = table::row(rt, &stored, obj, include);
            let rv = obj
                .pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(Value::Null);
            let t = table::table(rt, vec![row], json!({"resourceVersion": rv}), true);
            Reply::bytes(
                status,
                "application/json;as=Table;v=v1;g=meta.k8s.io",
                Bytes::from(t.to_string()),
            )
        }
    }
}

/// Tables are computed from the stored form (core/v1 for events).
fn stored_form(rt: &ResourceType, presented: &Value) -> Value {
    if rt.behaviour == crate::resources::Behaviour::EventsV1 {
        crate::events::to_core(presented)
    } else {
        presented.clone()
    }
}

fn get(ctx: &ApiCtx, req: &Req, t: &Target<'_>, name: &str) -> Result<Reply, ApiError> {
    let format = negotiate(req)?;
    let ns = t.ns.unwrap_or_default();
    if t.sub == Sub::Scale {
        let scale = ctx.shared.with(|s| s.get_scale(&t.rt, ns, name))?;
        return Ok(Reply::json(200, &scale));
    }
    let obj = ctx.shared.with(|s| s.get(&t.rt, ns, name))?;
    Ok(object_reply(200, &t.rt, &obj, format))
}

fn selectors(req: &Req) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(req.q("labelSelector").unwrap_or_default())
        .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(req.q("fieldSelector").unwrap_or_default())
        .map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

fn list(ctx: &ApiCtx, req: &Req, t: &Target<'_>) -> Result<Reply, ApiError> {
    let format = negotiate(req)?;
    let (labels, fields) = selectors(req)?;
    let limit = match req.q("limit") {
        None | Some("") => None,
        Some(l) => Some(l.parse::<usize>().map_err(|_| {
            ApiError::bad_request(format!(
                "limit: Invalid value: \"{l}\": must be a non-negative integer"
            ))
        })?),
    };
    let opts = ListOpts {
        resource_version: req.q("resourceVersion").map(str::to_owned),
        resource_version_match: req.q("resourceVersionMatch").map(str::to_owned),
        limit,
        continue_token: req
            .q("continue")
            .filter(|c| !c.is_empty())
            .map(str::to_owned),
        labels,
        fields,
    };
    let page = ctx.shared.with(|s| s.list(&t.rt, t.ns, &opts))?;
    let mut meta = json!({"resourceVersion": page.resource_version.to_string()});
    if let Some(c) = &page.continue_token {
        meta["continue"] = json!(c);
    }
    if let Some(n) = page.remaining {
        meta["remainingItemCount"] = json!(n);
    }
    let rt = &t.rt;
    match format {
        Format::Table(include) => {
            let rows: Vec<Value> = page
                .items
                .iter()
                .map(|o| table::row(rt, o, &State::present(rt, o), include))
                .collect();
            let tbl = table::table(rt, rows, meta, true);
            Ok(Reply::bytes(
                200,
                "application/json;as=Table;v=v1;g=meta.k8s.io",
                Bytes::from(tbl.to_string()),
            ))
        }
        Format::Partial => {
            let items = page
                .items
                .iter()
                .map(|o| Arc::new(table::partial_metadata(o)));
            Ok(Reply::bytes(
                200,
                "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io",
                list_bytes("PartialObjectMetadataList", "meta.k8s.io/v1", &meta, items),
            ))
        }
        Format::Object => {
            let items = page.items.iter().map(|o| State::present(rt, o));
            Ok(Reply::bytes(
                200,
                "application/json",
                list_bytes(&rt.list_kind(), &rt.api_version(), &meta, items),
            ))
        }
    }
}

/// Serializes a list without copying its items into one big `Value`.
fn list_bytes(
    kind: &str,
    api_version: &str,
    meta: &Value,
    items: impl Iterator<Item = Arc<Value>>,
) -> Bytes {
    let mut buf = Vec::with_capacity(4096);
    buf.extend_from_slice(b"{\"kind\":");
    // Writing JSON to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut buf, kind);
    buf.extend_from_slice(b",\"apiVersion\":");
    let _ = serde_json::to_writer(&mut buf, api_version);
    buf.extend_from_slice(b",\"metadata\":");
    let _ = serde_json::to_writer(&mut buf, meta);
    buf.extend_from_slice(b",\"items\":[");
    for (i, item) in items.enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        let _ = serde_json::to_writer(&mut buf, &*item);
    }
    buf.extend_from_slice(b"]}");
    Bytes::from(buf)
}

fn create(ctx: &ApiCtx, req: &Req, t: &Target<'_>) -> Result<Reply, ApiError> {
    if t.sub != Sub::Main {
        return Err(ApiError::method_not_allowed());
    }
    let format = negotiate(req)?;
    let wctx = write_ctx(req)?;
    let body = parse_body(req)?;
    let out = ctx.shared.with(|s| s.create(&t.rt, t.ns, body, &wctx))?;
    Ok(object_reply(201, &t.rt, &out.object, format).with_warnings(&out.warnings))
}

fn update(ctx: &ApiCtx, req: &Req, t: &Target<'_>, name: &str) -> Result<Reply, ApiError> {
    let format = negotiate(req)?;
    let wctx = write_ctx(req)?;
    let body = parse_body(req)?;
    let ns = t.ns.unwrap_or_default();
    if t.sub == Sub::Scale {
        let scale = ctx
            .shared
            .with(|s| s.write_scale(&t.rt, ns, name, ScaleChange::Replace(body), &wctx))?;
        return Ok(Reply::json(200, &scale));
    }
    let out = ctx
        .shared
        .with(|s| s.update(&t.rt, ns, name, t.sub, body, &wctx))?;
    Ok(object_reply(200, &t.rt, &out.object, format).with_warnings(&out.warnings))
}

fn patch(ctx: &ApiCtx, req: &Req, t: &Target<'_>, name: &str) -> Result<Reply, ApiError> {
    let format = negotiate(req)?;
    let wctx = write_ctx(req)?;
    let ct = media_type(&req.content_type);
    let apply = ct == "application/apply-patch+yaml";
    if !apply && req.q("force").is_some() {
        let mut e = ApiError::new(
            422,
            "Invalid",
            "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch",
        );
        e.details = Some(
            json!({"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [
            {"reason": "FieldValueForbidden", "message": "Forbidden: may not be specified for non-apply patch", "field": "force"}]}),
        );
        return Err(e);
    }
    let body = match ct {
        "application/merge-patch+json"
        | "application/json-patch+json"
        | "application/strategic-merge-patch+json"
        | "application/apply-patch+yaml" => parse_body(req)?,
        _ => return Err(ApiError::unsupported_patch(&t.rt.patch_types())),
    };
    let p = match ct {
        "application/merge-patch+json" => Patch::Merge(body),
        "application/json-patch+json" => Patch::Json(body),
        "application/strategic-merge-patch+json" => Patch::Strategic(body),
        _ => Patch::Apply {
            config: body,
            field_manager: req.q("fieldManager").unwrap_or_default().to_owned(),
            force: req.flag("force"),
        },
    };
    let ns = t.ns.unwrap_or_default();
    if t.sub == Sub::Scale {
        let scale = ctx
            .shared
            .with(|s| s.write_scale(&t.rt, ns, name, ScaleChange::Patch(p), &wctx))?;
        return Ok(Reply::json(200, &scale));
    }
    let out = ctx
        .shared
        .with(|s| s.patch(&t.rt, ns, name, t.sub, &p, &wctx))?;
    let status = if out.created { 201 } else { 200 };
    Ok(object_reply(status, &t.rt, &out.object, format).with_warnings(&out.warnings))
}

fn delete_opts(req: &Req) -> Result<DeleteOpts, ApiError> {
    let mut opts = DeleteOpts {
        dry_run: req.q("dryRun") == Some("All"),
        ..DeleteOpts::default()
    };
    if !req.body.is_empty() {
        let v: Value = serde_json::from_slice(&req.body).map_err(|e| {
            ApiError::bad_request(format!("the body of the request could not be decoded: {e}"))
        })?;
        let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_owned);
        opts.uid = s("/preconditions/uid");
        opts.resource_version = s("/preconditions/resourceVersion");
        if v.get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x == "All"))
        {
            opts.dry_run = true;
        }
    }
    Ok(opts)
}

fn delete(ctx: &ApiCtx, req: &Req, t: &Target<'_>, name: &str) -> Result<Reply, ApiError> {
    if t.sub != Sub::Main {
        return Err(ApiError::method_not_allowed());
    }
    let format = negotiate(req)?;
    let opts = delete_opts(req)?;
    let obj = ctx
        .shared
        .with(|s| s.delete(&t.rt, t.ns.unwrap_or_default(), name, &opts))?;
    Ok(object_reply(200, &t.rt, &obj, format))
}

fn delete_collection(ctx: &ApiCtx, req: &Req, t: &Target<'_>) -> Result<Reply, ApiError> {
    let (labels, fields) = selectors(req)?;
    let opts = delete_opts(req)?;
    let items = ctx
        .shared
        .with(|s| s.delete_collection(&t.rt, t.ns, &labels, &fields, opts.dry_run))?;
    let rv = ctx.shared.with(|s| s.resource_version());
    let meta = json!({"resourceVersion": rv.to_string()});
    Ok(Reply::bytes(
        200,
        "application/json",
        list_bytes(
            &t.rt.list_kind(),
            &t.rt.api_version(),
            &meta,
            items.into_iter().map(Arc::new),
        ),
    ))
}

fn invalid_list_options(field: &str, detail: &str) -> ApiError {
    let mut e = ApiError::new(
        422,
        "Invalid",
        format!("ListOptions.meta.k8s.io \"\" is invalid: {field}: Forbidden: {detail}"),
    );
    e.details = Some(
        json!({"group": "meta.k8s.io", "kind": "ListOptions", "causes": [
        {"reason": "FieldValueForbidden", "message": format!("Forbidden: {detail}"), "field": field}]}),
    );
    e
}

/// How the watch task filters and renders events.
struct WatchPlan {
    rt: Arc<ResourceType>,
    labels: LabelSelector,
    fields: FieldSelector,
    format: Format,
    bookmarks: bool,
    initial_events_end: bool,
}

fn watch(ctx: &ApiCtx, req: &Req, t: &Target<'_>) -> Result<Reply, ApiError> {
    let format = negotiate(req)?;
    let (labels, fields) = selectors(req)?;
    State::check_field_selector(&t.rt, &fields)?;
    let bookmarks = req.flag("allowWatchBookmarks");
    let send_initial = req.flag("sendInitialEvents");
    if send_initial {
        if req.q("resourceVersionMatch") != Some("NotOlderThan") {
            return Err(invalid_list_options(
                "resourceVersionMatch",
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if !bookmarks {
            return Err(invalid_list_options(
                "allowWatchBookmarks",
                "sendInitialEvents requires allowWatchBookmarks=true",
            ));
        }
    }
    let timeout = match req.q("timeoutSeconds") {
        None | Some("") => ctx.default_watch_timeout,
        Some(s) => Duration::from_secs(s.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "timeoutSeconds: Invalid value: \"{s}\": must be a non-negative integer"
            ))
        })?),
    };
    let opts = WatchOpts {
        resource_version: req.q("resourceVersion").map(str::to_owned),
        send_initial_events: send_initial,
    };
    let plan = WatchPlan {
        rt: t.rt.clone(),
        labels,
        fields,
        format,
        bookmarks,
        initial_events_end: send_initial,
    };
    let content_type = match format {
        Format::Table(_) => "application/json;as=Table;v=v1;g=meta.k8s.io",
        _ => "application/json",
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    match ctx.shared.with(|s| s.watch(&t.rt, t.ns, &opts)) {
        Ok(start) => {
            let shared = ctx.shared.clone();
            let interval = ctx.bookmark_interval;
            tokio::spawn(run_watch(plan, start, tx, shared, interval, timeout));
        }
        // An expired resourceVersion is an ERROR event in a 200 stream, as kube-apiserver's
        // watch cache answers it; clients relist on it.
        Err(e) if e.code == 410 => {
            let line = event_line("ERROR", &e.to_status());
            // The channel is fresh and has room for one line.
            let _ = tx.try_send(line);
        }
        Err(e) => return Err(e),
    }
    Ok(Reply {
        status: 200,
        content_type: content_type.to_owned(),
        headers: Vec::new(),
        body: ReplyBody::Stream(rx),
    })
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut buf = Vec::with_capacity(512);
    buf.extend_from_slice(b"{\"type\":");
    let _ = serde_json::to_writer(&mut buf, kind);
    buf.extend_from_slice(b",\"object\":");
    let _ = serde_json::to_writer(&mut buf, object);
    buf.extend_from_slice(b"}\n");
    Bytes::from(buf)
}

impl WatchPlan {
    fn selects(&self, obj: &Value) -> bool {
        self.labels.matches(obj)
            && self
                .fields
                .matches(|f| State::field_value(&self.rt, obj, f).ok().flatten())
    }

    /// The event a change becomes for this watch, if any: objects moving into or out of the
    /// selection are ADDED or DELETED, as in kube-apiserver's watch cache.
    fn classify<'a>(&self, c: &'a Change) -> Option<(ChangeType, &'a Arc<Value>)> {
        if self.labels.is_empty() && self.fields.is_empty() {
            return Some((c.kind, &c.object));
        }
        let now = self.selects(&c.object);
        let before = c.previous.as_deref().is_some_and(|p| self.selects(p));
        match c.kind {
            ChangeType::Added => now.then_some((ChangeType::Added, &c.object)),
            ChangeType::Deleted => before.then_some((ChangeType::Deleted, &c.object)),
            ChangeType::Modified => match (before, now) {
                (true, true) => Some((ChangeType::Modified, &c.object)),
                (true, false) => Some((ChangeType::Deleted, &c.object)),
                (false, true) => Some((ChangeType::Added, &c.object)),
                (false, false) => None,
            },
        }
    }

    fn render(&self, kind: ChangeType, stored: &Arc<Value>, first: &mut bool) -> Bytes {
        let presented = State::present(&self.rt, stored);
        match self.format {
            Format::Object => event_line(kind.as_str(), &presented),
            Format::Partial => event_line(kind.as_str(), &table::partial_metadata(&presented)),
            Format::Table(include) => {
                let row = table::row(&self.rt, stored, &presented, include);
                let rv = presented
                    .pointer("/metadata/resourceVersion")
                    .cloned()
                    .unwrap_or(Value::Null);
                let t = table::table(&self.rt, vec![row], json!({"resourceVersion": rv}), *first);
                *first = false;
                event_line(kind.as_str(), &t)
            }
        }
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let (api_version, kind) = match self.format {
            Format::Partial => (
                "meta.k8s.io/v1".to_owned(),
                "PartialObjectMetadata".to_owned(),
            ),
            _ => (self.rt.api_version(), self.rt.kind.clone()),
        };
        event_line(
            "BOOKMARK",
            &json!({"kind": kind, "apiVersion": api_version, "metadata": meta}),
        )
    }
}

async fn run_watch(
    plan: WatchPlan,
    start: crate::store::WatchStart,
    out: mpsc::Sender<Bytes>,
    shared: Arc<Shared>,
    bookmark_interval: Duration,
    timeout: Duration,
) {
    let mut rx = start.rx;
    let mut first = true;
    for c in &start.initial {
        if let Some((kind, obj)) = plan.classify(c)
            && out.send(plan.render(kind, obj, &mut first)).await.is_err()
        {
            return;
        }
    }
    if plan.initial_events_end && out.send(plan.bookmark(start.start_rv, true)).await.is_err() {
        return;
    }
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut ticker = tokio::time::interval(bookmark_interval.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            () = &mut deadline => return,
            () = out.closed() => return,
            msg = rx.recv() => {
                let Some(c) = msg else { return };
                if let Some((kind, obj)) = plan.classify(&c)
                    && out.send(plan.render(kind, obj, &mut first)).await.is_err()
                {
                    return;
                }
            }
            _ = ticker.tick(), if plan.bookmarks => {
                // Every change up to this resourceVersion is already queued for this watch
                // (changes are queued under the lock that moves it), so drain the queue first.
                let rv = shared.with(|s| s.resource_version());
                loop {
                    match rx.try_recv() {
                        Ok(c) => {
                            if let Some((kind, obj)) = plan.classify(&c)
                                && out.send(plan.render(kind, obj, &mut first)).await.is_err()
                            {
                                return;
                            }
                        }
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => return,
                    }
                }
                if out.send(plan.bookmark(rv, false)).await.is_err() {
                    return;
                }
            }
        }
    }
}
