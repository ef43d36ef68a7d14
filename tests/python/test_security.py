"""Who may read what: the chart's Secret access (the release namespace only, unless inline
connections are enabled), the user roles (AviControllers are for cluster administrators), the
AviControllers rendered from values, and the egress NetworkPolicy."""

from __future__ import annotations

import helm_python as helm
import jsonschema
import pytest

from conftest import NAMESPACE, OLDEST_KUBE_VERSION, RELEASE, TEST_CA, VALUE_SETS, find, one, operator_container, render_chart, validate_object

SECRETS = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}


def secret_grants(objects: list[dict]) -> list[tuple[str, str, str]]:
    """(kind, namespace, name) of every Role or ClusterRole whose rules mention Secrets."""
    return sorted(
        (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])
        for o in find(objects, "Role") + find(objects, "ClusterRole")
        if any("secrets" in r.get("resources", []) or "*" in r.get("resources", []) for r in o.get("rules", []))
    )


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_cluster_roles_mention_secrets_only_with_inline_controllers(name: str) -> None:
    values = VALUE_SETS[name]
    objects = render_chart(values)
    cluster_wide = [g for g in secret_grants(objects) if g[0] == "ClusterRole"]
    inline = values.get("inlineControllers", {}).get("enabled", False)
    if inline and not values.get("watchNamespaces"):
        assert cluster_wide == [("ClusterRole", "", "avi-autoscaler")]
    else:
        assert cluster_wide == []


def test_defaults_grant_secret_reads_in_the_release_namespace_only() -> None:
    objects = render_chart()
    assert secret_grants(objects) == [("Role", NAMESPACE, "avi-autoscaler-secrets")]
    role = one(objects, "Role", "avi-autoscaler-secrets", NAMESPACE)
    assert role["rules"] == [SECRETS]
    binding = one(objects, "RoleBinding", "avi-autoscaler-secrets", NAMESPACE)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "avi-autoscaler-secrets"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "avi-autoscaler", "namespace": NAMESPACE}]
    # The operator finds the release namespace in $POD_NAMESPACE, its default
    # --cluster-resource-namespace, so no flag names it.
    container = operator_container(objects)
    assert {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}} in container["env"]
    assert not any(a.startswith(("--cluster-resource-namespace", "--allow-")) for a in container["args"])


def test_the_secrets_role_follows_the_release_namespace() -> None:
    objects = render_chart(namespace="platform")
    assert secret_grants(objects) == [("Role", "platform", "avi-autoscaler-secrets")]


def test_inline_controllers_grant_secret_reads_where_the_operator_watches() -> None:
    objects = render_chart(VALUE_SETS["inline-controllers"])
    assert one(objects, "ClusterRole", "avi-autoscaler")["rules"][-1] == SECRETS
    assert operator_container(objects)["args"][-3:] == [
        "--allow-inline-controllers",
        "--allowed-endpoints=*.avi.example.com",
        "--allowed-endpoints=10.20.0.0/16",
    ]
    objects = render_chart({"inlineControllers": {"enabled": True}, "watchNamespaces": ["shop", "web"]})
    assert secret_grants(objects) == [
        ("Role", NAMESPACE, "avi-autoscaler-secrets"),
        ("Role", "shop", "avi-autoscaler"),
        ("Role", "web", "avi-autoscaler"),
    ]


def test_user_roles_cover_aviautoscalers_and_leave_avicontrollers_to_cluster_admins() -> None:
    objects = render_chart()
    for name in ("avi-autoscaler-edit", "avi-autoscaler-view"):
        for rule in one(objects, "ClusterRole", name)["rules"]:
            assert rule["apiGroups"] == ["autoscaling.avi.dev"]
            assert "*" not in rule["resources"] and "*" not in rule["verbs"]
            assert all(r.split("/")[0] == "aviautoscalers" for r in rule["resources"]), rule
    # Nothing aggregates AviController access into admin, edit or view: cluster administrators
    # (cluster-admin) have it already, namespace administrators must not.
    for role in find(objects, "ClusterRole"):
        labels = role["metadata"].get("labels", {})
        if any(k.startswith("rbac.authorization.k8s.io/aggregate-to-") for k in labels):
            assert not any("avicontrollers" in " ".join(r["resources"]) for r in role["rules"]), role["metadata"]["name"]


# ---------------------------------------------------------------------------------------------
# AviControllers from values


