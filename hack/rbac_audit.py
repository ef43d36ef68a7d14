#!/usr/bin/env python3
"""Compare RBAC rules with the API calls a client actually made.

Given a request log and rendered manifests (the chart's `helm template` output or
`kubectl kustomize config/default`), this answers two questions for one ServiceAccount:

* disallowed: which requests would the Kubernetes RBAC authorizer refuse?
* unused: which granted (apiGroup, resource, verb) was never exercised?

Requests are turned into authorizer attributes exactly as kube-apiserver does it
(k8s.io/apiserver/pkg/endpoints/request/requestinfo.go, RequestInfoFactory.NewRequestInfo), and
matched as the RBAC authorizer does (k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac,
rbac.go and the rule helpers in pkg/apis/rbac/v1/evaluation_helpers.go).

Request log format: JSON lines, one request per line, UTF-8:

    {"method": "GET", "path": "/apis/apps/v1/namespaces/ns1/deployments/web/scale", "status": 200}

* method: the HTTP method (GET, HEAD, POST, PUT, PATCH, DELETE).
* path: the request path with its query string, as sent (percent-encoding allowed).
* status: the HTTP status the server answered (reported, not used for the decision).
* userAgent (optional): the client's User-Agent; see --user-agent-prefix.
Other fields are ignored, and blank lines are skipped.

Usage:

    python3 hack/rbac_audit.py --log requests.jsonl --manifests rendered.yaml \\
        --service-account avi-autoscaler/avi-autoscaler \\
        [--allow-unused apps:statefulsets/scale:patch ...] [--user-agent-prefix avi-autoscaler]

Exit status: 0 when every request is allowed and every rule used (or allowed to be unused),
1 when not, 2 on bad input. Needs PyYAML.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from typing import Iterable, Iterator
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

# requestinfo.go: verbs that may appear as the first path segment after the version.
SPECIAL_VERBS = {"proxy", "watch"}
# requestinfo.go: verbs whose third path part is not a subresource.
SPECIAL_VERBS_NO_SUBRESOURCES = {"proxy"}
# requestinfo.go: subresources of a namespace itself (/api/v1/namespaces/{name}/status).
NAMESPACE_SUBRESOURCES = {"status", "finalize"}
API_PREFIXES = {"api", "apis"}
GROUPLESS_API_PREFIXES = {"api"}

METHOD_VERBS = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}

# Every cluster binds these built-in ClusterRoles to system:authenticated (kube-apiserver's
# bootstrap policy, plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go): discovery and
# version information, and self-reviews. They are not part of the chart, are never reported as
# unused, and explain why API discovery needs no rule of ours.
BUILT_IN_RULES = [
    {
        "role": "ClusterRole/system:discovery",
        "rule": {
            "nonResourceURLs": [
                "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
                "/openapi/*", "/readyz", "/version", "/version/",
            ],
            "verbs": ["get"],
        },
    },
    {
        "role": "ClusterRole/system:public-info-viewer",
        "rule": {
            "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
            "verbs": ["get"],
        },
    },
    {
        "role": "ClusterRole/system:basic-user",
        "rule": {
            "apiGroups": ["authorization.k8s.io"],
            "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
            "verbs": ["create"],
        },
    },
    {
        "role": "ClusterRole/system:basic-user",
        "rule": {
            "apiGroups": ["authentication.k8s.io"],
            "resources": ["selfsubjectreviews"],
            "verbs": ["create"],
        },
    },
]


class AuditInputError(ValueError):
    """A request log or manifest that cannot be read; the message says where and why."""


@dataclass(frozen=True)
class Request:
    """One logged API request."""

    method: str
    path: str
    status: int | None = None
    user_agent: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class Attributes:
    """What the authorizer sees of a request (a subset of RequestInfo)."""

    is_resource_request: bool
    verb: str
    path: str
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""

    @property
    def combined_resource(self) -> str:
        """`resource/subresource`, the form RBAC rules name subresources in."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    def describe(self) -> str:
        """A short human-readable form, e.g. `patch apps/deployments/scale ns1/web`."""
        if not self.is_resource_request:
            return f"{self.verb} {self.path}"
        group = self.api_group or "core"
        where = f"{self.namespace}/" if self.namespace else "(cluster) "
        return f"{self.verb} {group}/{self.combined_resource} {where}{self.name}".rstrip()


