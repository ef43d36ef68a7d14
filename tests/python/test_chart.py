"""The Helm chart, linted and rendered by Helm's own library (helm-python-sdk, Helm v4)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import helm_python as helm
import pytest
import yaml

from conftest import (
    CHART,
    NAMESPACE,
    RELEASE,
    ROOT,
    TEST_CA,
    VALUE_SETS,
    chart,
    find,
    one,
    operator_container,
    render_chart,
    render_notes,
)

OPERATOR_RULES = [
    {"apiGroups": ["autoscaling.avi.dev"], "resources": ["aviautoscalers"], "verbs": ["list", "watch"]},
    {"apiGroups": ["autoscaling.avi.dev"], "resources": ["aviautoscalers/status"], "verbs": ["patch"]},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": ["list", "watch"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "replicasets"], "verbs": ["get", "list", "watch"]},
    {
        "apiGroups": ["apps"],
        "resources": ["deployments/scale", "statefulsets/scale", "replicasets/scale"],
        "verbs": ["get", "patch"],
    },
    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
]
# Cluster-scoped kinds, in a ClusterRole of their own whatever namespaces are watched.
CLUSTER_RULES = [
    {"apiGroups": ["autoscaling.avi.dev"], "resources": ["avicontrollers"], "verbs": ["list", "watch"]},
    {"apiGroups": ["autoscaling.avi.dev"], "resources": ["avicontrollers/status"], "verbs": ["patch"]},
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
]
# Reading Secrets: in the release namespace always (AviControllers), where the operator watches
# only with inline connections allowed.
SECRETS_RULES = [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
INLINE_OPERATOR_RULES = OPERATOR_RULES + SECRETS_RULES
LEASE_RULES = [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "list", "watch", "create", "patch"]}]


def workspace_version() -> str:
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
    return cargo["workspace"]["package"]["version"]


def binary_default_bind(endpoint: str) -> str:
    """The default of the operator's --metrics-bind or --health-bind, read from its CLI source."""
    cli = (ROOT / "crates" / "operator" / "src" / "cli.rs").read_text()
    match = re.search(
        rf'default_value = "([^"]+)",\s*env = "AVI_AUTOSCALER_{endpoint.upper()}_BIND"', cli
    )
    assert match, f"no default for --{endpoint}-bind in cli.rs"
    return match.group(1)


# ---------------------------------------------------------------------------------------------
# Lint


@pytest.mark.parametrize("kube_version", ["v1.28.0", "v1.33.0", "v1.37.0"])
@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_lint_reports_no_errors_or_warnings(name: str, kube_version: str) -> None:
    report = helm.lint(CHART, VALUE_SETS[name], strict=True, kube_version=kube_version)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["total_charts_linted"] == 1
    assert not problems and not report["errors"], problems or report["errors"]


def test_lint_reports_errors_for_bad_values() -> None:
    # The lint above can fail: the same call flags values the schema refuses.
    report = helm.lint(CHART, {"replicaCount": "two"}, strict=True)
    assert any(m["severity"] == 3 and "replicaCount" in m["error"] for m in report["messages"]), report


def test_chart_metadata_follows_the_workspace() -> None:
    metadata = chart().metadata
    assert metadata["name"] == "avi-autoscaler"
    assert metadata["apiVersion"] == "v2"
    assert metadata["appVersion"] == workspace_version(), "Chart.yaml appVersion must equal the Cargo workspace version"
    assert metadata["version"] == workspace_version(), "Chart.yaml version moves with the operator version"
    assert metadata["kubeVersion"] == ">=1.28.0-0"


# ---------------------------------------------------------------------------------------------
# The default install


def test_default_install_objects() -> None:
    objects = render_chart()
    kinds = sorted((o["kind"], o["metadata"]["name"], o["metadata"].get("namespace", "")) for o in objects)
    assert kinds == sorted(
        [
            ("ServiceAccount", "avi-autoscaler", NAMESPACE),
            ("ClusterRole", "avi-autoscaler", ""),
            ("ClusterRoleBinding", "avi-autoscaler", ""),
            ("ClusterRole", "avi-autoscaler-avicontrollers", ""),
            ("ClusterRoleBinding", "avi-autoscaler-avicontrollers", ""),
            ("Role", "avi-autoscaler-leader-election", NAMESPACE),
            ("RoleBinding", "avi-autoscaler-leader-election", NAMESPACE),
            ("Role", "avi-autoscaler-secrets", NAMESPACE),
            ("RoleBinding", "avi-autoscaler-secrets", NAMESPACE),
            ("ClusterRole", "avi-autoscaler-edit", ""),
            ("ClusterRole", "avi-autoscaler-view", ""),
            ("Service", "avi-autoscaler-metrics", NAMESPACE),
            ("Deployment", "avi-autoscaler", NAMESPACE),
        ]
    )