def test_avi_controllers_render_with_their_secrets() -> None:
    objects = render_chart(VALUE_SETS["avi-controllers"])
    prod = one(objects, "AviController", "prod-avi")
    assert "namespace" not in prod["metadata"], "AviController is cluster-scoped"
    assert prod["spec"] == {
        "endpoints": ["https://avi-1.example.com", "https://avi-2.example.com"],
        "apiVersion": "22.1.3",
        "credentialsSecretRef": {"name": "avi-autoscaler-prod-avi-credentials"},
        "tls": {"caSecretRef": {"name": "avi-autoscaler-prod-avi-ca", "key": "ca.crt"}},
        "namespaceSelector": {"matchLabels": {"avi-autoscaling": "enabled"}},
    }
    credentials = one(objects, "Secret", "avi-autoscaler-prod-avi-credentials", NAMESPACE)
    assert credentials["type"] == "kubernetes.io/basic-auth"
    assert credentials["stringData"] == {"username": "autoscaler", "password": "s3cret"}
    assert one(objects, "Secret", "avi-autoscaler-prod-avi-ca", NAMESPACE)["stringData"] == {"ca.crt": TEST_CA}
    # An existing Secret is referenced, not created.
    lab = one(objects, "AviController", "lab-avi")
    assert lab["spec"] == {
        "endpoints": ["https://10.30.0.10"],
        "tenant": "lab",
        "authMode": "basic",
        "timeoutSeconds": 5,
        "credentialsSecretRef": {"name": "lab-avi-credentials"},
        "tls": {"caSecretRef": {"name": "lab-avi-ca", "key": "bundle.pem"}},
    }
    assert [s["metadata"]["name"] for s in find(objects, "Secret")] == [
        "avi-autoscaler-prod-avi-credentials",
        "avi-autoscaler-prod-avi-ca",
    ]
    # Every Secret the chart creates is one the operator may read: in the release namespace.
    assert {s["metadata"]["namespace"] for s in find(objects, "Secret")} == {NAMESPACE}


@pytest.mark.parametrize("name", ["avi-controllers", "everything"])
def test_avi_controllers_are_valid_against_the_crd(name: str) -> None:
    controllers = find(render_chart(VALUE_SETS[name]), "AviController")
    assert len(controllers) == 2
    for controller in controllers:
        validate_object(controller, OLDEST_KUBE_VERSION)


def test_the_crd_check_of_avi_controllers_can_fail() -> None:
    controller = one(render_chart(VALUE_SETS["avi-controllers"]), "AviController", "prod-avi")
    for change in (
        lambda c: c["spec"].pop("credentialsSecretRef"),
        lambda c: c["spec"].update(authMode="digest"),
        lambda c: c["spec"].update(endpoints=[]),
    ):
        bad = {**controller, "spec": dict(controller["spec"])}
        change(bad)
        with pytest.raises(jsonschema.ValidationError):
            validate_object(bad, OLDEST_KUBE_VERSION)


# ---------------------------------------------------------------------------------------------
# NetworkPolicy


def test_no_network_policy_by_default() -> None:
    assert find(render_chart(), "NetworkPolicy") == []


def test_network_policy_allows_only_the_api_server_avi_and_dns() -> None:
    values = {
        **VALUE_SETS["network-policy"],
        "aviControllers": VALUE_SETS["avi-controllers"]["aviControllers"],
    }
    objects = render_chart(values)
    policy = one(objects, "NetworkPolicy", "avi-autoscaler", NAMESPACE)
    spec = policy["spec"]
    assert spec["podSelector"]["matchLabels"] == one(objects, "Deployment")["spec"]["selector"]["matchLabels"]
    # Egress only: scrapes and probes come in as before.
    assert spec["policyTypes"] == ["Egress"]
    assert "ingress" not in spec
    assert spec["egress"] == [
        {
            "to": [{"ipBlock": {"cidr": "10.96.0.1/32"}}, {"ipBlock": {"cidr": "172.18.0.2/32"}}],
            "ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}],
        },
        {"to": [{"ipBlock": {"cidr": "10.10.0.0/24"}}], "ports": [{"protocol": "TCP", "port": 443}]},
        # lab-avi's endpoint is an IP address; prod-avi's host names are covered by aviCIDRs.
        {"to": [{"ipBlock": {"cidr": "10.30.0.10/32"}}], "ports": [{"protocol": "TCP", "port": 443}]},
        {
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                }
            ],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        },
    ]


