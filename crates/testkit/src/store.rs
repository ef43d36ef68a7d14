//! The object store: one global, increasing `resourceVersion`, a bounded history of changes for
//! watches and consistent paginated lists, and the API server's write rules.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::clock;
use crate::error::ApiError;
use crate::events;
use crate::fields::{self, Scope};
use crate::jsonpath::JsonPath;
use crate::patch::{self, Patch};
use crate::resources::{self, Behaviour, Generation, Registry, ResourceType};
use crate::schema::{self, FieldError};
use crate::selectors::{FieldSelector, LabelSelector, format_label_selector};

/// `(namespace, name)`; the namespace is empty for cluster-scoped objects.
pub(crate) type ObjKey = (String, String);

/// The type of a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChangeType {
    Added,
    Modified,
    Deleted,
}

impl ChangeType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ChangeType::Added => "ADDED",
            ChangeType::Modified => "MODIFIED",
            ChangeType::Deleted => "DELETED",
        }
    }
}

/// One committed change.
#[derive(Debug)]
pub(crate) struct Change {
    pub rv: u64,
    pub storage: Arc<str>,
    pub key: ObjKey,
    pub kind: ChangeType,
    /// The new object; for a deletion, its last state with the deletion's resourceVersion.
    pub object: Arc<Value>,
    /// The object before the change.
    pub previous: Option<Arc<Value>>,
}

struct WatcherSlot {
    storage: Arc<str>,
    namespace: Option<String>,
    tx: mpsc::UnboundedSender<Arc<Change>>,
    internal: bool,
}

/// Which part of an object a request addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sub {
    Main,
    Status,
    Scale,
}

impl Sub {
    fn name(self) -> &'static str {
        match self {
            Sub::Main => "",
            Sub::Status => "status",
            Sub::Scale => "scale",
        }
    }
}

/// `fieldValidation`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

/// Who writes and how.
#[derive(Clone, Debug, Default)]
pub(crate) struct WriteCtx {
    pub field_manager: Option<String>,
    pub user_agent: String,
    pub dry_run: bool,
    pub field_validation: FieldValidation,
}

impl WriteCtx {
    /// The manager of a non-apply write: `fieldManager`, else the user agent's product name,
    /// as kube-apiserver derives it.
    fn manager(&self) -> String {
        match &self.field_manager {
            Some(m) if !m.is_empty() => m.clone(),
            _ => {
                let ua = self.user_agent.split('/').next().unwrap_or_default();
                if ua.is_empty() {
                    "unknown".to_owned()
                } else {
                    ua.to_owned()
                }
            }
        }
    }
}

/// The result of a write.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The object as the request's version presents it.
    pub object: Value,
    pub created: bool,
    pub warnings: Vec<String>,
}

/// `DeleteOptions` preconditions.
#[derive(Clone, Debug, Default)]
pub(crate) struct DeleteOpts {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub dry_run: bool,
}

/// List parameters.
#[derive(Clone, Debug, Default)]
pub(crate) struct ListOpts {
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

/// One page of a list, in stored form.
pub(crate) struct ListPage {
    pub items: Vec<Arc<Value>>,
    pub resource_version: u64,
    pub continue_token: Option<String>,
    pub remaining: Option<usize>,
}

/// How a watch starts.
pub(crate) struct WatchStart {
    /// Synthetic ADDED events or replayed history, before live changes.
    pub initial: Vec<Arc<Change>>,
    pub rx: mpsc::UnboundedReceiver<Arc<Change>>,
    /// The resourceVersion the initial events bring the watcher to.
    pub start_rv: u64,
}

/// How a watch request wants to start.
#[derive(Clone, Debug, Default)]
pub(crate) struct WatchOpts {
    pub resource_version: Option<String>,
    pub send_initial_events: bool,
}

/// The store's state, guarded by one mutex.
pub(crate) struct State {
    rv: u64,
    pub(crate) registry: Registry,
    tables: HashMap<Arc<str>, BTreeMap<ObjKey, Arc<Value>>>,
    history: VecDeque<Arc<Change>>,
    /// The oldest resourceVersion a watch or continue token may start from.
    floor: u64,
    history_limit: usize,
    watchers: Vec<WatcherSlot>,
    random: RandomState,
    counter: u64,
    /// Admit custom objects as an API server before 1.36 does (no int32 check, no CEL).
    pub(crate) pre_1_36_validation: bool,
}

/// The first resourceVersion; not 1, so that clients never confuse it with "any" (`0`).
const FIRST_RV: u64 = 100;

/// Namespaces every cluster has.
const DEFAULT_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

impl State {
    pub(crate) fn new(history_limit: usize) -> Self {
        let mut s = Self {
            rv: FIRST_RV,
            registry: Registry::with_builtins(),
            tables: HashMap::new(),
            history: VecDeque::new(),
            floor: FIRST_RV,
            history_limit: history_limit.max(1),
            watchers: Vec::new(),
            random: RandomState::new(),
            counter: 0,
            pre_1_36_validation: false,
        };
        let ns_type = s
            .registry
            .resolve("v1", "Namespace")
            .expect("namespaces are a built-in type");
        for ns in DEFAULT_NAMESPACES {
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            s.create(&ns_type, None, body, &WriteCtx::default())
                .expect("the default namespaces are valid");
        }
        s
    }

    /// The current resourceVersion.
    pub(crate) fn resource_version(&self) -> u64 {
        self.rv
    }

    fn random_u64(&mut self) -> u64 {
        self.counter += 1;
        let mut h = self.random.build_hasher();
        h.write_u64(self.counter);
        h.finish()
    }

    fn new_uid(&mut self) -> String {
        let a = self.random_u64();
        let b = self.random_u64();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | ((b >> 48) & 0x3fff),
            b & 0xffff_ffff_ffff
        )
    }

    fn random_suffix(&mut self) -> String {
        // The alphabet of k8s.io/apimachinery/pkg/util/rand, without vowels and confusables.
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut n = self.random_u64();
        (0..5)
            .map(|_| {
                let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
                n /= ALPHABET.len() as u64;
                c
            })
            .collect()
    }

    fn table(&self, storage: &str) -> Option<&BTreeMap<ObjKey, Arc<Value>>> {
        self.tables.get(storage)
    }