def test_default_deployment_runs_two_replicas_with_leader_election() -> None:
    objects = render_chart()
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    container = operator_container(objects)
    assert container["image"] == f"ghcr.io/avi-autoscaler/avi-autoscaler:{workspace_version()}"
    # The binary's default listen addresses ([::]:8080, [::]:8081) serve the default ports.
    assert container["args"] == [
        "run",
        "--log-format=json",
        "--leader-election",
        "--lease-namespace=$(POD_NAMESPACE)",
    ]
    assert container["env"] == [
        {"name": "RUST_LOG", "value": "info"},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    ]
    # $(POD_NAMESPACE) in args is expanded by the kubelet only if the variable is defined.
    defined = {e["name"] for e in container["env"]}
    for arg in container["args"]:
        for variable in re.findall(r"\$\((\w+)\)", arg):
            assert variable in defined, f"{arg} uses ${variable}, which the container does not define"


def test_probes_hit_the_health_endpoints() -> None:
    container = operator_container(render_chart())
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 8080, "health": 8081}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}


def test_resources_are_set() -> None:
    resources = operator_container(render_chart())["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]


def restricted_pod_security_violations(deployment: dict) -> list[str]:
    """The controls of the "restricted" Pod Security Standard that a pod template can break."""
    pod = deployment["spec"]["template"]["spec"]
    pod_sc = pod.get("securityContext", {})
    problems = []
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            problems.append(f"pod {key}")
    for volume in pod.get("volumes", []):
        allowed = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
        if not set(volume) - {"name"} <= allowed:
            problems.append(f"volume {volume['name']} type")
    for c in pod["containers"] + pod.get("initContainers", []):
        sc = c.get("securityContext", {})
        if sc.get("privileged"):
            problems.append(f"{c['name']}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{c['name']}: allowPrivilegeEscalation must be false")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            problems.append(f"{c['name']}: capabilities must drop ALL")
        if set(sc.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{c['name']}: adds capabilities")
        if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
            problems.append(f"{c['name']}: runAsNonRoot")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            problems.append(f"{c['name']}: runAsUser 0")
        seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type")
        if seccomp not in {"RuntimeDefault", "Localhost"}:
            problems.append(f"{c['name']}: seccompProfile RuntimeDefault or Localhost")
        for port in c.get("ports", []):
            if port.get("hostPort"):
                problems.append(f"{c['name']}: hostPort")
    return problems


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_pods_meet_the_restricted_pod_security_standard(name: str) -> None:
    # One Deployment, or one per shard.
    for deployment in find(render_chart(VALUE_SETS[name]), "Deployment"):
        assert restricted_pod_security_violations(deployment) == []


def test_the_restricted_check_can_fail() -> None:
    # Helm merges values into the defaults; null removes a default key.
    deployment = one(render_chart({"securityContext": {"allowPrivilegeEscalation": None, "capabilities": None}}), "Deployment")
    assert set(restricted_pod_security_violations(deployment)) == {
        "operator: allowPrivilegeEscalation must be false",
        "operator: capabilities must drop ALL",
    }


def test_container_hardening() -> None:
    objects = render_chart()
    container = operator_container(objects)
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    # The token is mounted only into the operator pods, which need it.
    assert pod["automountServiceAccountToken"] is True
    assert one(objects, "ServiceAccount")["automountServiceAccountToken"] is False


def test_selector_labels_select_the_pods() -> None:
    objects = render_chart()
    deployment = one(objects, "Deployment")
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector == {"app.kubernetes.io/name": "avi-autoscaler", "app.kubernetes.io/instance": RELEASE}
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    service = one(objects, "Service")
    assert service["spec"]["selector"] == selector
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}]


