"""hack/rbac_audit.py: requests mapped to authorizer attributes as kube-apiserver does it, RBAC
matched as the RBAC authorizer does it, and the chart's rules checked against a hand-written
log of the calls the operator makes (the sample the end-to-end request log will replace)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import rbac_audit
from conftest import NAMESPACE, ROOT, VALUE_SETS, kustomize, render_templates
from rbac_audit import Permission, Request, audit, read_request_log, request_attributes

SAMPLE_LOG = Path(__file__).parent / "fixtures" / "operator-requests.sample.jsonl"
SERVICE_ACCOUNT = f"{NAMESPACE}/avi-autoscaler"
OPERATOR_AGENT = "avi-autoscaler/"


def chart_manifests(values: dict | None = None) -> list[str]:
    return [text for path, text in render_templates(values).items() if not path.endswith("NOTES.txt")]


def sample_requests() -> list[Request]:
    return read_request_log(SAMPLE_LOG.read_text())


# ---------------------------------------------------------------------------------------------
# Request attributes (requestinfo.go)

ATTRIBUTE_CASES = [
    # method, path -> (verb, group, resource, subresource, namespace, name)
    ("GET", "/apis/autoscaling.avi.dev/v1alpha1/aviautoscalers?limit=500",
     ("list", "autoscaling.avi.dev", "aviautoscalers", "", "", "")),
    ("GET", "/apis/autoscaling.avi.dev/v1alpha1/aviautoscalers?watch=true&resourceVersion=5",
     ("watch", "autoscaling.avi.dev", "aviautoscalers", "", "", "")),
    ("GET", "/apis/autoscaling.avi.dev/v1alpha1/aviautoscalers?watch=1",
     ("watch", "autoscaling.avi.dev", "aviautoscalers", "", "", "")),
    ("GET", "/apis/autoscaling.avi.dev/v1alpha1/aviautoscalers?watch=false",
     ("list", "autoscaling.avi.dev", "aviautoscalers", "", "", "")),
    ("GET", "/apis/autoscaling.avi.dev/v1alpha1/aviautoscalers?watch=F",
     ("list", "autoscaling.avi.dev", "aviautoscalers", "", "", "")),
    ("GET", "/apis/autoscaling.avi.dev/v1alpha1/namespaces/ns1/aviautoscalers?watch=true",
     ("watch", "autoscaling.avi.dev", "aviautoscalers", "", "ns1", "")),
    ("GET", "/apis/autoscaling.avi.dev/v1alpha1/watch/namespaces/ns1/aviautoscalers",
     ("watch", "autoscaling.avi.dev", "aviautoscalers", "", "ns1", "")),
    ("GET", "/apis/autoscaling.avi.dev/v1alpha1/watch/namespaces/ns1/aviautoscalers/web",
     ("watch", "autoscaling.avi.dev", "aviautoscalers", "", "ns1", "web")),
    ("PATCH", "/apis/autoscaling.avi.dev/v1alpha1/namespaces/ns1/aviautoscalers/web/status?fieldManager=x&force=true",
     ("patch", "autoscaling.avi.dev", "aviautoscalers", "status", "ns1", "web")),
    ("GET", "/apis/apps/v1/namespaces/ns1/deployments/web/scale",
     ("get", "apps", "deployments", "scale", "ns1", "web")),
    ("HEAD", "/apis/apps/v1/namespaces/ns1/deployments/web",
     ("get", "apps", "deployments", "", "ns1", "web")),
    ("PUT", "/apis/apps/v1/namespaces/ns1/deployments/web/scale",
     ("update", "apps", "deployments", "scale", "ns1", "web")),
    ("POST", "/apis/events.k8s.io/v1/namespaces/ns1/events",
     ("create", "events.k8s.io", "events", "", "ns1", "")),
    ("DELETE", "/api/v1/namespaces/ns1/pods",
     ("deletecollection", "", "pods", "", "ns1", "")),
    ("DELETE", "/api/v1/namespaces/ns1/pods/web-1",
     ("delete", "", "pods", "", "ns1", "web-1")),
    ("GET", "/api/v1/namespaces/ns1/secrets/avi-credentials",
     ("get", "", "secrets", "", "ns1", "avi-credentials")),
    ("GET", "/api/v1/namespaces/ns1/secrets?fieldSelector=metadata.name%3Davi-credentials",
     ("list", "", "secrets", "", "ns1", "avi-credentials")),
    ("GET", "/api/v1/namespaces/ns1/secrets?fieldSelector=metadata.name%3D%3Da,type%3DOpaque&watch=true",
     ("watch", "", "secrets", "", "ns1", "a")),
    ("GET", "/api/v1/namespaces/ns1/secrets?fieldSelector=metadata.name!%3Da",
     ("list", "", "secrets", "", "ns1", "")),
    ("GET", "/api/v1/namespaces", ("list", "", "namespaces", "", "", "")),
    ("GET", "/api/v1/namespaces/ns1", ("get", "", "namespaces", "", "ns1", "ns1")),
    ("PUT", "/api/v1/namespaces/ns1/finalize", ("update", "", "namespaces", "finalize", "ns1", "ns1")),
    ("GET", "/api/v1/nodes/node-1/proxy/metrics", ("get", "", "nodes", "proxy", "", "node-1")),
    ("GET", "/api/v1/proxy/nodes/node-1/metrics", ("proxy", "", "nodes", "", "", "node-1")),
    ("GET", "/apis/coordination.k8s.io/v1/namespaces/avi-autoscaler/leases/avi-autoscaler",
     ("get", "coordination.k8s.io", "leases", "", "avi-autoscaler", "avi-autoscaler")),
]


@pytest.mark.parametrize(("method", "path", "expected"), ATTRIBUTE_CASES, ids=[f"{m} {p}" for m, p, _ in ATTRIBUTE_CASES])
def test_request_attributes(method: str, path: str, expected: tuple) -> None:
    attrs = request_attributes(method, path)
    assert attrs.is_resource_request
    assert (attrs.verb, attrs.api_group, attrs.resource, attrs.subresource, attrs.namespace, attrs.name) == expected


@pytest.mark.parametrize(
    ("method", "path", "verb"),
    [
        ("GET", "/version", "get"),
        ("GET", "/api", "get"),
        ("GET", "/api/v1", "get"),
        ("GET", "/apis", "get"),
        ("GET", "/apis/apps", "get"),
        ("GET", "/apis/apps/v1", "get"),
        ("GET", "/openapi/v3/apis/apps/v1", "get"),
        ("POST", "/logs", "post"),
    ],
)
def test_non_resource_requests(method: str, path: str, verb: str) -> None:
    attrs = request_attributes(method, path)
    assert not attrs.is_resource_request
    assert (attrs.verb, attrs.path) == (verb, path.split("?")[0])


def test_watch_prefix_without_a_resource_is_refused() -> None:
    with pytest.raises(rbac_audit.AuditInputError, match="watch"):
        request_attributes("GET", "/apis/apps/v1/watch")


# ---------------------------------------------------------------------------------------------
# Rule matching (rbac.go, evaluation_helpers.go)


@pytest.mark.parametrize(
    ("rule", "method", "path", "allowed"),
    [
        ({"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]}, "GET", "/apis/apps/v1/namespaces/a/deployments/w", True),
        # A rule for the resource does not cover its subresources, and the reverse.
        ({"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]}, "GET", "/apis/apps/v1/namespaces/a/deployments/w/scale", False),
        ({"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["get"]}, "GET", "/apis/apps/v1/namespaces/a/deployments/w", False),
        ({"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["patch"]}, "PATCH", "/apis/apps/v1/namespaces/a/statefulsets/s/scale", True),
        ({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, "DELETE", "/api/v1/namespaces/a/secrets/s", True),
        ({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}, "GET", "/api/v1/namespaces/a/secrets", False),
        ({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["s"]}, "GET", "/api/v1/namespaces/a/secrets/s", True),
        ({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["s"]}, "GET", "/api/v1/namespaces/a/secrets/t", False),
        # create has no name, so resourceNames never allow it.
        ({"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"], "resourceNames": ["l"]}, "POST", "/apis/coordination.k8s.io/v1/namespaces/a/leases", False),
        ({"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]}, "GET", "/apis/extensions/v1beta1/namespaces/a/deployments/w", False),
        ({"nonResourceURLs": ["/metrics"], "verbs": ["get"]}, "GET", "/metrics", True),
        ({"nonResourceURLs": ["/apis/*"], "verbs": ["get"]}, "GET", "/apis/apps/v1", True),
        ({"nonResourceURLs": ["/apis/*"], "verbs": ["get"]}, "GET", "/apis", False),
    ],
)
def test_rule_allows(rule: dict, method: str, path: str, allowed: bool) -> None:
    assert rbac_audit.rule_allows(rule, request_attributes(method, path)) is allowed


ROLE_AND_BINDINGS = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: reader}
rules:
- {apiGroups: [""], resources: [configmaps], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader, namespace: a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: reader}
subjects:
- {kind: ServiceAccount, name: op}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: writer, namespace: b}
rules:
- {apiGroups: [""], resources: [configmaps], verbs: [update]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: writer, namespace: b}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: writer}
subjects:
- {kind: Group, name: "system:serviceaccounts:a"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: someone-else, namespace: c}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: reader}
subjects:
- {kind: ServiceAccount, name: other, namespace: a}
"""