    fn lookup(&self, rt: &ResourceType, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.table(&rt.storage)?
            .get(&(ns.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Whether a namespace exists.
    pub(crate) fn namespace_exists(&self, ns: &str) -> bool {
        self.table("/namespaces")
            .is_some_and(|t| t.contains_key(&(String::new(), ns.to_owned())))
    }

    /// Drops every watch (internal ones excepted); returns how many were dropped.
    pub(crate) fn drop_watches(&mut self) -> usize {
        let before = self.watchers.len();
        self.watchers.retain(|w| w.internal && !w.tx.is_closed());
        before - self.watchers.len()
    }

    /// Forgets all history: every older resourceVersion is expired from now on.
    pub(crate) fn compact(&mut self) {
        self.history.clear();
        self.floor = self.rv;
    }

    /// The number of open watches (internal ones excepted).
    pub(crate) fn watch_count(&self) -> usize {
        self.watchers
            .iter()
            .filter(|w| !w.internal && !w.tx.is_closed())
            .count()
    }

    /// How the request's version shows a stored object.
    pub(crate) fn present(rt: &ResourceType, stored: &Arc<Value>) -> Arc<Value> {
        match rt.behaviour {
            Behaviour::EventsV1 => Arc::new(events::to_v1(stored)),
            Behaviour::Custom => {
                let av = rt.api_version();
                if stored.get("apiVersion").and_then(Value::as_str) == Some(av.as_str()) {
                    stored.clone()
                } else {
                    let mut v = (**stored).clone();
                    v["apiVersion"] = json!(av);
                    Arc::new(v)
                }
            }
            _ => stored.clone(),
        }
    }

    fn to_storage(rt: &ResourceType, v: Value) -> Value {
        if rt.behaviour == Behaviour::EventsV1 {
            events::to_core(&v)
        } else {
            v
        }
    }

    /// GET.
    pub(crate) fn get(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
    ) -> Result<Arc<Value>, ApiError> {
        self.lookup(rt, ns, name)
            .map(|o| Self::present(rt, &o))
            .ok_or_else(|| ApiError::not_found(rt, name))
    }

    /// The value of a field selector label for an object of `rt` (stored form).
    pub(crate) fn field_value(
        rt: &ResourceType,
        obj: &Value,
        label: &str,
    ) -> Result<Option<String>, ApiError> {
        let s = |p: &str| obj.pointer(p).and_then(Value::as_str).map(str::to_owned);
        match label {
            "metadata.name" => return Ok(s("/metadata/name")),
            "metadata.namespace" => return Ok(s("/metadata/namespace")),
            _ => {}
        }
        let unsupported = || ApiError::bad_request(format!("field label not supported: {label}"));
        match rt.behaviour {
            Behaviour::CoreEvent => events::selectable_field(obj, label).ok_or_else(unsupported),
            Behaviour::EventsV1 => events::selectable_field(obj, &events::core_field_label(label))
                .ok_or_else(unsupported),
            Behaviour::Secret if label == "type" => Ok(s("/type")),
            Behaviour::Namespace if label == "status.phase" => Ok(s("/status/phase")),
            Behaviour::Custom => {
                let field = rt
                    .crd
                    .as_ref()
                    .and_then(|c| c.selectable_fields.iter().find(|(f, _)| f == label))
                    .ok_or_else(unsupported)?;
                Ok(field.1.first(obj).map(crate::jsonpath::print_value))
            }
            _ if rt.kind == "Pod" => match label {
                "spec.nodeName" => Ok(s("/spec/nodeName")),
                "status.phase" => Ok(s("/status/phase")),
                "spec.serviceAccountName" => Ok(s("/spec/serviceAccountName")),
                _ => Err(unsupported()),
            },
            _ => Err(unsupported()),
        }
    }

    fn matches(
        rt: &ResourceType,
        obj: &Value,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> bool {
        labels.matches(obj) && fields.matches(|f| Self::field_value(rt, obj, f).ok().flatten())
    }

    /// Checks that every field selector label is supported by `rt`.
    pub(crate) fn check_field_selector(
        rt: &ResourceType,
        fields: &FieldSelector,
    ) -> Result<(), ApiError> {
        let probe = json!({"metadata": {}});
        for r in &fields.0 {
            Self::field_value(rt, &probe, &r.field)?;
        }
        Ok(())
    }

    /// LIST, consistent at one resourceVersion across pages.
    pub(crate) fn list(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        opts: &ListOpts,
    ) -> Result<ListPage, ApiError> {
        Self::check_field_selector(rt, &opts.fields)?;
        let (snapshot, start_after) = match &opts.continue_token {
            Some(token) => {
                let (rv, start) = decode_continue(token)?;
                if rv < self.floor {
                    return Err(ApiError::expired(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                    ));
                }
                (rv, Some(start))
            }
            None => (self.list_snapshot_rv(opts)?, None),
        };
        let current = self.table(&rt.storage);
        let mut view: BTreeMap<&ObjKey, Option<&Arc<Value>>> = BTreeMap::new();
        let in_scope =
            |k: &ObjKey| ns.is_none_or(|n| k.0 == n) && start_after.as_ref().is_none_or(|s| k > s);
        if let Some(t) = current {
            let range: Box<dyn Iterator<Item = (&ObjKey, &Arc<Value>)>> = match (&start_after, ns) {
                (Some(s), _) => Box::new(t.range::<ObjKey, _>((
                    std::ops::Bound::Excluded(s.clone()),
                    std::ops::Bound::Unbounded,
                ))),
                (None, Some(n)) => Box::new(t.range::<ObjKey, _>((n.to_owned(), String::new())..)),
                (None, None) => Box::new(t.iter()),
            };
            for (k, v) in range {
                if let Some(n) = ns
                    && k.0 != n
                {
                    if k.0.as_str() > n {
                        break;
                    }
                    continue;
                }
                view.insert(k, Some(v));
            }
        }
        if snapshot < self.rv {
            // Undo the changes made after the snapshot: the first change after it holds the
            // state the object had at the snapshot.
            let mut seen: HashMap<&ObjKey, ()> = HashMap::new();
            for c in self
                .history
                .iter()
                .filter(|c| c.rv > snapshot && c.storage == rt.storage)
            {
                if !in_scope(&c.key) || seen.insert(&c.key, ()).is_some() {
                    continue;
                }
                view.insert(&c.key, c.previous.as_ref());
            }
        }
        let mut items = Vec::new();
        let mut last_key = None;
        let mut more = false;
        let mut remaining = 0usize;
        let selecting = !opts.labels.is_empty() || !opts.fields.is_empty();
        for (k, v) in view {
            let Some(obj) = v else { continue };
            if let Some(limit) = opts.limit
                && limit > 0
                && items.len() >= limit
            {
                more = true;
                if selecting {
                    break;
                }
                remaining += 1;
                continue;
            }
            if Self::matches(rt, obj, &opts.labels, &opts.fields) {
                items.push(obj.clone());
                last_key = Some(k.clone());
            }
        }
        let continue_token = match (more, last_key) {
            (true, Some(k)) => Some(encode_continue(snapshot, &k)),
            _ => None,
        };
        Ok(ListPage {
            items,
            resource_version: snapshot,
            remaining: (continue_token.is_some() && !selecting).then_some(remaining),
            continue_token,
        })
    }

    fn list_snapshot_rv(&self, opts: &ListOpts) -> Result<u64, ApiError> {
        let requested = match opts.resource_version.as_deref() {
            None | Some("") => return Ok(self.rv),
            Some(s) => parse_rv(s)?,
        };
        match opts.resource_version_match.as_deref() {
            Some("Exact") => {
                if requested > self.rv {
                    return Err(too_large(requested, self.rv));
                }
                if requested < self.floor {
                    return Err(ApiError::expired(format!(
                        "too old resource version: {requested} ({})",
                        self.floor
                    )));
                }
                Ok(requested)
            }
            None | Some("" | "NotOlderThan") => {
                if requested > self.rv {
                    return Err(too_large(requested, self.rv));
                }
                Ok(self.rv)
            }
            Some(other) => Err(ApiError::bad_request(format!(
                "resourceVersionMatch: Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\""
            ))),
        }
    }

    /// Starts a watch of `rt` (in `ns`, or all namespaces).
    pub(crate) fn watch(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        opts: &WatchOpts,
    ) -> Result<WatchStart, ApiError> {
        let requested = match opts.resource_version.as_deref() {
            None | Some("") | Some("0") => None,
            Some(s) => Some(parse_rv(s)?),
        };
        let synthetic = |s: &Self| -> Vec<Arc<Change>> {
            s.table(&rt.storage)
                .map(|t| {
                    t.iter()
                        .filter(|(k, _)| ns.is_none_or(|n| k.0 == n))
                        .map(|(k, v)| {
                            Arc::new(Change {
                                rv: object_rv(v),
                                storage: rt.storage.clone(),
                                key: k.clone(),
                                kind: ChangeType::Added,
                                object: v.clone(),
                                previous: None,
                            })
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let initial = match requested {
            _ if opts.send_initial_events => {
                if let Some(r) = requested
                    && r > self.rv
                {
                    return Err(too_large(r, self.rv));
                }
                synthetic(self)
            }
            None => synthetic(self),
            Some(r) if r > self.rv => return Err(too_large(r, self.rv)),
            Some(r) if r < self.floor => {
                return Err(ApiError::expired(format!(
                    "too old resource version: {r} ({})",
                    self.floor
                )));
            }
            Some(r) => self
                .history
                .iter()
                .filter(|c| c.rv > r && c.storage == rt.storage && ns.is_none_or(|n| c.key.0 == n))
                .cloned()
                .collect(),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        self.watchers.push(WatcherSlot {
            storage: rt.storage.clone(),
            namespace: ns.map(str::to_owned),
            tx,
            internal: false,
        });
        Ok(WatchStart {
            initial,
            rx,
            start_rv: self.rv,
        })
    }

    /// An internal subscription to every change of a storage table (for the workload
    /// controllers); survives dropped watches.
    pub(crate) fn subscribe(&mut self, storage: &str) -> mpsc::UnboundedReceiver<Arc<Change>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.watchers.push(WatcherSlot {
            storage: Arc::from(storage),
            namespace: None,
            tx,
            internal: true,
        });
        rx
    }

    /// Every stored object of a type (stored form).
    pub(crate) fn objects(&self, rt: &ResourceType, ns: Option<&str>) -> Vec<Arc<Value>> {
        self.table(&rt.storage)
            .map(|t| {
                t.iter()
                    .filter(|(k, _)| ns.is_none_or(|n| k.0 == n))
                    .map(|(_, v)| Self::present(rt, v))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn record(&mut self, change: Change) {
        let change = Arc::new(change);
        self.watchers.retain(|w| {
            if w.storage != change.storage {
                return !w.tx.is_closed();
            }
            if let Some(ns) = &w.namespace
                && *ns != change.key.0
            {
                return !w.tx.is_closed();
            }
            w.tx.send(change.clone()).is_ok()
        });
        self.history.push_back(change);
        while self.history.len() > self.history_limit {
            if let Some(old) = self.history.pop_front() {
                self.floor = old.rv;
            }
        }
    }

    fn commit_put(
        &mut self,
        rt: &ResourceType,
        key: ObjKey,
        mut obj: Value,
        previous: Option<Arc<Value>>,
    ) -> Arc<Value> {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let obj = Arc::new(obj);
        self.tables
            .entry(rt.storage.clone())
            .or_default()
            .insert(key.clone(), obj.clone());
        let kind = if previous.is_some() {
            ChangeType::Modified
        } else {
            ChangeType::Added
        };
        self.record(Change {
            rv: self.rv,
            storage: rt.storage.clone(),
            key,
            kind,
            object: obj.clone(),
            previous,
        });
        obj
    }

    fn commit_delete(&mut self, storage: &Arc<str>, key: &ObjKey) -> Option<Arc<Value>> {
        let previous = self.tables.get_mut(storage)?.remove(key)?;
        self.rv += 1;
        let mut last = (*previous).clone();
        last["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let last = Arc::new(last);
        self.record(Change {
            rv: self.rv,
            storage: storage.clone(),
            key: key.clone(),
            kind: ChangeType::Deleted,
            object: last.clone(),
            previous: Some(previous),
        });
        Some(last)
    }

    /// POST.
    pub(crate) fn create(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        body: Value,
        ctx: &WriteCtx,
    ) -> Result<Outcome, ApiError> {
        let mut obj = Self::to_storage(rt, body);
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        check_type(rt, &obj)?;
        let meta = obj
            .as_object_mut()
            .and_then(|m| m.get_mut("metadata"))
            .and_then(Value::as_object_mut);
        let (mut name, generate) = match meta {
            Some(m) => (
                m.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                m.get("generateName")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            ),
            None => (String::new(), String::new()),
        };
        if name.is_empty() && !generate.is_empty() {
            name = format!("{generate}{}", self.random_suffix());
        }
        if name.is_empty() {
            return Err(ApiError::invalid_field(
                rt,
                "",
                "metadata.name",
                "Required value",
                None,
                "name or generateName is required",
            ));
        }
        let ns = self.check_namespace(rt, ns, &obj)?;
        if let Some(rv) = obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            && !rv.is_empty()
        {
            return Err(ApiError::internal(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        if self.lookup(rt, &ns, &name).is_some() {
            return Err(ApiError::already_exists(rt, &name));
        }
        self.admit_and_commit(rt, &ns, &name, None, obj, Sub::Main, ctx, None)
    }

    fn check_namespace(
        &self,
        rt: &ResourceType,
        url_ns: Option<&str>,
        obj: &Value,
    ) -> Result<String, ApiError> {
        let body_ns = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !rt.namespaced {
            return Ok(String::new());
        }
        let ns = match (url_ns, body_ns) {
            (Some(u), b) if !b.is_empty() && b != u => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            (Some(u), _) => u.to_owned(),
            (None, "") => "default".to_owned(),
            (None, b) => b.to_owned(),
        };
        if !self.namespace_exists(&ns) {
            return Err(ApiError::not_found_resource("", "namespaces", &ns));
        }
        Ok(ns)
    }

    /// PUT (main resource or status).
    pub(crate) fn update(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        sub: Sub,
        body: Value,
        ctx: &WriteCtx,
    ) -> Result<Outcome, ApiError> {
        let old = self
            .lookup(rt, ns, name)
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        let obj = Self::to_storage(rt, body);
        check_type(rt, &obj)?;
        check_name(&obj, name)?;
        match obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
        {
            Some(rv) if !rv.is_empty() && rv != object_rv_str(&old) => {
                return Err(ApiError::stale(rt, name));
            }
            Some(rv) if !rv.is_empty() => {}
            _ if rt.requires_rv_on_update => {
                return Err(ApiError::invalid_field(
                    rt,
                    name,
                    "metadata.resourceVersion",
                    "Invalid value",
                    Some("0x0".into()),
                    "must be specified for an update",
                ));
            }
            _ => {}
        }
        self.admit_and_commit(rt, ns, name, Some(old), obj, sub, ctx, None)
    }

    /// PATCH (main resource or status). An apply patch creates a missing object.
    pub(crate) fn patch(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        sub: Sub,
        patch: &Patch,
        ctx: &WriteCtx,
    ) -> Result<Outcome, ApiError> {
        let old = self.lookup(rt, ns, name);
        if let Patch::Apply {
            config,
            field_manager,
            force,
        } = patch
        {
            return self.apply(rt, ns, name, sub, old, config, field_manager, *force, ctx);
        }
        let old = old.ok_or_else(|| ApiError::not_found(rt, name))?;
        let presented = Self::present(rt, &old);
        let patched = match patch {
            Patch::Merge(p) => patch::merge(&presented, p),
            Patch::Json(p) => {
                patch::json(&presented, p).map_err(|e| json_patch_error(rt, name, p, &e))?
            }
            Patch::Strategic(p) => {
                if !rt.accepts_strategic_merge() {
                    return Err(ApiError::unsupported_patch(&rt.patch_types()));
                }
                patch::strategic(rt, &presented, p).map_err(ApiError::bad_request)?
            }
            Patch::Apply { .. } => unreachable!("handled above"),
        };
        let obj = Self::to_storage(rt, patched);
        check_type(rt, &obj)?;
        check_name(&obj, name)?;
        if let Some(rv) = obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            && !rv.is_empty()
            && rv != object_rv_str(&old)
        {
            return Err(ApiError::stale(rt, name));
        }
        self.admit_and_commit(rt, ns, name, Some(old), obj, sub, ctx, None)
    }

    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        sub: Sub,
        old: Option<Arc<Value>>,
        config: &Value,
        manager: &str,
        force: bool,
        ctx: &WriteCtx,
    ) -> Result<Outcome, ApiError> {
        if manager.is_empty() {
            let mut e = ApiError::new(
                422,
                "Invalid",
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
            );
            e.details = Some(
                json!({"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [
                {"reason": "FieldValueRequired", "message": "Required value: is required for apply patch", "field": "fieldManager"}]}),
            );
            return Err(e);
        }
        let Some(cfg) = config.as_object() else {
            return Err(ApiError::bad_request(
                "the applied configuration must be an object",
            ));
        };
        let av = cfg
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = cfg.get("kind").and_then(Value::as_str).unwrap_or_default();
        if av.is_empty() || kind.is_empty() {
            let missing = if av.is_empty() { "apiVersion" } else { "kind" };
            return Err(ApiError::bad_request(format!(
                "invalid object type: {missing} must be set"
            )));
        }
        check_type(rt, &Self::to_storage(rt, config.clone()))?;
        // A configuration without a name applies to the object named in the URL.
        let cfg_name = config
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !cfg_name.is_empty() && cfg_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({cfg_name}) does not match the name on the URL ({name})"
            )));
        }
        if let Some(rv) = config
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            && !rv.is_empty()
            && old.as_ref().is_none_or(|o| rv != object_rv_str(o))
        {
            return Err(ApiError::stale(rt, name));
        }
        let created = old.is_none();
        if created && sub != Sub::Main {
            return Err(ApiError::not_found(rt, name));
        }
        // Ownership is tracked on the stored form (core/v1 for events).
        let live = match &old {
            Some(o) => (**o).clone(),
            None => {
                let ns_value = if rt.namespaced {
                    json!(self.check_namespace(rt, Some(ns), config)?)
                } else {
                    Value::Null
                };
                let mut meta = json!({"name": name});
                if rt.namespaced {
                    meta["namespace"] = ns_value;
                }
                json!({"apiVersion": storage_api_version(rt), "kind": rt.kind, "metadata": meta})
            }
        };
        let stored_config = Self::to_storage(rt, config.clone());
        let scope = if sub == Sub::Status {
            Scope::Status
        } else {
            Scope::Main
        };
        let now = clock::now_time();
        let obj = fields::apply(
            rt,
            &live,
            &stored_config,
            manager,
            sub.name(),
            scope,
            force,
            &storage_api_version(rt),
            &now,
        )
        .map_err(|c| conflict_error(&c))?;
        let mut outcome = self.admit_and_commit(rt, ns, name, old, obj, sub, ctx, Some(config))?;
        outcome.created = created;
        Ok(outcome)
    }

    /// The `autoscaling/v1` Scale of an object.
    pub(crate) fn get_scale(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let obj = self
            .lookup(rt, ns, name)
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        scale_of(rt, &Self::present(rt, &obj))
    }

    /// PUT or PATCH of the scale subresource.
    pub(crate) fn write_scale(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        change: ScaleChange,
        ctx: &WriteCtx,
    ) -> Result<Value, ApiError> {
        let paths = rt.scale.clone().ok_or_else(ApiError::no_such_path)?;
        let old = self
            .lookup(rt, ns, name)
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        let presented = Self::present(rt, &old);
        let current = scale_of(rt, &presented)?;
        let scale_type = scale_type();
        let desired = match change {
            ScaleChange::Replace(v) => v,
            ScaleChange::Patch(p) => match &p {
                Patch::Merge(x) => patch::merge(&current, x),
                Patch::Json(x) => patch::json(&current, x)
                    .map_err(|e| json_patch_error(&scale_type, name, x, &e))?,
                Patch::Strategic(x) => {
                    patch::strategic(&scale_type, &current, x).map_err(ApiError::bad_request)?
                }
                Patch::Apply { config, .. } => patch::merge(&current, config),
            },
        };
        if let Some(rv) = desired
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            && !rv.is_empty()
            && rv != object_rv_str(&old)
        {
            return Err(ApiError::stale(rt, name));
        }
        let replicas = match desired.pointer("/spec/replicas") {
            None | Some(Value::Null) => 0,
            Some(v) => match v.as_i64() {
                Some(n) if n >= 0 && n <= i64::from(i32::MAX) => n,
                Some(n) => {
                    return Err(ApiError::invalid(
                        "autoscaling",
                        "Scale",
                        name,
                        &[FieldError {
                            field: "spec.replicas".into(),
                            kind: "Invalid value",
                            detail: "must be greater than or equal to 0".into(),
                            value: Some(n.to_string()),
                        }],
                    ));
                }
                None => {
                    return Err(ApiError::bad_request(format!(
                        "Scale in version \"v1\" cannot be handled as a Scale: spec.replicas must be an integer, not {v}"
                    )));
                }
            },
        };
        let mut obj = (*presented).clone();
        set_path(&mut obj, &paths.spec_replicas, json!(replicas));
        let obj = Self::to_storage(rt, obj);
        let outcome = self.admit_and_commit(rt, ns, name, Some(old), obj, Sub::Scale, ctx, None)?;
        scale_of(rt, &outcome.object)
    }

    /// DELETE.
    pub(crate) fn delete(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        opts: &DeleteOpts,
    ) -> Result<Value, ApiError> {
        let old = self
            .lookup(rt, ns, name)
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        if let Some(uid) = &opts.uid {
            let actual = old
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if uid != actual {
                return Err(ApiError::conflict(
                    rt,
                    name,
                    &format!(
                        "the UID in the precondition ({uid}) does not match the UID in record ({actual}). The object might have been deleted and then recreated"
                    ),
                ));
            }
        }
        if let Some(rv) = &opts.resource_version {
            let actual = object_rv_str(&old);
            if rv != actual {
                return Err(ApiError::conflict(
                    rt,
                    name,
                    &format!(
                        "the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({actual}). The object might have been modified"
                    ),
                ));
            }
        }
        if opts.dry_run {
            return Ok((*Self::present(rt, &old)).clone());
        }
        let has_finalizers = old
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if has_finalizers {
            if old.pointer("/metadata/deletionTimestamp").is_some() {
                return Ok((*Self::present(rt, &old)).clone());
            }
            let mut obj = (*old).clone();
            obj["metadata"]["deletionTimestamp"] = json!(clock::now_time());
            obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            let key = (ns.to_owned(), name.to_owned());
            let stored = self.commit_put(rt, key, obj, Some(old));
            return Ok((*Self::present(rt, &stored)).clone());
        }
        let last = self
            .remove(rt, ns, name)
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        Ok((*Self::present(rt, &last)).clone())
    }

    /// Removes an object and what depends on it (a namespace's objects, a CRD's resources).
    fn remove(&mut self, rt: &ResourceType, ns: &str, name: &str) -> Option<Arc<Value>> {
        let key = (ns.to_owned(), name.to_owned());
        match rt.behaviour {
            Behaviour::Namespace => {
                let storages: Vec<Arc<str>> = self.tables.keys().cloned().collect();
                for storage in storages {
                    let keys: Vec<ObjKey> = self.tables[&storage]
                        .keys()
                        .filter(|k| k.0 == name)
                        .cloned()
                        .collect();
                    for k in keys {
                        self.commit_delete(&storage, &k);
                    }
                }
            }
            Behaviour::Crd => {
                if let Some(crd) = self.lookup(rt, ns, name)
                    && let (Some(g), Some(p)) = (
                        crd.pointer("/spec/group").and_then(Value::as_str),
                        crd.pointer("/spec/names/plural").and_then(Value::as_str),
                    )
                {
                    let storage: Arc<str> = Arc::from(format!("{g}/{p}"));
                    let keys: Vec<ObjKey> = self
                        .tables
                        .get(&storage)
                        .map(|t| t.keys().cloned().collect())
                        .unwrap_or_default();
                    for k in keys {
                        self.commit_delete(&storage, &k);
                    }
                    self.registry.replace_storage(&storage, Vec::new());
                    self.watchers.retain(|w| w.storage != storage);
                }
            }
            _ => {}
        }
        self.commit_delete(&rt.storage, &key)
    }

    /// DELETE on a collection: deletes every selected object.
    pub(crate) fn delete_collection(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        dry_run: bool,
    ) -> Result<Vec<Value>, ApiError> {
        Self::check_field_selector(rt, fields)?;
        let names: Vec<(String, String)> = self
            .table(&rt.storage)
            .map(|t| {
                t.iter()
                    .filter(|(k, v)| {
                        ns.is_none_or(|n| k.0 == n) && Self::matches(rt, v, labels, fields)
                    })
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        let opts = DeleteOpts {
            dry_run,
            ..DeleteOpts::default()
        };
        names
            .iter()
            .map(|(ns, name)| self.delete(rt, ns, name, &opts))
            .collect()
    }

    /// Admission (identity, status isolation, defaults, validation, generation, managed
    /// fields) and commit of a write whose candidate object is `new` (stored form).
    #[allow(clippy::too_many_arguments)]
    fn admit_and_commit(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        old: Option<Arc<Value>>,
        mut new: Value,
        sub: Sub,
        ctx: &WriteCtx,
        applied: Option<&Value>,
    ) -> Result<Outcome, ApiError> {
        let now = clock::now_time();
        let mut warnings = Vec::new();
        check_shape(rt, &new)?;
        // Identity and server-owned metadata.
        new["apiVersion"] = json!(storage_api_version(rt));
        new["kind"] = json!(rt.kind);
        if !new.get("metadata").is_some_and(Value::is_object) {
            new["metadata"] = json!({});
        }
        {
            let meta = new["metadata"]
                .as_object_mut()
                .expect("metadata was just made an object");
            meta.insert("name".into(), json!(name));
            if rt.namespaced {
                meta.insert("namespace".into(), json!(ns));
            } else {
                meta.remove("namespace");
            }
            meta.remove("resourceVersion");
            match &old {
                Some(o) => {
                    for k in [
                        "uid",
                        "creationTimestamp",
                        "generation",
                        "deletionTimestamp",
                        "deletionGracePeriodSeconds",
                    ] {
                        match o.pointer(&format!("/metadata/{k}")) {
                            Some(v) => meta.insert(k.into(), v.clone()),
                            None => meta.remove(k),
                        };
                    }
                }
                None => {
                    meta.remove("deletionTimestamp");
                    meta.remove("deletionGracePeriodSeconds");
                    meta.insert("creationTimestamp".into(), json!(now));
                    meta.remove("generation");
                    if applied.is_none() {
                        meta.remove("managedFields");
                    }
                }
            }
        }
        if old.is_none() {
            let uid = self.new_uid();
            new["metadata"]["uid"] = json!(uid);
            validate_name(rt, name)?;
        }
        // Status and main-resource writes are isolated from each other.
        match (sub, &old) {
            (Sub::Status, Some(o)) => {
                let status = new.get("status").cloned();
                let managed = new.pointer("/metadata/managedFields").cloned();
                let mut merged = (**o).clone();
                match status {
                    Some(s) => merged["status"] = s,
                    None => {
                        merged.as_object_mut().map(|m| m.remove("status"));
                    }
                }
                match managed {
                    Some(m) => merged["metadata"]["managedFields"] = m,
                    None => {
                        merged["metadata"]
                            .as_object_mut()
                            .map(|m| m.remove("managedFields"));
                    }
                }
                new = merged;
            }
            (Sub::Main | Sub::Scale, Some(o)) if rt.status => match o.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    new.as_object_mut().map(|m| m.remove("status"));
                }
            },
            (_, None) if rt.status => {
                new.as_object_mut().map(|m| m.remove("status"));
            }
            _ => {}
        }
        self.behaviour_hooks(rt, name, old.as_deref(), &mut new, sub, ctx, &mut warnings)?;
        // Generation moves on changes to anything but metadata and status.
        if rt.generation != Generation::None {
            let generation = match &old {
                None => 1,
                Some(o) => {
                    let g = o
                        .pointer("/metadata/generation")
                        .and_then(Value::as_i64)
                        .unwrap_or(1);
                    if spec_changed(rt, o, &new) { g + 1 } else { g }
                }
            };
            new["metadata"]["generation"] = json!(generation);
        }
        // Field ownership.
        let scope = if sub == Sub::Status {
            Scope::Status
        } else {
            Scope::Main
        };
        if applied.is_none() {
            fields::record_update(
                rt,
                old.as_deref(),
                &mut new,
                &ctx.manager(),
                sub.name(),
                scope,
                &storage_api_version(rt),
                &now,
            );
        }
        if let Some(o) = &old
            && unchanged(o, &new)
        {
            return Ok(Outcome {
                object: (*Self::present(rt, o)).clone(),
                created: false,
                warnings,
            });
        }
        if ctx.dry_run {
            return Ok(Outcome {
                object: (*Self::present(rt, &Arc::new(new))).clone(),
                created: old.is_none(),
                warnings,
            });
        }
        // An object being deleted goes once its last finalizer is removed.
        let deleting = new.pointer("/metadata/deletionTimestamp").is_some()
            && new
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_none_or(|f| f.is_empty());
        let created = old.is_none();
        let key = (ns.to_owned(), name.to_owned());
        if rt.behaviour == Behaviour::Crd && !deleting {
            let types = resources::from_crd(&new).map_err(|errs| crd_invalid(rt, name, &errs))?;
            if let Some(t) = types.first() {
                let storage = t.storage.clone();
                self.registry.replace_storage(&storage, types);
            }
        }
        let stored = self.commit_put(rt, key, new, old);
        if deleting {
            self.remove(rt, ns, name);
        }
        Ok(Outcome {
            object: (*Self::present(rt, &stored)).clone(),
            created,
            warnings,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn behaviour_hooks(
        &mut self,
        rt: &ResourceType,
        name: &str,
        old: Option<&Value>,
        new: &mut Value,
        sub: Sub,
        ctx: &WriteCtx,
        warnings: &mut Vec<String>,
    ) -> Result<(), ApiError> {
        match rt.behaviour {
            Behaviour::Namespace => {
                new["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
                if new.pointer("/status/phase").is_none() {
                    new["status"] = json!({"phase": "Active"});
                }
                if new.pointer("/spec/finalizers").is_none() {
                    new["spec"] = json!({"finalizers": ["kubernetes"]});
                }
            }
            Behaviour::Secret => fold_string_data(rt, name, new)?,
            Behaviour::Deployment | Behaviour::StatefulSet if sub != Sub::Status => {
                default_workload(rt, new);
                validate_workload(rt, name, new)?;
            }
            Behaviour::Crd => {
                if let Err(errs) = resources::from_crd(new) {
                    return Err(crd_invalid(rt, name, &errs));
                }
                let mut names = new
                    .pointer("/spec/names")
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                if names.get("singular").is_none() {
                    let kind = names
                        .get("kind")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_lowercase();
                    names["singular"] = json!(kind);
                }
                if names.get("listKind").is_none() {
                    let kind = names
                        .get("kind")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    names["listKind"] = json!(format!("{kind}List"));
                }
                let storage_version = new
                    .pointer("/spec/versions")
                    .and_then(Value::as_array)
                    .and_then(|vs| {
                        vs.iter()
                            .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                    })
                    .and_then(|v| v.get("name"))
                    .cloned()
                    .unwrap_or(Value::Null);
                let now = clock::now_time();
                let since = old
                    .and_then(|o| o.pointer("/status/conditions/0/lastTransitionTime"))
                    .cloned()
                    .unwrap_or_else(|| json!(now));
                new["status"] = json!({
                    "acceptedNames": names,
                    "conditions": [
                        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": since},
                        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": since}
                    ],
                    "storedVersions": [storage_version],
                });
            }
            Behaviour::Custom => {
                let Some(compiled) = rt.crd.as_ref().and_then(|c| {
                    if self.pre_1_36_validation {
                        c.compiled_pre_1_36.clone()
                    } else {
                        c.compiled.clone()
                    }
                }) else {
                    return Ok(());
                };
                let schema = compiled.schema();
                let presented = Self::present(rt, &Arc::new(new.clone()));
                let unknown = schema::unknown_fields(schema, &presented);
                if !unknown.is_empty() {
                    let list: Vec<String> = unknown
                        .iter()
                        .map(|f| format!("unknown field \"{f}\""))
                        .collect();
                    match ctx.field_validation {
                        FieldValidation::Strict => {
                            return Err(ApiError::bad_request(format!(
                                "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                                rt.kind,
                                rt.version,
                                rt.kind,
                                list.join(", ")
                            )));
                        }
                        FieldValidation::Warn => warnings.extend(list),
                        FieldValidation::Ignore => {}
                    }
                }
                let old_presented = old.map(|o| (*Self::present(rt, &Arc::new(o.clone()))).clone());
                let changed = match (sub, rt.status) {
                    (Sub::Status, _) => schema::Changed::Status,
                    (_, true) if old.is_some() => schema::Changed::AllButStatus,
                    _ => schema::Changed::Whole,
                };
                match compiled.admit_write(&presented, old_presented.as_ref(), changed) {
                    Ok(mut stored) => {
                        // Pruning never touches metadata; keep managedFields as computed.
                        stored["metadata"] = new["metadata"].clone();
                        *new = stored;
                    }
                    Err(errors) => {
                        return Err(ApiError::invalid(&rt.group, &rt.kind, name, &errors));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The number of objects per storage table, for diagnostics.
    pub(crate) fn counts(&self) -> Vec<(String, usize)> {
        let mut v: Vec<(String, usize)> = self
            .tables
            .iter()
            .filter(|(_, t)| !t.is_empty())
            .map(|(k, t)| (k.to_string(), t.len()))
            .collect();
        v.sort();
        v
    }
}

/// What a scale write asks for.
pub(crate) enum ScaleChange {
    Replace(Value),
    Patch(Patch),
}

/// The resource type used to strategic-merge a Scale (it has no lists).
fn scale_type() -> ResourceType {
    let mut t = (*Registry::with_builtins()
        .resolve("v1", "ConfigMap")
        .expect("configmaps are built in"))
    .clone();
    t.kind = "Scale".into();
    t.group = "autoscaling".into();
    t.plural = "scale".into();
    t
}

fn scale_of(rt: &ResourceType, obj: &Value) -> Result<Value, ApiError> {
    let paths = rt.scale.as_ref().ok_or_else(ApiError::no_such_path)?;
    let get = |p: &str| {
        JsonPath::parse(p)
            .ok()
            .and_then(|jp| jp.first(obj).cloned())
    };
    let spec = get(&paths.spec_replicas)
        .and_then(|v| v.as_i64())
        .unwrap_or(0);
    let status = get(&paths.status_replicas)
        .and_then(|v| v.as_i64())
        .unwrap_or(0);
    let selector = match &paths.label_selector {
        Some(p) if paths.selector_is_label_selector => get(p).map(|s| format_label_selector(&s)),
        Some(p) => get(p).and_then(|v| v.as_str().map(str::to_owned)),
        None => None,
    };
    let meta = &obj["metadata"];
    let mut m = Map::new();
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(k) {
            m.insert(k.into(), v.clone());
        }
    }
    let mut status_json = json!({"replicas": status});
    if let Some(s) = selector.filter(|s| !s.is_empty()) {
        status_json["selector"] = json!(s);
    }
    Ok(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": m,
        "spec": {"replicas": spec},
        "status": status_json,
    }))
}

/// Sets the value at a dotted path such as `.spec.replicas`, creating objects on the way.
fn set_path(obj: &mut Value, path: &str, value: Value) {
    let parts: Vec<&str> = path
        .trim_start_matches('.')
        .split('.')
        .filter(|p| !p.is_empty())
        .collect();
    let mut cur = obj;
    for (i, p) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        if i == parts.len() - 1 {
            cur[*p] = value;
            return;
        }
        if !cur.get(*p).is_some_and(Value::is_object) {
            cur[*p] = json!({});
        }
        cur = &mut cur[*p];
    }
}

/// The apiVersion objects of `rt` are stored (and their fields owned) in.
fn storage_api_version(rt: &ResourceType) -> String {
    match rt.behaviour {
        Behaviour::EventsV1 => "v1".to_owned(),
        _ => rt.api_version(),
    }
}

fn object_rv(v: &Value) -> u64 {
    object_rv_str(v).parse().unwrap_or(0)
}

fn object_rv_str(v: &Value) -> &str {
    v.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn parse_rv(s: &str) -> Result<u64, ApiError> {
    s.parse().map_err(|_| {
        ApiError::bad_request(format!("resourceVersion: Invalid value: \"{s}\": strconv.ParseUint: parsing \"{s}\": invalid syntax"))
    })
}

fn too_large(requested: u64, current: u64) -> ApiError {
    let mut e = ApiError::new(
        504,
        "Timeout",
        format!("Timeout: Too large resource version: {requested}, current: {current}"),
    );
    e.details = Some(
        json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1}),
    );
    e.retry_after = Some(1);
    e
}

fn encode_continue(rv: u64, key: &ObjKey) -> String {
    let raw = json!({"v": "meta.k8s.io/v1", "rv": rv, "ns": key.0, "name": key.1}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_continue(token: &str) -> Result<(u64, ObjKey), ApiError> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = v.get("rv").and_then(Value::as_u64).ok_or_else(bad)?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    Ok((rv, (s("ns").ok_or_else(bad)?, s("name").ok_or_else(bad)?)))
}

fn check_type(rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    let av = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    let expected_av = match rt.behaviour {
        Behaviour::EventsV1 => "v1".to_owned(),
        _ => rt.api_version(),
    };
    let group_matches = match rt.behaviour {
        // Objects of a CRD may be written in any served version of their group.
        Behaviour::Custom => av.split_once('/').map(|(g, _)| g) == Some(rt.group.as_str()),
        _ => av == expected_av,
    };
    if (!av.is_empty() && !group_matches) || (!kind.is_empty() && kind != rt.kind) {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            rt.api_version()
        )));
    }
    Ok(())
}

/// Refuses bodies that would not decode into the type: a non-object, or metadata fields of the
/// wrong JSON type (kube-apiserver's decoder answers these with 400).
fn check_shape(rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    let cannot = |why: String| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {why}",
            rt.kind, rt.version, rt.kind
        ))
    };
    if !obj.is_object() {
        return Err(cannot(format!(
            "the object must be a JSON object, not {obj}"
        )));
    }
    let Some(meta) = obj.get("metadata") else {
        return Ok(());
    };
    if meta.is_null() {
        return Ok(());
    }
    let Some(meta) = meta.as_object() else {
        return Err(cannot("metadata must be an object".to_owned()));
    };
    for key in ["labels", "annotations"] {
        match meta.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) if m.values().all(Value::is_string) => {}
            Some(_) => {
                return Err(cannot(format!(
                    "metadata.{key} must map strings to strings"
                )));
            }
        }
    }
    for key in ["finalizers", "ownerReferences", "managedFields"] {
        match meta.get(key) {
            None | Some(Value::Null | Value::Array(_)) => {}
            Some(_) => return Err(cannot(format!("metadata.{key} must be a list"))),
        }
    }
    for key in [
        "name",
        "namespace",
        "generateName",
        "resourceVersion",
        "uid",
    ] {
        match meta.get(key) {
            None | Some(Value::Null | Value::String(_)) => {}
            Some(_) => return Err(cannot(format!("metadata.{key} must be a string"))),
        }
    }
    if rt.behaviour == Behaviour::Secret {
        for key in ["data", "stringData"] {
            match obj.get(key) {
                None | Some(Value::Null) => {}
                Some(Value::Object(m)) if m.values().all(Value::is_string) => {}
                Some(_) => return Err(cannot(format!("{key} must map strings to strings"))),
            }
        }
    }
    Ok(())
}

fn check_name(obj: &Value, name: &str) -> Result<(), ApiError> {
    match obj.pointer("/metadata/name").and_then(Value::as_str) {
        Some(n) if !n.is_empty() && n != name => Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        ))),
        _ => Ok(()),
    }
}

/// `metadata.name` must be a DNS-1123 subdomain (a label for namespaces).
fn validate_name(rt: &ResourceType, name: &str) -> Result<(), ApiError> {
    let label = rt.behaviour == Behaviour::Namespace;
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.len() <= 63
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && p.as_bytes()[0].is_ascii_alphanumeric()
            && p.as_bytes()[p.len() - 1].is_ascii_alphanumeric()
    };
    let (ok, detail) = if label {
        (
            part_ok(name),
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        )
    } else {
        (
            name.len() <= 253 && name.split('.').all(part_ok),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        )
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            rt,
            name,
            "metadata.name",
            "Invalid value",
            Some(format!("{name:?}")),
            detail,
        ))
    }
}

fn json_patch_error(rt: &ResourceType, name: &str, patch: &Value, why: &str) -> ApiError {
    ApiError::invalid(
        &rt.group,
        &rt.kind,
        name,
        &[FieldError {
            field: "patch".into(),
            kind: "Invalid value",
            detail: why.to_owned(),
            value: Some(format!("{:?}", patch.to_string())),
        }],
    )
}

fn conflict_error(conflicts: &fields::Conflicts) -> ApiError {
    let mut e = ApiError::new(409, "Conflict", conflicts.to_string());
    let causes: Vec<Value> = conflicts
        .0
        .iter()
        .map(|c| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {}", c.manager_label()), "field": c.path}))
        .collect();
    e.details = Some(json!({"causes": causes}));
    e
}

fn crd_invalid(rt: &ResourceType, name: &str, errs: &[(String, String)]) -> ApiError {
    let errors: Vec<FieldError> = errs
        .iter()
        .map(|(field, detail)| {
            let (kind, rest) = match detail.split_once(": ") {
                Some((k @ ("Required value" | "Invalid value" | "Unsupported value"), r)) => {
                    (k, r.to_owned())
                }
                _ if detail == "Required value" => ("Required value", String::new()),
                _ => ("Invalid value", detail.clone()),
            };
            let kind: &'static str = match kind {
                "Required value" => "Required value",
                "Unsupported value" => "Unsupported value",
                _ => "Invalid value",
            };
            FieldError {
                field: field.clone(),
                kind,
                detail: rest,
                value: None,
            }
        })
        .collect();
    ApiError::invalid(&rt.group, &rt.kind, name, &errors)
}

/// Whether anything but metadata (and status, when it is a subresource) changed; for
/// Deployments annotations count too.
fn spec_changed(rt: &ResourceType, old: &Value, new: &Value) -> bool {
    let (Some(o), Some(n)) = (old.as_object(), new.as_object()) else {
        return old != new;
    };
    let skip = |k: &str| {
        k == "metadata" || k == "apiVersion" || k == "kind" || (rt.status && k == "status")
    };
    let keys: std::collections::BTreeSet<&String> =
        o.keys().chain(n.keys()).filter(|k| !skip(k)).collect();
    if keys.into_iter().any(|k| o.get(k) != n.get(k)) {
        return true;
    }
    rt.generation == Generation::SpecAndAnnotations
        && old.pointer("/metadata/annotations") != new.pointer("/metadata/annotations")
}

/// Whether a write changes nothing but managedFields timestamps (a no-op).
fn unchanged(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
            if let Some(Value::Array(entries)) = m.get_mut("managedFields") {
                for e in entries {
                    e.as_object_mut().map(|x| x.remove("time"));
                }
            }
        }
        v
    };
    strip(old) == strip(new)
}