def test_default_rbac_is_cluster_wide_with_exactly_the_operator_rules() -> None:
    objects = render_chart()
    role = one(objects, "ClusterRole", "avi-autoscaler")
    assert role["rules"] == OPERATOR_RULES
    binding = one(objects, "ClusterRoleBinding", "avi-autoscaler")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "avi-autoscaler"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "avi-autoscaler", "namespace": NAMESPACE}]
    lease_role = one(objects, "Role", "avi-autoscaler-leader-election", NAMESPACE)
    assert lease_role["rules"] == LEASE_RULES
    lease_binding = one(objects, "RoleBinding", "avi-autoscaler-leader-election", NAMESPACE)
    assert lease_binding["roleRef"]["name"] == "avi-autoscaler-leader-election"


def test_user_roles_aggregate_into_the_built_in_roles() -> None:
    objects = render_chart()
    edit = one(objects, "ClusterRole", "avi-autoscaler-edit")
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    view = one(objects, "ClusterRole", "avi-autoscaler-view")
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert all(set(r["verbs"]) <= {"get", "list", "watch"} for r in view["rules"])
    # These roles are for people: no binding gives them to the operator.
    for binding in find(objects, "ClusterRoleBinding") + find(objects, "RoleBinding"):
        assert binding["roleRef"]["name"] not in {"avi-autoscaler-edit", "avi-autoscaler-view"}


# ---------------------------------------------------------------------------------------------
# Value sets


@pytest.mark.parametrize("name", ["single-namespace", "namespace-list"])
def test_watched_namespaces_get_a_role_each_and_no_cluster_grant(name: str) -> None:
    namespaces = VALUE_SETS[name]["watchNamespaces"]
    objects = render_chart(VALUE_SETS[name])
    for namespace in namespaces:
        assert one(objects, "Role", "avi-autoscaler", namespace)["rules"] == OPERATOR_RULES
        binding = one(objects, "RoleBinding", "avi-autoscaler", namespace)
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "avi-autoscaler"}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "avi-autoscaler", "namespace": NAMESPACE}]
    # The only ClusterRoles left are the user roles and the one for cluster-scoped kinds
    # (AviControllers, Namespaces), which is all the operator is bound to cluster-wide.
    assert sorted(r["metadata"]["name"] for r in find(objects, "ClusterRole")) == [
        "avi-autoscaler-avicontrollers",
        "avi-autoscaler-edit",
        "avi-autoscaler-view",
    ]
    assert one(objects, "ClusterRole", "avi-autoscaler-avicontrollers")["rules"] == CLUSTER_RULES
    assert [b["metadata"]["name"] for b in find(objects, "ClusterRoleBinding")] == ["avi-autoscaler-avicontrollers"]
    args = operator_container(objects)["args"]
    assert [a for a in args if a.startswith("--namespace")] == [f"--namespace={n}" for n in namespaces]


def test_metrics_off_removes_the_service_and_port() -> None:
    objects = render_chart(VALUE_SETS["metrics-off"])
    assert find(objects, "Service") == []
    assert find(objects, "ServiceMonitor") == []
    container = operator_container(objects)
    assert [p["name"] for p in container["ports"]] == ["health"]
    # The listener still runs on its default address (the operator serves /metrics); it is just
    # not published.
    assert not any(a.startswith("--metrics-bind") for a in container["args"])
    assert binary_default_bind("metrics") == "[::]:8080"


def test_servicemonitor_scrapes_the_metrics_service() -> None:
    objects = render_chart(VALUE_SETS["servicemonitor-on"])
    monitor = one(objects, "ServiceMonitor")
    service = one(objects, "Service")
    assert monitor["metadata"]["namespace"] == NAMESPACE
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}]
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}


def test_pdb_selects_the_operator_pods() -> None:
    objects = render_chart(VALUE_SETS["pdb-on"])
    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == one(objects, "Deployment")["spec"]["selector"]["matchLabels"]
    assert find(render_chart(), "PodDisruptionBudget") == []


def test_one_shard_renders_the_unsharded_deployment() -> None:
    objects = render_chart()
    (deployment,) = find(objects, "Deployment")
    assert deployment["metadata"]["name"] == "avi-autoscaler"
    assert "autoscaling.avi.dev/shard" not in deployment["spec"]["selector"]["matchLabels"]
    args = operator_container(objects)["args"]
    assert not any(a.startswith(("--shard-", "--selector", "--lease-name=")) for a in args)