def _split_path(path: str) -> list[str]:
    path = path.strip("/")
    return path.split("/") if path else []


def _is_watch(query: dict[str, list[str]]) -> bool:
    # metav1.ListOptions decodes `watch` with Convert_Slice_string_To_bool: absent is false,
    # "0", "f" and "false" (any case) are false, anything else is true.
    values = query.get("watch")
    if not values:
        return False
    return values[0].lower() not in {"0", "f", "false"}


def _field_selector_name(query: dict[str, list[str]]) -> str:
    # requestinfo.go: a list or watch whose fieldSelector requires metadata.name=X (alone or
    # with other terms: fields.Selector.RequiresExactMatch) is authorized as a request for X,
    # when X is a valid path segment (path.IsValidPathSegmentName).
    for selector in query.get("fieldSelector", [])[:1]:
        for requirement in selector.split(","):
            requirement = requirement.strip()
            for op in ("==", "="):
                if requirement.startswith("metadata.name" + op):
                    name = requirement[len("metadata.name" + op):]
                    if name not in {".", ".."} and "/" not in name and "%" not in name:
                        return name
                    return ""
    return ""


def request_attributes(method: str, raw_path: str) -> Attributes:
    """Turn a method and a path (with query) into authorizer attributes, as kube-apiserver does."""
    split = urlsplit(raw_path)
    path = unquote(split.path)
    query = parse_qs(split.query, keep_blank_values=True)
    method = method.upper()
    non_resource = Attributes(is_resource_request=False, verb=method.lower(), path=path)

    parts = _split_path(path)
    if len(parts) < 3 or parts[0] not in API_PREFIXES:
        return non_resource
    prefix, parts = parts[0], parts[1:]
    group = ""
    if prefix not in GROUPLESS_API_PREFIXES:
        if len(parts) < 3:
            return non_resource
        group, parts = parts[0], parts[1:]
    version, parts = parts[0], parts[1:]

    if parts and parts[0] in SPECIAL_VERBS:
        if len(parts) < 2:
            raise AuditInputError(f"{raw_path}: cannot tell the resource of a {parts[0]} request")
        verb, parts = parts[0], parts[1:]
    else:
        verb = METHOD_VERBS.get(method, "")

    namespace = ""
    if parts and parts[0] == "namespaces":
        if len(parts) > 1:
            namespace = parts[1]
            if len(parts) > 2 and parts[2] not in NAMESPACE_SUBRESOURCES:
                parts = parts[2:]

    resource = subresource = name = ""
    if len(parts) >= 3 and verb not in SPECIAL_VERBS_NO_SUBRESOURCES:
        subresource = parts[2]
    if len(parts) >= 2:
        name = parts[1]
    if len(parts) >= 1:
        resource = parts[0]

    if not name and verb == "get":
        verb = "watch" if _is_watch(query) else "list"
        name = _field_selector_name(query)
    if not name and verb == "delete":
        verb = "deletecollection"

    return Attributes(
        is_resource_request=True,
        verb=verb,
        path=path,
        api_group=group,
        api_version=version,
        namespace=namespace,
        resource=resource,
        subresource=subresource,
        name=name,
    )


# ---------------------------------------------------------------------------------------------
# Rules and bindings


@dataclass(frozen=True)
class Grant:
    """A rule that applies to the subject, where it applies, and where it came from."""

    rule: dict
    role: str  # "ClusterRole/name" or "Role/namespace/name"
    namespace: str | None  # None: cluster-wide (ClusterRoleBinding)
    built_in: bool = False


def _matches(values: Iterable[str], wanted: str) -> bool:
    values = list(values)
    return "*" in values or wanted in values