fn fold_string_data(rt: &ResourceType, name: &str, obj: &mut Value) -> Result<(), ApiError> {
    let engine = base64::engine::general_purpose::STANDARD;
    if let Some(data) = obj.get("data").and_then(Value::as_object) {
        for (k, v) in data {
            let s = v.as_str().unwrap_or_default();
            if let Err(e) = engine.decode(s) {
                return Err(ApiError::bad_request(format!(
                    "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte {}: data[{k}] ({e})",
                    match e {
                        base64::DecodeError::InvalidByte(i, _) => i,
                        _ => 0,
                    }
                )));
            }
        }
    }
    if let Some(Value::Object(sd)) = obj.as_object_mut().and_then(|m| m.remove("stringData")) {
        if !obj.get("data").is_some_and(Value::is_object) {
            obj["data"] = json!({});
        }
        for (k, v) in sd {
            let Some(s) = v.as_str() else {
                return Err(ApiError::invalid_field(
                    rt,
                    name,
                    &format!("stringData[{k}]"),
                    "Invalid value",
                    None,
                    "must be a string",
                ));
            };
            obj["data"][k] = json!(engine.encode(s));
        }
    }
    if obj
        .get("type")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        obj["type"] = json!("Opaque");
    }
    Ok(())
}

fn default_workload(rt: &ResourceType, obj: &mut Value) {
    let spec = &mut obj["spec"];
    if !spec.is_object() {
        *spec = json!({});
    }
    let defaults: &[(&str, Value)] = &[("replicas", json!(1)), ("revisionHistoryLimit", json!(10))];
    for (k, v) in defaults {
        if spec.get(*k).is_none_or(Value::is_null) {
            spec[*k] = v.clone();
        }
    }
    if let Some(template) = spec.get_mut("template") {
        default_pod_template(template);
    }
    if rt.behaviour == Behaviour::Deployment {
        if spec.get("progressDeadlineSeconds").is_none() {
            spec["progressDeadlineSeconds"] = json!(600);
        }
        if spec.get("strategy").is_none_or(|s| s.get("type").is_none()) {
            spec["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}});
        }
    } else {
        if spec.get("podManagementPolicy").is_none() {
            spec["podManagementPolicy"] = json!("OrderedReady");
        }
        if spec.get("updateStrategy").is_none() {
            spec["updateStrategy"] =
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}});
        }
    }
}