def test_shards_render_one_deployment_each_with_its_own_lease() -> None:
    objects = render_chart(VALUE_SETS["sharded"])
    deployments = find(objects, "Deployment")
    assert [d["metadata"]["name"] for d in deployments] == [f"avi-autoscaler-shard-{i}" for i in range(3)]
    selectors = []
    for i, deployment in enumerate(deployments):
        assert deployment["spec"]["replicas"] == 2
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector["autoscaling.avi.dev/shard"] == str(i)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()
        selectors.append(selector)
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        args = container["args"]
        assert args[-3:] == ["--shard-count=3", f"--shard-index={i}", "--selector=team in (web,shop)"]
        # The Lease is --lease-name (the binary's default, avi-autoscaler) suffixed with the
        # index: every shard campaigns on a Lease of its own, in the release namespace.
        assert "--leader-election" in args and "--lease-namespace=$(POD_NAMESPACE)" in args
        assert not any(a.startswith("--lease-name=") for a in args)
    # No Deployment selects another shard's pods.
    for i, selector in enumerate(selectors):
        for j, other in enumerate(deployments):
            if i != j:
                assert not selector.items() <= other["spec"]["template"]["metadata"]["labels"].items()
    # One budget per shard, selecting that shard's pods.
    pdbs = find(objects, "PodDisruptionBudget")
    assert [p["spec"]["selector"]["matchLabels"] for p in pdbs] == selectors
    # The Lease rules let every pod see the other shards' Leases.
    assert one(objects, "Role", "avi-autoscaler-leader-election")["rules"] == LEASE_RULES
    # The metrics Service scrapes every shard.
    service = one(objects, "Service", "avi-autoscaler-metrics")
    for deployment in deployments:
        assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_the_lease_name_suffix_matches_the_binary() -> None:
    """The chart documents the Leases as avi-autoscaler-<i>: the binary's default --lease-name
    with the shard index."""
    cli = (ROOT / "crates" / "operator" / "src" / "cli.rs").read_text()
    assert 'long, value_name = "NAME", default_value = "avi-autoscaler"' in cli
    shard = (ROOT / "crates" / "operator" / "src" / "shard.rs").read_text()
    assert 'format!("{base}-{}", shard.index)' in shard
    assert "avi-autoscaler-<i>" in render_notes(VALUE_SETS["sharded"])


def test_notes_explain_the_shards_and_how_to_change_their_count() -> None:
    notes = render_notes(VALUE_SETS["sharded"])
    for i in range(3):
        assert f"rollout status deployment/avi-autoscaler-shard-{i}" in notes
    assert "split among 3 shards" in notes
    assert "sharding.shards=N" in notes
    assert "no object is ever scaled" in notes
    assert 'Only AviAutoscalers whose labels match "team in (web,shop)" are managed.' in notes
    assert "split among" not in render_notes()


def test_without_leader_election_there_is_no_lease_access() -> None:
    objects = render_chart(VALUE_SETS["single-replica-no-leader-election"])
    args = operator_container(objects)["args"]
    assert "--leader-election" not in args
    assert not any(a.startswith("--lease-namespace") for a in args)
    assert find(objects, "Role", "avi-autoscaler-leader-election") == []
    assert one(objects, "Deployment")["spec"]["replicas"] == 1


def test_custom_scale_targets_get_their_scale_subresource_only() -> None:
    objects = render_chart(VALUE_SETS["custom-scale-targets"])
    rules = one(objects, "ClusterRole", "avi-autoscaler")["rules"]
    extra = [r for r in rules if r["apiGroups"] == ["argoproj.io"]]
    assert extra == [{"apiGroups": ["argoproj.io"], "resources": ["rollouts/scale"], "verbs": ["get", "patch"]}]
    assert [r for r in rules if r["apiGroups"] != ["argoproj.io"]] == OPERATOR_RULES


def test_existing_service_account_is_used_and_not_created() -> None:
    objects = render_chart(VALUE_SETS["existing-service-account"])
    assert find(objects, "ServiceAccount") == []
    assert one(objects, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "platform-operator"
    for binding in find(objects, "ClusterRoleBinding") + find(objects, "RoleBinding"):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "platform-operator", "namespace": NAMESPACE}]


def test_rbac_off_creates_no_rbac_objects() -> None:
    objects = render_chart(VALUE_SETS["no-rbac-no-user-roles"])
    assert {o["kind"] for o in objects} == {"ServiceAccount", "Service", "Deployment"}


