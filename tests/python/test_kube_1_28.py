"""Kubernetes 1.28 is the oldest version we support (Chart.yaml kubeVersion): the CRDs use only
schema keywords and CEL functions a 1.28 API server accepts in a new CRD, and the operator's API
requests exist in 1.28 (hack/kube_api_check.py; the end-to-end test runs it on a real log)."""

from __future__ import annotations

import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

import kube_api_check
from conftest import CRD_FILES, OLDEST_KUBE_VERSION, ROOT, chart
from rbac_audit import Request, read_request_log

SAMPLE_LOG = Path(__file__).parent / "fixtures" / "operator-requests.sample.jsonl"

# ---------------------------------------------------------------------------------------------
# CEL functions a 1.28 API server accepts in a new CRD rule.
#
# Where this comes from: k8s.io/apiserver/pkg/cel/environment/base.go (release-1.28) builds the
# CEL environment from versioned options, and a 1.28 server compiles new expressions at its
# DefaultCompatibilityVersion, 1.27 (n-1, so that a rollback to 1.27 still understands every
# stored rule). So a new CRD rule on 1.28 gets the options introduced at 1.27 or earlier:
#   - cel-go's standard definitions and macros;
#   - ext.Strings(ext.StringsVersion(0)): version 0 of the strings extension (no `format` or
#     `quote`: those are version 1+, which Kubernetes enables at 1.29);
#   - library.URLs, library.Regex, library.Lists (k8s.io/apiserver/pkg/cel/library);
#   - library.Authz (1.27), whose functions are methods of the `authorizer` variable, which
#     only admission policies declare: unusable in CRD rules, so not listed.
# Introduced at 1.28 and therefore refused in new rules by a 1.28 server: library.Quantity,
# cel.OptionalTypes (`?.`, `.?`, `optional.*`) and cross-type numeric comparisons. Later
# versions add ext.Sets (1.29), IP and CIDR (1.30), format (1.31), two-variable
# comprehensions (1.32), semver and image (1.33).
CEL_STANDARD = {
    # macros
    "has", "all", "exists", "exists_one", "map", "filter",
    # functions and methods
    "size", "contains", "startsWith", "endsWith", "matches",
    "int", "uint", "double", "string", "bytes", "bool", "type", "dyn", "duration", "timestamp",
    "getFullYear", "getMonth", "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear",
    "getHours", "getMinutes", "getSeconds", "getMilliseconds",
}
CEL_EXT_STRINGS_V0 = {
    "charAt", "indexOf", "lastIndexOf", "lowerAscii", "replace", "split", "substring", "trim",
    "upperAscii", "join",
}
K8S_URLS = {"url", "isURL", "getScheme", "getHost", "getHostname", "getPort", "getEscapedPath", "getQuery"}
K8S_REGEX = {"find", "findAll"}
K8S_LISTS = {"isSorted", "sum", "min", "max", "indexOf", "lastIndexOf"}
CEL_FUNCTIONS_1_28 = CEL_STANDARD | CEL_EXT_STRINGS_V0 | K8S_URLS | K8S_REGEX | K8S_LISTS

# The fields of an x-kubernetes-validations entry in 1.28 (apiextensions/v1 ValidationRule):
# rule and message since 1.25, messageExpression since 1.27, reason and fieldPath since 1.28.
# optionalOldSelf came in 1.29 (with CRD validation ratcheting) and is not allowed here.
VALIDATION_RULE_FIELDS_1_28 = {"rule", "message", "messageExpression", "reason", "fieldPath"}
# The values of `reason` 1.28 accepts.
VALIDATION_REASONS_1_28 = {"FieldValueInvalid", "FieldValueForbidden", "FieldValueRequired", "FieldValueDuplicate"}

STRING_LITERAL = re.compile(r"""[rR]?('''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*")""", re.S)
CALL = re.compile(r"(?<![\w.])(?:\.\s*)?([A-Za-z_]\w*)\s*\(|\.\s*([A-Za-z_]\w*)\s*\(")