fn set_default(obj: &mut Value, key: &str, value: Value) {
    if let Some(m) = obj.as_object_mut()
        && m.get(key).is_none_or(Value::is_null)
    {
        m.insert(key.to_owned(), value);
    }
}

/// The API server's defaults of a pod template that `kubectl describe` shows.
fn default_pod_template(template: &mut Value) {
    let Some(spec) = template.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    for list in ["containers", "initContainers"] {
        let Some(Value::Array(containers)) = spec.get_mut(list) else {
            continue;
        };
        for c in containers.iter_mut().filter(|c| c.is_object()) {
            let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
            let tag = image.rsplit('/').next().unwrap_or_default();
            let latest = !tag.contains(':') || tag.ends_with(":latest");
            set_default(
                c,
                "imagePullPolicy",
                json!(if latest { "Always" } else { "IfNotPresent" }),
            );
            set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
            set_default(c, "terminationMessagePolicy", json!("File"));
            set_default(c, "resources", json!({}));
            if let Some(Value::Array(ports)) = c.get_mut("ports") {
                for p in ports.iter_mut() {
                    set_default(p, "protocol", json!("TCP"));
                }
            }
            for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                let Some(p) = c.get_mut(probe).filter(|p| p.is_object()) else {
                    continue;
                };
                set_default(p, "timeoutSeconds", json!(1));
                set_default(p, "periodSeconds", json!(10));
                set_default(p, "successThreshold", json!(1));
                set_default(p, "failureThreshold", json!(3));
                if let Some(h) = p.get_mut("httpGet").filter(|h| h.is_object()) {
                    set_default(h, "scheme", json!("HTTP"));
                }
            }
        }
    }
}