def test_every_value_reaches_the_manifests() -> None:
    objects = render_chart(VALUE_SETS["everything"])
    deployment = one(objects, "Deployment", "aas")
    pod = deployment["spec"]["template"]["spec"]
    container = operator_container(objects)
    assert deployment["spec"]["replicas"] == 3
    assert container["image"] == "registry.example.com/avi-autoscaler:0.1.0-rc1"
    assert container["imagePullPolicy"] == "Always"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert container["args"] == [
        "run",
        "--metrics-bind=[::]:9090",
        "--health-bind=[::]:9091",
        "--log-format=text",
        "--leader-election",
        "--lease-namespace=$(POD_NAMESPACE)",
        "--namespace=routing-ns1",
        "--allow-inline-controllers",
        "--allowed-endpoints=avi.example.com",
        "--allowed-endpoints=10.20.0.0/16",
        "--allow-insecure-inline",
    ]
    assert container["env"][0] == {"name": "RUST_LOG", "value": "info,avi_autoscaler=debug"}
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"metrics": 9090, "health": 9091}
    assert container["resources"]["limits"]["memory"] == "512Mi"
    assert deployment["spec"]["template"]["metadata"]["annotations"] == {"example.com/team": "platform"}
    assert deployment["spec"]["template"]["metadata"]["labels"]["team"] == "platform"
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["tolerations"][0]["key"] == "dedicated"
    assert "podAntiAffinity" in pod["affinity"]
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
    service = one(objects, "Service", "aas-metrics")
    assert service["metadata"]["annotations"] == {"prometheus.io/scrape": "true"}
    assert service["spec"]["ports"][0]["port"] == 9090
    assert one(objects, "ServiceMonitor", "aas")["spec"]["endpoints"][0]["interval"] == "1m"
    assert one(objects, "ServiceAccount", "aas")["metadata"]["annotations"] == {"example.com/owner": "platform"}
    assert one(objects, "PodDisruptionBudget", "aas")["spec"]["maxUnavailable"] == "50%"
    rules = one(objects, "Role", "aas", "routing-ns1")["rules"]
    assert {"apiGroups": [""], "resources": ["replicationcontrollers/scale"], "verbs": ["get", "patch"]} in rules
    assert rules[-1] == SECRETS_RULES[0]
    assert one(objects, "AviController", "prod-avi")["spec"]["credentialsSecretRef"] == {"name": "aas-prod-avi-credentials"}
    assert one(objects, "Secret", "aas-prod-avi-ca", NAMESPACE)["stringData"] == {"ca.crt": TEST_CA}
    assert one(objects, "AviController", "lab-avi")["spec"]["tls"] == {"insecureSkipVerify": True}
    egress = one(objects, "NetworkPolicy", "aas")["spec"]["egress"]
    assert egress[0]["ports"] == [{"protocol": "TCP", "port": 443}]
    assert [(r["to"][0]["ipBlock"]["cidr"], r["ports"][0]["port"]) for r in egress[1:-1]] == [
        ("192.0.2.0/24", 8443),
        ("10.40.0.10/32", 8443),
        ("fd00:40::10/128", 8443),
        ("10.20.0.0/16", 8443),
    ]
    assert egress[-1]["to"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "dns"}
    assert egress[-1]["to"][0]["podSelector"]["matchLabels"] == {"app": "coredns"}


def test_release_names_shape_object_names() -> None:
    objects = render_chart(release="team-a")
    assert one(objects, "Deployment")["metadata"]["name"] == "team-a-avi-autoscaler"
    assert one(objects, "ClusterRole", "team-a-avi-autoscaler")
    objects = render_chart({"nameOverride": "aas"}, release="prod")
    assert one(objects, "Deployment")["metadata"]["name"] == "prod-aas"
    assert one(objects, "Deployment")["metadata"]["labels"]["app.kubernetes.io/name"] == "aas"


# ---------------------------------------------------------------------------------------------
# Refused values