def test_network_policy_derives_avi_addresses_without_avi_cidrs() -> None:
    objects = render_chart(
        {
            "networkPolicy": {"enabled": True, "apiServer": {"cidrs": ["10.96.0.1/32"]}},
            "inlineControllers": {"enabled": True, "allowedEndpoints": ["*.avi.example.com", "10.20.0.0/16"]},
            "aviControllers": [
                {"name": "a", "endpoints": ["https://10.1.2.3:8443", "https://[fd00::5]"], "credentialsSecretRef": {"name": "a"}}
            ],
        }
    )
    egress = one(objects, "NetworkPolicy")["spec"]["egress"]
    assert [(e["to"][0]["ipBlock"]["cidr"], e["ports"]) for e in egress[1:-1]] == [
        ("10.1.2.3/32", [{"protocol": "TCP", "port": 8443}]),
        ("fd00::5/128", [{"protocol": "TCP", "port": 443}]),
        ("10.20.0.0/16", [{"protocol": "TCP", "port": 443}]),
    ]


# ---------------------------------------------------------------------------------------------
# Refused values


REFUSED_BY_SCHEMA = [
    ({"inlineControllers": {"enabled": "yes"}}, "/inlineControllers/enabled"),
    ({"inlineControllers": {"allowedEndpoints": ["a.example.com, b.example.com"]}}, "/inlineControllers/allowedEndpoints/0"),
    ({"aviControllers": [{"name": "Prod", "endpoints": ["https://a"], "credentialsSecretRef": {"name": "s"}}]}, "/aviControllers/0/name"),
    ({"aviControllers": [{"name": "p", "endpoints": ["http://a"], "credentialsSecretRef": {"name": "s"}}]}, "/aviControllers/0/endpoints/0"),
    ({"aviControllers": [{"name": "p", "endpoints": ["https://a"]}]}, "/aviControllers/0"),
    (
        {"aviControllers": [{"name": "p", "endpoints": ["https://a"], "credentials": {"username": "u"}}]},
        "/aviControllers/0/credentials",
    ),
    ({"aviControllers": [{"name": "p", "endpoints": ["https://a"], "credentialsSecretRef": {"name": "s"}, "authMode": "ntlm"}]}, "/aviControllers/0/authMode"),
    ({"networkPolicy": {"aviCIDRs": ["10.0.0.0"]}}, "/networkPolicy/aviCIDRs/0"),
    ({"networkPolicy": {"apiServer": {"ports": [0]}}}, "/networkPolicy/apiServer/ports/0"),
]


@pytest.mark.parametrize(("values", "where"), REFUSED_BY_SCHEMA, ids=[w for _, w in REFUSED_BY_SCHEMA])
def test_schema_refuses_bad_security_values(values: dict, where: str) -> None:
    with pytest.raises(helm.HelmValuesError) as refused:
        render_chart(values)
    assert where in str(refused.value)


REFUSED_BY_TEMPLATES = [
    ({"inlineControllers": {"allowedEndpoints": ["avi.example.com"]}}, "inlineControllers.allowedEndpoints and inlineControllers.allowInsecure need inlineControllers.enabled"),
    ({"inlineControllers": {"allowInsecure": True}}, "need inlineControllers.enabled"),
    (
        {"aviControllers": [{"name": "p", "endpoints": ["https://a"], "credentialsSecretRef": {"name": "s"}, "tls": {"insecureSkipVerify": True, "ca": TEST_CA}}]},
        "aviControllers p: a CA has no effect with tls.insecureSkipVerify",
    ),
    (
        {"aviControllers": [{"name": "p", "endpoints": ["https://a"], "credentialsSecretRef": {"name": "s"}, "tls": {"ca": TEST_CA, "caSecretRef": {"name": "c"}}}]},
        "aviControllers p: set tls.ca or tls.caSecretRef, not both",
    ),
    ({"networkPolicy": {"enabled": True, "aviCIDRs": ["10.0.0.0/8"]}}, "networkPolicy.enabled needs networkPolicy.apiServer.cidrs"),
    ({"networkPolicy": {"enabled": True, "apiServer": {"cidrs": ["10.96.0.1/32"]}}}, "networkPolicy.enabled needs the Avi controllers' addresses"),
]


@pytest.mark.parametrize(("values", "message"), REFUSED_BY_TEMPLATES, ids=[m for _, m in REFUSED_BY_TEMPLATES])
def test_inconsistent_security_values_fail_with_a_clear_message(values: dict, message: str) -> None:
    with pytest.raises(helm.HelmRenderError) as refused:
        render_chart(values)
    assert message in str(refused.value)


def test_release_name_is_used_for_created_secrets() -> None:
    objects = render_chart(VALUE_SETS["avi-controllers"], release="edge")
    assert one(objects, "AviController", "prod-avi")["spec"]["credentialsSecretRef"]["name"] == "edge-avi-autoscaler-prod-avi-credentials"
    assert RELEASE not in [s["metadata"]["name"] for s in find(objects, "Secret")]