def _resource_matches(rule: dict, attrs: Attributes) -> bool:
    # evaluation_helpers.go ResourceMatches: "*", the exact resource (with "/subresource"), or
    # "*/subresource".
    combined = attrs.combined_resource
    for resource in rule.get("resources", []):
        if resource in ("*", combined):
            return True
        if attrs.subresource and resource == f"*/{attrs.subresource}":
            return True
    return False


def _non_resource_url_matches(rule: dict, path: str) -> bool:
    for url in rule.get("nonResourceURLs", []):
        if url == "*" or url == path or (url.endswith("*") and path.startswith(url[:-1])):
            return True
    return False


def rule_allows(rule: dict, attrs: Attributes) -> bool:
    """Whether one PolicyRule allows the request (rbac.go RuleAllows)."""
    if not _matches(rule.get("verbs", []), attrs.verb):
        return False
    if not attrs.is_resource_request:
        return _non_resource_url_matches(rule, attrs.path)
    if not _matches(rule.get("apiGroups", []), attrs.api_group):
        return False
    if not _resource_matches(rule, attrs):
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


def grant_applies(grant: Grant, attrs: Attributes) -> bool:
    """A ClusterRoleBinding applies everywhere; a RoleBinding to its namespace's resources only
    (never to cluster-scoped resources or non-resource URLs)."""
    if grant.namespace is None:
        return True
    return attrs.is_resource_request and attrs.namespace == grant.namespace


def _documents(texts: Iterable[str]) -> Iterator[dict]:
    for text in texts:
        for doc in yaml.safe_load_all(text):
            if not doc:
                continue
            if doc.get("kind", "").endswith("List") and "items" in doc:
                yield from (item for item in doc["items"] if item)
            else:
                yield doc


def _subject_matches(subject: dict, binding_namespace: str | None, sa_namespace: str, sa_name: str) -> bool:
    kind = subject.get("kind")
    if kind == "ServiceAccount":
        # A RoleBinding's ServiceAccount subject without a namespace means the binding's own.
        namespace = subject.get("namespace") or binding_namespace
        return subject.get("name") == sa_name and namespace == sa_namespace
    if kind == "User":
        return subject.get("name") == f"system:serviceaccount:{sa_namespace}:{sa_name}"
    if kind == "Group":
        return subject.get("name") in {
            "system:serviceaccounts",
            f"system:serviceaccounts:{sa_namespace}",
            "system:authenticated",
        }
    return False


def grants_for(manifests: Iterable[str], service_account: str, include_built_in: bool = True) -> list[Grant]:
    """The rules that the manifests' bindings grant to `namespace/name`."""
    try:
        sa_namespace, sa_name = service_account.split("/", 1)
    except ValueError:
        raise AuditInputError(f"service account {service_account!r}: expected NAMESPACE/NAME") from None
    docs = list(_documents(manifests))
    cluster_roles = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "ClusterRole"}
    roles = {
        (d["metadata"].get("namespace", ""), d["metadata"]["name"]): d
        for d in docs
        if d.get("kind") == "Role"
    }
    grants: list[Grant] = []
    for binding in docs:
        kind = binding.get("kind")
        if kind not in {"RoleBinding", "ClusterRoleBinding"}:
            continue
        binding_namespace = binding["metadata"].get("namespace") if kind == "RoleBinding" else None
        if not any(
            _subject_matches(s, binding_namespace, sa_namespace, sa_name)
            for s in binding.get("subjects") or []
        ):
            continue
        ref = binding["roleRef"]
        if ref["kind"] == "ClusterRole":
            role = cluster_roles.get(ref["name"])
            role_id = f"ClusterRole/{ref['name']}"
        else:
            role = roles.get((binding_namespace, ref["name"]))
            role_id = f"Role/{binding_namespace}/{ref['name']}"
        if role is None:
            raise AuditInputError(
                f"{kind} {binding['metadata']['name']} refers to {role_id}, which the manifests lack"
            )
        if role.get("aggregationRule"):
            raise AuditInputError(f"{role_id} aggregates other roles; this tool does not expand them")
        for rule in role.get("rules") or []:
            grants.append(Grant(rule=rule, role=role_id, namespace=binding_namespace))
    if include_built_in:
        for entry in BUILT_IN_RULES:
            grants.append(Grant(rule=entry["rule"], role=entry["role"], namespace=None, built_in=True))
    return grants