BAD_VALUES = [
    ({"replicaCount": "two"}, "/replicaCount"),
    ({"replicaCount": -1}, "/replicaCount"),
    ({"replicas": 2}, "additional properties 'replicas'"),
    ({"logFormat": "xml"}, "/logFormat"),
    ({"logLevel": ""}, "/logLevel"),
    ({"watchNamespaces": "routing-ns1"}, "/watchNamespaces"),
    ({"watchNamespaces": ["Routing_NS1"]}, "/watchNamespaces/0"),
    ({"watchNamespaces": ["shop", "shop"]}, "/watchNamespaces"),
    ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    ({"image": {"repository": ""}}, "/image/repository"),
    ({"metrics": {"port": 70000}}, "/metrics/port"),
    ({"metrics": {"enabled": "yes"}}, "/metrics/enabled"),
    ({"metrics": {"serviceMonitor": {"interval": "30 seconds"}}}, "/metrics/serviceMonitor/interval"),
    ({"metrics": {"service": {"type": "ExternalName"}}}, "/metrics/service/type"),
    ({"health": {"port": 0}}, "/health/port"),
    ({"rbac": {"extraScaleTargets": [{"apiGroup": "argoproj.io", "resources": ["*"]}]}}, "/rbac/extraScaleTargets/0/resources/0"),
    ({"rbac": {"extraScaleTargets": [{"apiGroup": "argoproj.io", "resources": ["rollouts/scale"]}]}}, "/rbac/extraScaleTargets/0/resources/0"),
    ({"rbac": {"extraScaleTargets": [{"apiGroup": "*", "resources": ["rollouts"]}]}}, "/rbac/extraScaleTargets/0/apiGroup"),
    ({"rbac": {"extraScaleTargets": [{"resources": ["rollouts"]}]}}, "/rbac/extraScaleTargets/0"),
    ({"podDisruptionBudget": {"maxUnavailable": 0}}, "/podDisruptionBudget/maxUnavailable"),
    ({"sharding": {"shards": 0}}, "/sharding/shards"),
    ({"podLabels": {"team": 7}}, "/podLabels/team"),
    ({"resources": {"requets": {"cpu": "1"}}}, "additional properties 'requets'"),
]


@pytest.mark.parametrize(("values", "where"), BAD_VALUES, ids=[w for _, w in BAD_VALUES])
def test_schema_refuses_bad_values(values: dict, where: str) -> None:
    with pytest.raises(helm.HelmValuesError) as refused:
        chart().validate_schema(values)
    assert where in str(refused.value)
    # An install renders with the same check, so a bad value never reaches the cluster.
    with pytest.raises(helm.HelmValuesError):
        render_chart(values)


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_schema_accepts_the_value_sets(name: str) -> None:
    chart().validate_schema(VALUE_SETS[name])


def test_defaults_satisfy_the_schema() -> None:
    chart().validate_schema(yaml.safe_load((CHART / "values.yaml").read_text()))


TEMPLATE_GUARDS = [
    ({"leaderElection": {"enabled": False}}, "replicaCount > 1 needs leaderElection.enabled"),
    (
        {"replicaCount": 1, "leaderElection": {"enabled": False}, "sharding": {"shards": 2}},
        "sharding.shards > 1 needs leaderElection.enabled",
    ),
    ({"metrics": {"enabled": False, "serviceMonitor": {"enabled": True}}}, "metrics.serviceMonitor.enabled needs metrics.enabled"),
    ({"serviceAccount": {"create": False}}, "serviceAccount.name must name an existing ServiceAccount"),
]


@pytest.mark.parametrize(("values", "message"), TEMPLATE_GUARDS, ids=[m for _, m in TEMPLATE_GUARDS])
def test_inconsistent_values_fail_with_a_clear_message(values: dict, message: str) -> None:
    with pytest.raises(helm.HelmRenderError) as refused:
        render_chart(values)
    assert message in str(refused.value)


# ---------------------------------------------------------------------------------------------
# NOTES.txt


def test_notes_tell_the_user_what_to_do_next() -> None:
    notes = render_notes()
    assert "It watches AviAutoscalers in all namespaces." in notes
    assert f"kubectl -n {NAMESPACE} rollout status deployment/avi-autoscaler" in notes
    assert f"kubectl -n {NAMESPACE} create secret generic avi-credentials" in notes
    assert "kubectl get avic" in notes
    # Inline connections are off by default, so their Secret recipe is not offered.
    assert "kubectl -n <namespace> create secret generic avi-credentials" not in notes
    notes = render_notes(VALUE_SETS["inline-controllers"])
    assert "kubectl -n <namespace> create secret generic avi-credentials" in notes
    assert "kubectl -n <namespace> label secret avi-credentials autoscaling.avi.dev/credentials=true" in notes
    assert "kubectl get aas -A" in notes
    assert "port-forward service/avi-autoscaler-metrics 8080" in notes
    assert "helm show crds" in notes