def test_bindings_scope_the_grants() -> None:
    # A RoleBinding to a ClusterRole grants in its namespace only; a ServiceAccount subject
    # without a namespace means the binding's; groups of service accounts count.
    requests = [
        Request("GET", "/api/v1/namespaces/a/configmaps/x"),
        Request("PUT", "/api/v1/namespaces/b/configmaps/x"),
        Request("GET", "/api/v1/namespaces/b/configmaps/x"),
        Request("GET", "/api/v1/namespaces/c/configmaps/x"),
        Request("GET", "/api/v1/configmaps"),
    ]
    report = audit(requests, [ROLE_AND_BINDINGS], "a/op")
    assert [r.path for r, _ in report.disallowed] == [
        "/api/v1/namespaces/b/configmaps/x",
        "/api/v1/namespaces/c/configmaps/x",
        "/api/v1/configmaps",
    ]
    assert report.unused == []


def test_a_binding_to_a_missing_role_is_an_input_error() -> None:
    manifests = ROLE_AND_BINDINGS.replace("{name: writer, namespace: b}\nrules", "{name: renamed, namespace: b}\nrules")
    with pytest.raises(rbac_audit.AuditInputError, match="Role/b/writer"):
        audit([], [manifests], "a/op")


# ---------------------------------------------------------------------------------------------
# The chart's rules against the operator's calls