# Namespaces of cel-go extension functions (`sets.contains`, `math.greatest`, `strings.quote`,
# `base64.encode`, `optional.of`): none is in a 1.28 server's environment for new rules.
NAMESPACED_CALL = re.compile(r"(?<![\w.])(sets|math|strings|base64|optional|lists|cel)\s*\.\s*([A-Za-z_]\w*)\s*\(")


def cel_calls(expression: str) -> set[str]:
    """The names of the functions, methods and macros an expression calls (literals skipped);
    a namespaced function is named with its namespace, e.g. `sets.contains`."""
    code = STRING_LITERAL.sub('""', expression)
    namespaced = {f"{ns}.{name}" for ns, name in NAMESPACED_CALL.findall(code)}
    code = NAMESPACED_CALL.sub("(", code)
    return namespaced | {a or b for a, b in CALL.findall(code)}


def uses_optional_syntax(expression: str) -> bool:
    code = STRING_LITERAL.sub('""', expression)
    return bool(re.search(r"\?\.|\.\?|\[\?", code))


def validation_rules(schema: object, path: str = "") -> list[tuple[str, dict]]:
    """Every x-kubernetes-validations entry of a schema, with where it is."""
    found = []
    if isinstance(schema, dict):
        for rule in schema.get("x-kubernetes-validations", []):
            found.append((path or ".", rule))
        for key, value in schema.items():
            if key != "x-kubernetes-validations":
                found.extend(validation_rules(value, f"{path}.{key}"))
    elif isinstance(schema, list):
        for i, item in enumerate(schema):
            found.extend(validation_rules(item, f"{path}[{i}]"))
    return found


def crd_rules() -> list[tuple[str, str, dict]]:
    rules = []
    for crd_file in CRD_FILES:
        crd = yaml.safe_load(crd_file.read_text())
        for version in crd["spec"]["versions"]:
            for where, rule in validation_rules(version["schema"]["openAPIV3Schema"]):
                rules.append((crd["metadata"]["name"], where, rule))
    return rules


def test_the_crds_have_rules_to_check() -> None:
    names = {crd for crd, _, _ in crd_rules()}
    assert names == {"aviautoscalers.autoscaling.avi.dev", "avicontrollers.autoscaling.avi.dev"}


@pytest.mark.parametrize(("crd", "where", "rule"), crd_rules(), ids=[f"{c.split('.')[0]}{w}:{r['rule'][:40]}" for c, w, r in crd_rules()])
def test_every_cel_rule_calls_only_1_28_functions(crd: str, where: str, rule: dict) -> None:
    for field in ("rule", "messageExpression"):
        if field in rule:
            assert cel_calls(rule[field]) <= CEL_FUNCTIONS_1_28, f"{crd} {where} {field} calls {sorted(cel_calls(rule[field]) - CEL_FUNCTIONS_1_28)}, unknown to Kubernetes 1.28"
            assert not uses_optional_syntax(rule[field]), f"{crd} {where}: optional types need Kubernetes 1.29"


@pytest.mark.parametrize(("crd", "where", "rule"), crd_rules(), ids=[f"{c.split('.')[0]}{w}:{r['rule'][:40]}" for c, w, r in crd_rules()])
def test_every_validation_rule_uses_only_1_28_fields(crd: str, where: str, rule: dict) -> None:
    assert set(rule) <= VALIDATION_RULE_FIELDS_1_28, f"{crd} {where}: {sorted(set(rule) - VALIDATION_RULE_FIELDS_1_28)}"
    if "reason" in rule:
        assert rule["reason"] in VALIDATION_REASONS_1_28