# The CRD upgrade: Helm owns the CRD's fields as field manager "helm", so a server-side apply
# of a changed CRD must force the conflicts (tests/e2e/install.rs runs this very command
# against the API stand-in, reading it from NOTES.txt).
CRD_UPGRADE = "kubectl apply --server-side --force-conflicts"


def test_notes_and_readme_give_the_same_crd_upgrade() -> None:
    notes = render_notes()
    (line,) = [l for l in notes.splitlines() if "helm show crds" in l]
    assert f"| {CRD_UPGRADE} -f -" in line
    readme = (ROOT / "README.md").read_text()
    assert f"| {CRD_UPGRADE} -f -" in readme
    # Every server-side apply of the chart's CRD in the README forces the conflicts.
    for command in re.findall(r"kubectl apply --server-side[^\n]*", readme):
        if "crds" in command:
            assert "--force-conflicts" in command, command


def test_default_ports_are_the_binary_defaults() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert binary_default_bind("metrics") == f"[::]:{values['metrics']['port']}"
    assert binary_default_bind("health") == f"[::]:{values['health']['port']}"
    container = operator_container(render_chart())
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": values["metrics"]["port"], "health": values["health"]["port"]}
    assert not any("0.0.0.0" in a for a in container["args"])


PREVIOUS_VALUES = Path(__file__).parent / "fixtures" / "values-0.1.0.yaml"


def test_previous_release_values_upgrade_cleanly() -> None:
    """`helm upgrade -f values.yaml` with the values file of release 0.1.0 (as a user kept it)."""
    previous = yaml.safe_load(PREVIOUS_VALUES.read_text())
    chart().validate_schema(previous)
    objects = render_chart(previous)
    container = operator_container(objects)
    assert container["image"].startswith("ghcr.io/avi-autoscaler/avi-autoscaler:")
    # Every value 0.1.0 had is still a value of this chart.
    current = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(value_paths(previous)) <= set(value_paths(current))


def test_notes_follow_the_values() -> None:
    notes = render_notes({"watchNamespaces": ["routing-ns1", "shop"], "metrics": {"enabled": False}})
    assert "It watches AviAutoscalers in: routing-ns1, shop." in notes
    assert "port-forward" not in notes
    notes = render_notes(VALUE_SETS["servicemonitor-on"])
    assert 'A ServiceMonitor "avi-autoscaler" asks the Prometheus Operator to scrape it every 15s.' in notes


# ---------------------------------------------------------------------------------------------
# Documentation


def value_paths(values: dict, prefix: str = "") -> list[str]:
    """Dotted paths of the documented values: nested settings are followed, free-form maps
    (labels, annotations, Kubernetes structures) are documented as one value."""
    free_form = {
        "resources", "podSecurityContext", "securityContext", "podAnnotations", "podLabels",
        "nodeSelector", "affinity", "annotations", "labels",
    }
    paths = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and key not in free_form:
            paths.extend(value_paths(value, path + "."))
        else:
            paths.append(path)
    return paths


def readme_value_table() -> dict[str, str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Chart values", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"^\|\s*`([^`]+)`\s*\|(.*)\|\s*$", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def test_readme_documents_every_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    documented = readme_value_table()
    paths = value_paths(values)
    assert sorted(set(paths) - set(documented)) == [], "values missing from the README's Chart values table"
    assert sorted(set(documented) - set(paths)) == [], "the README documents values the chart does not have"


def test_readme_defaults_match_values_yaml() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    documented = readme_value_table()
    for path in value_paths(values):
        default = values
        for key in path.split("."):
            default = default[key]
        if isinstance(default, (dict, list)) and default:
            continue  # structured defaults are described in words
        shown = json_like(default)
        cells = [c.strip() for c in documented[path].split("|")]
        assert cells[0] == f"`{shown}`", f"{path}: README says {cells[0]}, values.yaml has {shown}"


def json_like(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value == "":
        return '""'
    if value == {}:
        return "{}"
    if value == []:
        return "[]"
    return str(value)
