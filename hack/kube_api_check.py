#!/usr/bin/env python3
"""Check that every Kubernetes API request in a log exists in an older Kubernetes.

The operator is compiled against k8s-openapi's newest types, but it must only call APIs that
Kubernetes 1.28 serves. This reads a request log (the JSON-lines format of hack/rbac_audit.py)
and checks every request's (method, path) against the API operations of the Kubernetes Python
client, which is generated from one Kubernetes release's OpenAPI document: client 28.x is
Kubernetes 1.28 (pinned in requirements-dev.txt). Its `kubernetes/client/api/*.py` call
`api_client.call_api('<path template>', '<METHOD>', ...)` once per operation, with the query
parameters the operation takes in `all_params`; that is the list this compares with, offline.

Requests to the custom resources of the CRDs given with --crd (group, plural, subresources) are
checked against those CRDs instead. A watch (`?watch=true`) must hit an operation that takes a
`watch` parameter.

Usage:

    python3 hack/kube_api_check.py --log requests.jsonl [--crd config/crd/*.yaml]
        [--user-agent-prefix avi-autoscaler]

Exit status: 0 when every request exists, 1 when not, 2 on bad input. Needs PyYAML and the
`kubernetes` package (only its files are read; it is not imported).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Iterable
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from rbac_audit import AuditInputError, Request, read_request_log, request_attributes

CALL_API = re.compile(r"call_api\(\s*'(?P<path>[^']+)',\s*'(?P<method>[A-Z]+)'")
ALL_PARAMS = re.compile(r"all_params = \[(?P<params>[^\]]*)\]")


@dataclass(frozen=True)
class Operation:
    """One API operation: a method and a path template with the query parameters it takes."""

    method: str
    template: str
    params: frozenset[str]

    def matches(self, method: str, path: str) -> bool:
        return method == self.method and _template_regex(self.template).fullmatch(path) is not None


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template.rstrip("/") or "/")
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts))


def client_version() -> str:
    """The installed Kubernetes Python client's version, e.g. 28.1.0."""
    return metadata.version("kubernetes")


def client_operations() -> list[Operation]:
    """Every operation of the installed Kubernetes Python client."""
    files = [Path(str(f.locate())) for f in metadata.files("kubernetes") or [] if re.fullmatch(r"kubernetes/client/api/\w+\.py", str(f))]
    if not files:
        raise AuditInputError("the kubernetes Python client has no kubernetes/client/api/*.py (is it installed?)")
    operations = []
    for file in files:
        # One operation per `*_with_http_info` function: its all_params, then its call_api.
        for function in file.read_text().split("\n    def ")[1:]:
            call = CALL_API.search(function)
            params = ALL_PARAMS.search(function)
            if call is None:
                continue
            names = frozenset(re.findall(r"'(\w+)'", params.group("params"))) if params else frozenset()
            # custom_objects_api's `/apis/{group}/{version}/{plural}` would match any path:
            # custom resources are checked against their CRDs instead.
            if "{group}" in call.group("path"):
                continue
            operations.append(Operation(call.group("method"), call.group("path"), names))
    return operations


@dataclass(frozen=True)
class CustomResource:
    group: str
    versions: frozenset[str]
    plural: str
    namespaced: bool
    subresources: frozenset[str]


def crd_resources(crd_texts: Iterable[str]) -> list[CustomResource]:
    resources = []
    for text in crd_texts:
        for crd in yaml.safe_load_all(text):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            subresources = set()
            for version in spec["versions"]:
                subresources |= set(version.get("subresources", {}))
            resources.append(
                CustomResource(
                    group=spec["group"],
                    versions=frozenset(v["name"] for v in spec["versions"] if v.get("served", True)),
                    plural=spec["names"]["plural"],
                    namespaced=spec["scope"] == "Namespaced",
                    subresources=frozenset(subresources),
                )
            )
    return resources


# Verbs a custom resource serves (apiextensions-apiserver's customresource_handler).
CUSTOM_RESOURCE_VERBS = {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}


def _custom_group(request: Request, crds: list[CustomResource]) -> list[CustomResource] | None:
    """The CRDs of the request's API group, or None when no given CRD defines that group."""
    attrs = request_attributes(request.method, request.path)
    if not attrs.is_resource_request:
        return None
    same_group = [crd for crd in crds if attrs.api_group == crd.group]
    return same_group or None


def check(requests: Iterable[Request], operations: list[Operation], crds: list[CustomResource]) -> list[str]:
    """The problems: one line per request Kubernetes (of the client's version) does not serve."""
    problems = []
    for request in requests:
        split = urlsplit(request.path)
        path = unquote(split.path).rstrip("/") or "/"
        query = parse_qs(split.query, keep_blank_values=True)
        attrs = request_attributes(request.method, request.path)
        group = _custom_group(request, crds)
        if group is not None:
            ok = any(
                attrs.api_version in crd.versions
                and attrs.resource == crd.plural
                and (attrs.subresource == "" or attrs.subresource in crd.subresources)
                and attrs.verb in CUSTOM_RESOURCE_VERBS
                # A cluster-scoped kind has no namespaced paths; a namespaced kind is listed and
                # watched across namespaces without one, and reached by name only with one.
                and (crd.namespaced or not attrs.namespace)
                and (not crd.namespaced or bool(attrs.namespace) or attrs.verb in {"list", "watch"})
                for crd in group
            )
            if not ok:
                problems.append(f"{request.method} {request.path}: not served by the CRDs of {attrs.api_group}")
            continue
        method = "GET" if request.method == "HEAD" else request.method
        candidates = [o for o in operations if o.matches(method, path)]
        watch = query.get("watch", ["false"])[0].lower() not in {"0", "f", "false"}
        if watch:
            candidates = [o for o in candidates if "watch" in o.params]
        if not candidates:
            what = attrs.describe() if attrs.is_resource_request else path
            problems.append(f"{request.method} {request.path}: no such operation ({what}{', watch' if watch else ''})")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--log", required=True, help="request log, JSON lines (see hack/rbac_audit.py)")
    parser.add_argument("--crd", action="append", default=[], help="a CRD file whose resources are served too (repeatable)")
    parser.add_argument("--user-agent-prefix", help="only check requests whose User-Agent starts with this")
    args = parser.parse_args(argv)
    try:
        requests = read_request_log(Path(args.log).read_text())
        if args.user_agent_prefix is not None:
            requests = [r for r in requests if (r.user_agent or "").startswith(args.user_agent_prefix)]
        crds = crd_resources(Path(f).read_text() for f in args.crd)
        operations = client_operations()
    except (AuditInputError, OSError, yaml.YAMLError) as e:
        print(f"kube_api_check: {e}", file=sys.stderr)
        return 2
    problems = check(requests, operations, crds)
    version = client_version()
    print(f"{len(requests)} request(s) checked against the API of the Kubernetes client {version}")
    for problem in problems:
        print(f"  {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