def test_the_rule_fields_are_those_of_the_1_28_api() -> None:
    # The list above agrees with 1.28's own schema of ValidationRule (kubernetes-validate ships
    # the OpenAPI definitions of each version).
    definitions = kubernetes_validate.utils.schema_contents(
        f"kubernetes-json-schema/v{OLDEST_KUBE_VERSION}.0-local-strict/_definitions.json", OLDEST_KUBE_VERSION
    )["$defs"]
    rule = definitions["io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.ValidationRule"]
    assert set(rule["properties"]) == VALIDATION_RULE_FIELDS_1_28
    newer = kubernetes_validate.utils.schema_contents(
        "kubernetes-json-schema/v1.29.0-local-strict/_definitions.json", "1.29"
    )["$defs"]["io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.ValidationRule"]
    assert "optionalOldSelf" in set(newer["properties"]) - VALIDATION_RULE_FIELDS_1_28


def definitions(version: str) -> dict:
    return kubernetes_validate.utils.schema_contents(f"kubernetes-json-schema/v{version}.0-local-strict/_definitions.json", version)["$defs"]


def schema_keywords(schema: object) -> set[str]:
    """Every keyword of a structural schema (the names under `properties` are field names, not
    keywords; x-kubernetes-validations entries are checked above)."""
    keywords: set[str] = set()
    if isinstance(schema, dict):
        for key, value in schema.items():
            keywords.add(key)
            if key in {"properties", "definitions", "patternProperties", "dependencies"}:
                for sub in value.values():
                    keywords |= schema_keywords(sub)
            elif key in {"items", "additionalProperties", "not"} or key in {"allOf", "anyOf", "oneOf"}:
                keywords |= schema_keywords(value)
    elif isinstance(schema, list):
        for item in schema:
            keywords |= schema_keywords(item)
    return keywords


def test_the_schemas_use_only_1_28_keywords() -> None:
    allowed = set(definitions(OLDEST_KUBE_VERSION)["io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps"]["properties"])
    for crd_file in CRD_FILES:
        crd = yaml.safe_load(crd_file.read_text())
        for version in crd["spec"]["versions"]:
            used = schema_keywords(version["schema"]["openAPIV3Schema"])
            assert used <= allowed, f"{crd_file.name}: {sorted(used - allowed)} unknown to Kubernetes {OLDEST_KUBE_VERSION}"
            # And the version's own fields (selectableFields came in 1.30, for example).
            version_fields = set(definitions(OLDEST_KUBE_VERSION)["io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionVersion"]["properties"])
            assert set(version) <= version_fields, sorted(set(version) - version_fields)


def test_the_keyword_check_can_fail() -> None:
    newer = set(definitions("1.30")["io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionVersion"]["properties"])
    older = set(definitions(OLDEST_KUBE_VERSION)["io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionVersion"]["properties"])
    assert "selectableFields" in newer - older
    assert schema_keywords({"type": "object", "properties": {"a": {"type": "string", "x-kubernetes-new": True}}}) == {
        "type", "properties", "x-kubernetes-new",
    }


def test_the_chart_crds_are_the_checked_ones() -> None:
    checked = [yaml.safe_load(f.read_text()) for f in CRD_FILES]
    shipped = [doc for crd in chart().crds for doc in yaml.safe_load_all(crd["data"]) if doc]
    assert shipped == checked


@pytest.mark.parametrize(
    ("expression", "refused"),
    [
        ("self.name.format([1])", {"format"}),  # strings extension version 1 (Kubernetes 1.29)
        ("sets.contains(self.a, self.b)", {"sets.contains"}),  # ext.Sets: 1.29
        ("isQuantity(self.size)", {"isQuantity"}),  # quantity library: 1.28 stored only, not new rules
        ("ip(self.address).family() == 4", {"ip", "family"}),  # 1.30
        ("math.greatest(self.a, self.b) > 0", {"math.greatest"}),  # ext.Math: never in Kubernetes' base environment
        ("self.tags.map(t, t.reverse())", {"reverse"}),  # strings version 3
        ("'url(x)'.size() > 0 && isURL(self.u)", set()),  # names in string literals are not calls
    ],
)
def test_the_cel_check_can_fail(expression: str, refused: set[str]) -> None:
    assert cel_calls(expression) - CEL_FUNCTIONS_1_28 == refused