# ---------------------------------------------------------------------------------------------
# Permissions granted, one (group, resource, verb) at a time


@dataclass(frozen=True, order=True)
class Permission:
    """One verb on one resource (or non-resource URL), the unit in which unused grants are
    reported. Written `GROUP:RESOURCE:VERB` (core group empty, e.g. `:secrets:get`) or
    `nonResource:URL:VERB`."""

    api_group: str
    resource: str
    verb: str
    non_resource: bool = False

    def __str__(self) -> str:
        if self.non_resource:
            return f"nonResource:{self.resource}:{self.verb}"
        return f"{self.api_group}:{self.resource}:{self.verb}"

    @staticmethod
    def parse(text: str) -> "Permission":
        """Parse `GROUP:RESOURCE:VERB` (`core` is accepted for the empty core group)."""
        parts = text.split(":")
        if len(parts) != 3 or not parts[1] or not parts[2]:
            raise AuditInputError(f"{text!r}: expected GROUP:RESOURCE:VERB, e.g. apps:deployments/scale:patch")
        group, resource, verb = parts
        if group == "nonResource":
            return Permission("", resource, verb, non_resource=True)
        return Permission("" if group == "core" else group, resource, verb)


def rule_permissions(rule: dict) -> list[Permission]:
    """Expand a rule into the permissions it grants (wildcards stay as `*`)."""
    verbs = rule.get("verbs", [])
    if rule.get("nonResourceURLs"):
        return [Permission("", url, verb, non_resource=True) for url in rule["nonResourceURLs"] for verb in verbs]
    return [
        Permission(group, resource, verb)
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in verbs
    ]


def permission_covers(permission: Permission, attrs: Attributes) -> bool:
    """Whether a granted permission is what allowed the request."""
    if permission.non_resource:
        return rule_allows({"nonResourceURLs": [permission.resource], "verbs": [permission.verb]}, attrs)
    return rule_allows(
        {"apiGroups": [permission.api_group], "resources": [permission.resource], "verbs": [permission.verb]},
        attrs,
    )


# ---------------------------------------------------------------------------------------------
# The audit