def test_sample_log_is_allowed_and_uses_every_rule_of_the_default_install() -> None:
    report = audit(sample_requests(), chart_manifests(), SERVICE_ACCOUNT, user_agent_prefix=OPERATOR_AGENT)
    assert report.requests == 37
    assert report.ok, report.render()


def test_user_agent_filter_leaves_other_clients_out() -> None:
    report = audit(sample_requests(), chart_manifests(), SERVICE_ACCOUNT)
    # The kubectl line lists pods, which the operator may not do.
    assert [r.path for r, _ in report.disallowed] == ["/api/v1/namespaces/routing-ns1/pods?labelSelector=app%3Dkuard"]


def test_kustomize_default_grants_the_same() -> None:
    manifests = [yaml.safe_dump_all(kustomize("config/default"))]
    report = audit(sample_requests(), manifests, SERVICE_ACCOUNT, user_agent_prefix=OPERATOR_AGENT)
    assert report.ok, report.render()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/namespaces/routing-ns1/secrets"),  # a list of secrets
        ("GET", "/api/v1/secrets?watch=true"),  # a cluster-wide watch of secrets
        ("PATCH", "/apis/apps/v1/namespaces/routing-ns1/deployments/kuard-deployment"),  # the target itself
        ("PUT", "/apis/apps/v1/namespaces/routing-ns1/deployments/kuard-deployment/scale"),  # update, not patch
        ("PATCH", "/apis/autoscaling.avi.dev/v1alpha1/namespaces/routing-ns1/aviautoscalers/kuard"),  # spec
        ("GET", "/apis/autoscaling.avi.dev/v1alpha1/namespaces/routing-ns1/aviautoscalers/kuard"),  # a get
        ("POST", "/api/v1/namespaces/routing-ns1/events"),  # core events
        ("PUT", "/apis/coordination.k8s.io/v1/namespaces/avi-autoscaler/leases/avi-autoscaler"),  # update
        ("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/x"),  # another namespace
        ("PATCH", "/apis/argoproj.io/v1alpha1/namespaces/routing-ns1/rollouts/r/scale"),  # a custom kind
        ("GET", "/metrics"),  # a non-resource URL outside discovery
    ],
)
def test_calls_outside_the_rules_are_disallowed(method: str, path: str) -> None:
    requests = sample_requests() + [Request(method, path, 200, "avi-autoscaler/0.1.0")]
    report = audit(requests, chart_manifests(), SERVICE_ACCOUNT, user_agent_prefix=OPERATOR_AGENT)
    assert [(r.method, r.path) for r, _ in report.disallowed] == [(method, path)]
    assert not report.ok