def test_optional_syntax_is_refused() -> None:
    assert uses_optional_syntax("self.?spec.orValue(1) > 0")
    assert uses_optional_syntax("self.a[?'b'].hasValue()")
    assert not uses_optional_syntax("self.a == 'x?.y'")


# ---------------------------------------------------------------------------------------------
# API requests


def test_the_pinned_client_is_kubernetes_1_28() -> None:
    assert kube_api_check.client_version().startswith("28."), kube_api_check.client_version()
    pins = (ROOT / "requirements-dev.txt").read_text()
    assert re.search(r"^kubernetes==28\.", pins, re.M)


def crds() -> list[kube_api_check.CustomResource]:
    return kube_api_check.crd_resources(f.read_text() for f in CRD_FILES)


def test_the_sample_log_exists_in_1_28() -> None:
    requests = read_request_log(SAMPLE_LOG.read_text())
    assert kube_api_check.check(requests, kube_api_check.client_operations(), crds()) == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        # ValidatingAdmissionPolicy became admissionregistration.k8s.io/v1 in 1.30.
        ("GET", "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies"),
        # resource.k8s.io/v1 (dynamic resource allocation) in 1.34.
        ("GET", "/apis/resource.k8s.io/v1/namespaces/a/resourceclaims"),
        # autoscaling/v2beta2 was removed in 1.26.
        ("GET", "/apis/autoscaling/v2beta2/namespaces/a/horizontalpodautoscalers"),
        # Deployments have no such subresource.
        ("PATCH", "/apis/apps/v1/namespaces/a/deployments/web/resize"),
        # coordination.k8s.io/v1beta1 was removed in 1.22.
        ("GET", "/apis/coordination.k8s.io/v1beta1/namespaces/a/leases/l"),
        # Our CRD has no scale subresource, and no v1 version.
        ("GET", "/apis/autoscaling.avi.dev/v1alpha1/namespaces/a/aviautoscalers/web/scale"),
        ("GET", "/apis/autoscaling.avi.dev/v1/namespaces/a/aviautoscalers"),
        # AviControllers are cluster-scoped.
        ("GET", "/apis/autoscaling.avi.dev/v1alpha1/namespaces/a/avicontrollers"),
        # A watch on an operation without a watch parameter.
        ("GET", "/apis/apps/v1/namespaces/a/deployments/web/scale?watch=true"),
    ],
)
def test_requests_unknown_to_1_28_are_reported(method: str, path: str) -> None:
    problems = kube_api_check.check([Request(method, path)], kube_api_check.client_operations(), crds())
    assert len(problems) == 1 and path in problems[0], problems


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/version"),
        ("GET", "/apis/apps/v1/namespaces/a/deployments?watch=true&resourceVersion=4"),
        ("PATCH", "/apis/events.k8s.io/v1/namespaces/a/events/e.1"),
        ("GET", "/apis/autoscaling.avi.dev/v1alpha1/avicontrollers?watch=1"),
        ("PATCH", "/apis/autoscaling.avi.dev/v1alpha1/avicontrollers/prod/status"),
        ("GET", "/api/v1/namespaces/avi-autoscaler/secrets/avi-credentials"),
    ],
)
def test_requests_known_to_1_28_pass(method: str, path: str) -> None:
    assert kube_api_check.check([Request(method, path)], kube_api_check.client_operations(), crds()) == []


def test_command_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    log = tmp_path / "requests.jsonl"
    log.write_text('{"method": "GET", "path": "/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas", "status": 200}\n')
    script = ROOT / "hack" / "kube_api_check.py"
    result = subprocess.run([sys.executable, str(script), "--log", str(log)], capture_output=True, text=True, timeout=60)
    # flowcontrol.apiserver.k8s.io/v1 is 1.29+.
    assert result.returncode == 1, result.stdout + result.stderr
    assert "flowschemas" in result.stdout
    args = [sys.executable, str(script), "--log", str(SAMPLE_LOG)] + [a for f in CRD_FILES for a in ("--crd", str(f))]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "against the API of the Kubernetes client 28." in result.stdout