@dataclass
class Report:
    """The outcome of an audit."""

    requests: int = 0
    disallowed: list[tuple[Request, Attributes]] = field(default_factory=list)
    unused: list[tuple[Permission, list[str]]] = field(default_factory=list)
    allowed_unused: list[Permission] = field(default_factory=list)
    wildcards: list[tuple[Permission, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.disallowed and not self.unused and not self.wildcards

    def render(self) -> str:
        lines = [f"{self.requests} requests checked"]
        if self.disallowed:
            lines.append(f"{len(self.disallowed)} request(s) the RBAC authorizer would refuse:")
            for request, attrs in self.disallowed:
                where = f"line {request.line}: " if request.line else ""
                status = f" -> {request.status}" if request.status is not None else ""
                lines.append(f"  {where}{request.method} {request.path}{status}")
                lines.append(f"      needs: {attrs.describe()}")
        if self.unused:
            lines.append(f"{len(self.unused)} granted permission(s) no request used:")
            for permission, roles in self.unused:
                lines.append(f"  {permission}  (from {', '.join(roles)})")
        if self.wildcards:
            lines.append("wildcards are not allowed in the operator's rules:")
            for permission, role in self.wildcards:
                lines.append(f"  {permission}  (from {role})")
        if self.allowed_unused:
            lines.append("unused but allowed by --allow-unused: " + ", ".join(map(str, self.allowed_unused)))
        if self.ok:
            lines.append("every request is allowed and every granted permission is used")
        return "\n".join(lines)


def read_request_log(text: str) -> list[Request]:
    """Parse the JSON-lines request log (see the module doc)."""
    requests = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise AuditInputError(f"request log line {number}: not JSON ({e.msg})") from None
        if not isinstance(record, dict):
            raise AuditInputError(f"request log line {number}: expected a JSON object")
        method, path, status = record.get("method"), record.get("path"), record.get("status")
        if not isinstance(method, str) or not method:
            raise AuditInputError(f"request log line {number}: `method` must be a non-empty string")
        if not isinstance(path, str) or not path.startswith("/"):
            raise AuditInputError(f"request log line {number}: `path` must be a string starting with /")
        if status is not None and not isinstance(status, int):
            raise AuditInputError(f"request log line {number}: `status` must be an integer")
        user_agent = record.get("userAgent")
        requests.append(Request(method, path, status, user_agent if isinstance(user_agent, str) else None, number))
    return requests


def audit(
    requests: Iterable[Request],
    manifests: Iterable[str],
    service_account: str,
    allow_unused: Iterable[Permission] = (),
    user_agent_prefix: str | None = None,
) -> Report:
    """Check every request against the grants of `service_account` and find unused grants."""
    grants = grants_for(manifests, service_account)
    allow_unused = set(allow_unused)
    report = Report()
    used: set[tuple[str, Permission]] = set()
    for request in requests:
        if user_agent_prefix is not None and not (request.user_agent or "").startswith(user_agent_prefix):
            continue
        report.requests += 1
        attrs = request_attributes(request.method, request.path)
        allowed = False
        for grant in grants:
            if grant_applies(grant, attrs) and rule_allows(grant.rule, attrs):
                allowed = True
                for permission in rule_permissions(grant.rule):
                    if permission_covers(permission, attrs):
                        used.add((grant.role, permission))
        if not allowed:
            report.disallowed.append((request, attrs))

    granted: dict[Permission, list[str]] = {}
    for grant in grants:
        if grant.built_in:
            continue
        for permission in rule_permissions(grant.rule):
            if "*" in (permission.api_group, permission.resource, permission.verb) or permission.resource.startswith("*/"):
                report.wildcards.append((permission, grant.role))
            granted.setdefault(permission, [])
            if grant.role not in granted[permission]:
                granted[permission].append(grant.role)
    used_permissions = {permission for _, permission in used}
    for permission in sorted(granted):
        if permission in used_permissions:
            continue
        if permission in allow_unused:
            report.allowed_unused.append(permission)
        else:
            report.unused.append((permission, granted[permission]))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Compare RBAC rules with the API requests a client made (see the module doc).",
    )
    parser.add_argument("--log", required=True, help="request log, JSON lines (method, path, status)")
    parser.add_argument("--manifests", required=True, action="append", help="rendered manifests (YAML); repeatable")
    parser.add_argument("--service-account", required=True, help="NAMESPACE/NAME of the client's ServiceAccount")
    parser.add_argument(
        "--allow-unused",
        action="append",
        default=[],
        metavar="GROUP:RESOURCE:VERB",
        help="a granted permission the log need not use (e.g. apps:statefulsets/scale:patch); repeatable",
    )
    parser.add_argument("--user-agent-prefix", help="only check requests whose userAgent starts with this")
    args = parser.parse_args(argv)
    try:
        with open(args.log, encoding="utf-8") as f:
            requests = read_request_log(f.read())
        manifests = []
        for path in args.manifests:
            with open(path, encoding="utf-8") as f:
                manifests.append(f.read())
        report = audit(
            requests,
            manifests,
            args.service_account,
            [Permission.parse(p) for p in args.allow_unused],
            args.user_agent_prefix,
        )
    except (OSError, AuditInputError, yaml.YAMLError) as e:
        print(f"rbac_audit: {e}", file=sys.stderr)
        return 2
    print(report.render())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