def test_custom_scale_targets_need_their_value() -> None:
    request = Request("PATCH", "/apis/argoproj.io/v1alpha1/namespaces/routing-ns1/rollouts/r/scale", 200, "avi-autoscaler/1")
    report = audit([request], chart_manifests(VALUE_SETS["custom-scale-targets"]), SERVICE_ACCOUNT)
    assert report.disallowed == []
    assert Permission("argoproj.io", "rollouts/scale", "get") in [p for p, _ in report.unused]


def test_unused_rules_are_reported() -> None:
    requests = [
        r
        for r in sample_requests()
        if "statefulsets" not in r.path and not (r.method == "PATCH" and "/events/" in r.path)
    ]
    report = audit(requests, chart_manifests(), SERVICE_ACCOUNT, user_agent_prefix=OPERATOR_AGENT)
    assert report.disallowed == []
    assert [str(p) for p, _ in report.unused] == [
        "apps:statefulsets:get",
        "apps:statefulsets:list",
        "apps:statefulsets:watch",
        "apps:statefulsets/scale:get",
        "apps:statefulsets/scale:patch",
        "events.k8s.io:events:patch",
    ]
    assert report.unused[0][1] == ["ClusterRole/avi-autoscaler"]
    # Kinds the end-to-end tests do not exercise can be allowed explicitly.
    allowed = [
        Permission.parse(p)
        for p in (
            "apps:statefulsets:get",
            "apps:statefulsets:list",
            "apps:statefulsets:watch",
            "apps:statefulsets/scale:get",
            "apps:statefulsets/scale:patch",
        )
    ]
    report = audit(requests, chart_manifests(), SERVICE_ACCOUNT, allowed, OPERATOR_AGENT)
    assert [str(p) for p, _ in report.unused] == ["events.k8s.io:events:patch"]
    assert [str(p) for p in report.allowed_unused] == [str(p) for p in allowed]


def test_namespaced_install_refuses_calls_elsewhere() -> None:
    # Inline connections on, so that Secrets in the watched namespace may be read.
    manifests = chart_manifests({**VALUE_SETS["single-namespace"], "inlineControllers": {"enabled": True}})
    base = "/apis/autoscaling.avi.dev/v1alpha1"
    requests = [
        Request("GET", f"{base}/namespaces/routing-ns1/aviautoscalers?limit=500"),
        Request("GET", f"{base}/namespaces/routing-ns1/aviautoscalers?watch=true"),
        Request("GET", "/api/v1/namespaces/routing-ns1/secrets/avi-basic-auth"),
        Request("GET", f"/api/v1/namespaces/{NAMESPACE}/secrets/avi-basic-auth"),  # an AviController's
        Request("GET", f"{base}/aviautoscalers?watch=true"),  # all namespaces
        Request("GET", "/api/v1/namespaces/shop/secrets/avi-basic-auth"),  # a namespace not watched
        Request("GET", "/apis/coordination.k8s.io/v1/namespaces/avi-autoscaler/leases/avi-autoscaler"),
        Request("GET", "/apis/apps/v1"),
    ]
    report = audit(requests, manifests, SERVICE_ACCOUNT)
    assert [r.path for r, _ in report.disallowed] == [
        f"{base}/aviautoscalers?watch=true",
        "/api/v1/namespaces/shop/secrets/avi-basic-auth",
    ]