fn validate_workload(rt: &ResourceType, name: &str, obj: &Value) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    let replicas = obj
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if replicas < 0 {
        errors.push(FieldError {
            field: "spec.replicas".into(),
            kind: "Invalid value",
            detail: "must be greater than or equal to 0".into(),
            value: Some(replicas.to_string()),
        });
    }
    match obj.pointer("/spec/selector") {
        None | Some(Value::Null) => errors.push(FieldError {
            field: "spec.selector".into(),
            kind: "Required value",
            detail: String::new(),
            value: None,
        }),
        Some(sel) => {
            let labels = obj
                .pointer("/spec/template/metadata/labels")
                .cloned()
                .unwrap_or_else(|| json!({}));
            let probe = json!({"metadata": {"labels": labels}});
            let selector = LabelSelector::parse(&format_label_selector(sel));
            if !selector.is_ok_and(|s| !s.is_empty() && s.matches(&probe)) {
                let shown = labels
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| format!("{k:?}:{v}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default();
                errors.push(FieldError {
                    field: "spec.template.metadata.labels".into(),
                    kind: "Invalid value",
                    detail: "`selector` does not match template `labels`".into(),
                    value: Some(format!("map[string]string{{{shown}}}")),
                });
            }
        }
    }
    if obj
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        errors.push(FieldError {
            field: "spec.template.spec.containers".into(),
            kind: "Required value",
            detail: String::new(),
            value: None,
        });
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&rt.group, &rt.kind, name, &errors))
    }
}

/// The store's lock and change notification.
pub(crate) struct Shared {
    state: Mutex<State>,
    changed: tokio::sync::watch::Sender<u64>,
}

impl Shared {
    pub(crate) fn new(history_limit: usize) -> Self {
        let state = State::new(history_limit);
        let rv = state.resource_version();
        Self {
            state: Mutex::new(state),
            changed: tokio::sync::watch::Sender::new(rv),
        }
    }

    /// Runs `f` under the lock and wakes waiters if the resourceVersion moved.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let (out, before, after) = {
            let mut s = self.lock();
            let before = s.resource_version();
            let out = f(&mut s);
            (out, before, s.resource_version())
        };
        if after != before {
            self.changed.send_replace(after);
        }
        out
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every write commits at its
        // end), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn subscribe_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }
}