def test_wildcards_are_reported() -> None:
    manifests = chart_manifests() + [
        """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: too-much}
rules:
- {apiGroups: ["apps"], resources: ["*"], verbs: ["get"]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: too-much}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: too-much}
subjects:
- {kind: ServiceAccount, name: avi-autoscaler, namespace: avi-autoscaler}
"""
    ]
    report = audit(sample_requests(), manifests, SERVICE_ACCOUNT, user_agent_prefix=OPERATOR_AGENT)
    assert [(str(p), role) for p, role in report.wildcards] == [("apps:*:get", "ClusterRole/too-much")]
    assert not report.ok


def test_user_roles_are_not_the_operators() -> None:
    # The aggregated edit/view roles are bound to nobody by the chart.
    grants = rbac_audit.grants_for(chart_manifests(), SERVICE_ACCOUNT, include_built_in=False)
    assert {g.role for g in grants} == {
        "ClusterRole/avi-autoscaler",
        "ClusterRole/avi-autoscaler-avicontrollers",
        f"Role/{NAMESPACE}/avi-autoscaler-leader-election",
        f"Role/{NAMESPACE}/avi-autoscaler-secrets",
    }


def test_default_install_refuses_secret_reads_outside_the_operator_namespace() -> None:
    requests = [
        Request("GET", f"/api/v1/namespaces/{NAMESPACE}/secrets/avi-basic-auth"),
        Request("GET", "/api/v1/namespaces/routing-ns1/secrets/avi-basic-auth"),
    ]
    report = audit(requests, chart_manifests(), SERVICE_ACCOUNT)
    assert [r.path for r, _ in report.disallowed] == ["/api/v1/namespaces/routing-ns1/secrets/avi-basic-auth"]
    report = audit(requests, chart_manifests({"inlineControllers": {"enabled": True}}), SERVICE_ACCOUNT)
    assert report.disallowed == []


# ---------------------------------------------------------------------------------------------
# Input format and command line


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "line 1: not JSON"),
        ("[1, 2]", "line 1: expected a JSON object"),
        ('{"path": "/api"}', "line 1: `method`"),
        ('{"method": "GET", "path": "api"}', "line 1: `path`"),
        ('{"method": "GET", "path": "/api", "status": "200"}', "line 1: `status`"),
    ],
)
def test_bad_log_lines_are_named(line: str, message: str) -> None:
    with pytest.raises(rbac_audit.AuditInputError, match=message):
        read_request_log(line)


def test_log_skips_blank_lines_and_keeps_line_numbers() -> None:
    requests = read_request_log('\n{"method": "GET", "path": "/api", "status": 200, "extra": 1}\n\n')
    assert requests == [Request("GET", "/api", 200, None, 2)]


def test_permission_syntax() -> None:
    assert Permission.parse("core:secrets:get") == Permission("", "secrets", "get")
    assert Permission.parse(":secrets:get") == Permission("", "secrets", "get")
    assert str(Permission.parse("apps:deployments/scale:patch")) == "apps:deployments/scale:patch"
    with pytest.raises(rbac_audit.AuditInputError):
        Permission.parse("apps/deployments")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "hack" / "rbac_audit.py"), *args], capture_output=True, text=True, timeout=60
    )


def test_command_line(tmp_path: Path) -> None:
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text("---\n".join(chart_manifests()))
    common = ["--log", str(SAMPLE_LOG), "--manifests", str(rendered), "--service-account", SERVICE_ACCOUNT]
    ok = run_cli(*common, "--user-agent-prefix", OPERATOR_AGENT)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "37 requests checked" in ok.stdout
    refused = run_cli(*common)
    assert refused.returncode == 1
    assert "GET /api/v1/namespaces/routing-ns1/pods?labelSelector=app%3Dkuard -> 200" in refused.stdout
    assert "needs: list core/pods routing-ns1/" in refused.stdout
    broken = run_cli("--log", str(tmp_path / "missing.jsonl"), "--manifests", str(rendered), "--service-account", SERVICE_ACCOUNT)
    assert broken.returncode == 2
    assert "missing.jsonl" in broken.stderr
