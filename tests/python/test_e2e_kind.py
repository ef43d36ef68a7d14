"""hack/e2e-kind.sh and its CI workflow. No cluster or container engine runs here, so the script
runs against recording stand-ins for docker, kind, kubectl and helm (fixtures/fake_tool.py):
the test checks the order of the steps, that what the script applies is valid and consistent
with the Dockerfile, the chart and examples/kuard, and that failures are reported."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import helm_python as helm
import pytest
import yaml

from conftest import KUBE_VERSIONS, ROOT, chart, one, render_chart, validate_object

SCRIPT = ROOT / "hack" / "e2e-kind.sh"
WORKFLOW = ROOT / ".github" / "workflows" / "e2e-kind.yaml"
FAKE_TOOL = Path(__file__).parent / "fixtures" / "fake_tool.py"
VENV_BIN = ROOT / ".venv" / "bin"


def tool(name: str) -> str:
    path = VENV_BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make venv`")
    return str(path)


@pytest.fixture(scope="module")
def real_kubectl() -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is not installed (apt-get install kubectl)")
    return kubectl


def install_fake_tools(tmp_path: Path) -> Path:
    """Puts recording stand-ins for docker, kind, kubectl and helm in tmp_path/bin."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("docker", "kind", "kubectl", "helm"):
        stub = bin_dir / name
        stub.write_text(f"#!{sys.executable}\n" + FAKE_TOOL.read_text())
        stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def run_script(tmp_path: Path, real_kubectl: str, **env: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    bin_dir = install_fake_tools(tmp_path)
    log = tmp_path / "calls.jsonl"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    result = subprocess.run(
        ["bash", str(SCRIPT)],
        cwd=tmp_path,
        env={
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "FAKE_LOG": str(log),
            "FAKE_KUBECONFIG": str(kubeconfig),
            "REAL_KUBECTL": real_kubectl,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return result, calls


def calls_of(calls: list[dict], tool_name: str, *prefix: str) -> list[list[str]]:
    return [c["args"] for c in calls if c["tool"] == tool_name and c["args"][: len(prefix)] == list(prefix)]


def applied_from_stdin(calls: list[dict]) -> list[list[dict]]:
    return [
        [d for d in yaml.safe_load_all(c["stdin"]) if d]
        for c in calls
        if c["tool"] == "kubectl" and c["args"][:3] == ["apply", "-f", "-"]
    ]


# The default image tag: e2e- and a hash of the sources.
SOURCE_TAG = re.compile(r"e2e-[0-9a-f]{12}")


def built_tag(calls: list[dict]) -> str:
    """The tag the operator image was built with."""
    (build,) = [b for b in calls_of(calls, "docker", "build") if b[b.index("--target") + 1] == "avi-autoscaler"]
    return build[build.index("--tag") + 1].split(":", 1)[1]


def helm_values(install: list[str]) -> dict:
    """The values of a `helm upgrade --install` command line. Only --set-string is accepted: with
    --set, Helm turns a tag of digits into a number, which the values schema refuses."""
    assert "--set" not in install, install
    values: dict = {}
    for i, arg in enumerate(install):
        if arg == "--set-string":
            for key, value in helm.parse_set_string_values(install[i + 1]).items():
                values.setdefault(key, {}).update(value) if isinstance(value, dict) else values.update({key: value})
    return values


def dockerfile_stages() -> set[str]:
    return set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)\s*$", (ROOT / "Dockerfile").read_text(), re.MULTILINE))


@pytest.fixture(scope="module")
def passing_run(tmp_path_factory: pytest.TempPathFactory, real_kubectl: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    return run_script(tmp_path_factory.mktemp("e2e"), real_kubectl)


def test_script_passes_against_a_healthy_cluster(passing_run) -> None:
    result, calls = passing_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "e2e-kind: PASSED" in result.stdout
    assert SOURCE_TAG.fullmatch(built_tag(calls)), built_tag(calls)


def test_steps_run_in_order(passing_run) -> None:
    _, calls = passing_run
    steps = [(c["tool"], c["args"][0]) for c in calls]
    order = [
        ("kind", "create"),
        ("docker", "build"),
        ("kind", "load"),
        ("kubectl", "apply"),  # avi-sim
        ("kubectl", "exec"),  # its CA
        ("helm", "upgrade"),
        ("kubectl", "patch"),  # the AviAutoscaler pointed at avi-sim
        ("kubectl", "wait"),
        ("kind", "delete"),
    ]
    positions = [steps.index(step) for step in order]
    assert positions == sorted(positions), steps


def test_images_are_the_dockerfile_stages_and_reach_the_cluster(passing_run) -> None:
    _, calls = passing_run
    builds = calls_of(calls, "docker", "build")
    targets = {b[b.index("--target") + 1]: b[b.index("--tag") + 1] for b in builds}
    assert set(targets) == {"avi-autoscaler", "avi-sim"} <= dockerfile_stages()
    assert all(b[-1] == "." for b in builds)
    (load,) = calls_of(calls, "kind", "load", "docker-image")
    assert set(targets.values()) <= set(load)
    tag = built_tag(calls)
    assert targets == {"avi-autoscaler": f"avi-autoscaler:{tag}", "avi-sim": f"avi-sim:{tag}"}
    # The binaries learn the commit they are built from (the build context has no .git).
    for build in builds:
        assert build[build.index("--build-arg") + 1].startswith("AVI_AUTOSCALER_GIT_SHA=")


def test_avi_sim_manifests_are_valid_and_consistent(passing_run) -> None:
    _, calls = passing_run
    objects = applied_from_stdin(calls)[0]
    for version in KUBE_VERSIONS:
        for obj in objects:
            validate_object(obj, version)
    deployment = one(objects, "Deployment", "avi-sim")
    service = one(objects, "Service", "avi-sim")
    secret = one(objects, "Secret", "avi-sim-password")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == f"avi-sim:{built_tag(calls)}" and container["imagePullPolicy"] == "Never"
    args = dict(a.split("=", 1) for a in container["args"])
    assert args["--listen"] == "0.0.0.0:8443"
    assert args["--tls-san"] == "avi-sim.avi-sim.svc"
    # The password comes from the Secret through an environment variable the kubelet expands.
    variable = re.fullmatch(r"\$\((\w+)\)", args["--password"]).group(1)
    env = {e["name"]: e for e in container["env"]}
    assert env[variable]["valueFrom"]["secretKeyRef"] == {"name": secret["metadata"]["name"], "key": "password"}
    # The CA lands on a writable volume (the root filesystem is read-only) that exec reads.
    ca_dir = os.path.dirname(args["--ca-out"])
    assert {m["mountPath"] for m in container["volumeMounts"]} == {ca_dir}
    (exec_call,) = calls_of(calls, "kubectl", "exec")
    assert exec_call[-2:] == ["cat", args["--ca-out"]]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]
    assert container["ports"][0]["containerPort"] == int(args["--listen"].rsplit(":", 1)[1])


def test_chart_install_uses_the_loaded_image(passing_run) -> None:
    _, calls = passing_run
    (install,) = calls_of(calls, "helm", "upgrade", "--install")
    assert install[2:4] == ["avi-autoscaler", "config/helm/avi-autoscaler"]
    assert install[install.index("--namespace") + 1] == "avi-autoscaler"
    assert "--wait" in install
    values = helm_values(install)
    tag = built_tag(calls)
    assert values["image"] == {"repository": "avi-autoscaler", "tag": tag, "pullPolicy": "Never"}
    # The kuard example uses an AviController: the chart's defaults, inline connections off.
    assert not any("inlineControllers" in arg for arg in install), install
    chart().validate_schema(values)
    container = next(c for c in one(render_chart(values), "Deployment")["spec"]["template"]["spec"]["containers"])
    assert container["image"] == f"avi-autoscaler:{tag}"


def test_kuard_example_is_pointed_at_avi_sim(passing_run) -> None:
    _, calls = passing_run
    applied = applied_from_stdin(calls)
    sim = applied[0]
    # The AviController's Secrets live in the operator's namespace, unlabelled (not for inline use).
    secrets = {o["metadata"]["name"]: o for docs in applied for o in docs if o["kind"] == "Secret" and o["metadata"].get("namespace") == "avi-autoscaler"}
    assert not [o for docs in applied for o in docs if o["kind"] == "Secret" and o["metadata"].get("namespace") == "routing-ns1"]
    assert all("labels" not in s["metadata"] for s in secrets.values()), secrets
    (avic,) = [o for docs in applied for o in docs if o["kind"] == "AviController"]
    validate_object(avic, KUBE_VERSIONS[-1])
    example_avic = yaml.safe_load((ROOT / "examples" / "kuard" / "avicontroller.yaml").read_text())
    assert avic["metadata"] == example_avic["metadata"]
    # The example's AviAutoscaler is applied as it is, and refers to the AviController.
    example = yaml.safe_load((ROOT / "examples" / "kuard" / "aviautoscaler.yaml").read_text())
    validate_object(example, KUBE_VERSIONS[-1])
    assert example["spec"]["controllerRef"] == {"name": avic["metadata"]["name"]}
    assert "controller" not in example["spec"]
    controller = avic["spec"]
    assert {k: v for k, v in controller.items() if k not in ("endpoints", "tls")} == {k: v for k, v in example_avic["spec"].items() if k not in ("endpoints", "tls")}
    service = one(sim, "Service")
    assert controller["endpoints"] == [f"https://{service['metadata']['name']}.{service['metadata']['namespace']}.svc:{service['spec']['ports'][0]['port']}"]
    # Credentials: avi-sim's user and this run's password; CA: the one avi-sim wrote.
    import base64

    credentials = secrets[controller["credentialsSecretRef"]["name"]]
    password = base64.b64decode(credentials["data"]["password"]).decode()
    assert base64.b64decode(credentials["data"]["username"]).decode() == "admin"
    assert password == one(sim, "Secret")["stringData"]["password"]
    ca = secrets[controller["tls"]["caSecretRef"]["name"]]
    assert "BEGIN CERTIFICATE" in base64.b64decode(ca["data"][controller["tls"]["caSecretRef"]["key"]]).decode()
    # The example's placeholder Secret is never applied; its namespace, Deployment and
    # AviAutoscaler are.
    applied_files = [c["args"][2] for c in calls if c["tool"] == "kubectl" and c["args"][:2] == ["apply", "-f"] and c["args"][2] != "-"]
    assert applied_files == ["examples/kuard/namespace.yaml", "examples/kuard/deployment.yaml", "examples/kuard/aviautoscaler.yaml"]


def test_scale_up_is_awaited_on_the_example_target(passing_run) -> None:
    _, calls = passing_run
    waits = calls_of(calls, "kubectl", "wait")
    deployment = one([d for d in yaml.safe_load_all((ROOT / "examples" / "kuard" / "deployment.yaml").read_text()) if d], "Deployment")
    example = yaml.safe_load((ROOT / "examples" / "kuard" / "aviautoscaler.yaml").read_text())
    assert waits[0][1] == f"deployment/{deployment['metadata']['name']}"
    assert f"--for=jsonpath={{.spec.replicas}}={example['spec']['maxReplicas']}" in waits[0]
    assert waits[1][1] == f"aviautoscaler/{example['metadata']['name']}" and "--for=condition=Ready" in waits[1]
    assert waits[2][1] == f"avicontroller/{example['spec']['controllerRef']['name']}" and "--for=condition=Ready" in waits[2]
    (raw,) = [c for c in calls_of(calls, "kubectl", "get") if "--raw" in c]
    service = one(render_chart(), "Service")
    assert f"/services/{service['metadata']['name']}:metrics/proxy/metrics" in raw[-1]


def test_a_failed_wait_prints_diagnostics_and_cleans_up(tmp_path: Path, real_kubectl: str) -> None:
    result, calls = run_script(tmp_path, real_kubectl, FAKE_WAIT_FAILS="1")
    assert result.returncode != 0
    assert "==> diagnostics" in result.stdout and "e2e-kind: FAILED" in result.stderr
    assert calls_of(calls, "kubectl", "describe", "aviautoscaler")
    assert calls_of(calls, "kind", "delete", "cluster")


def test_an_existing_cluster_is_reused_and_kept(tmp_path: Path, real_kubectl: str) -> None:
    result, calls = run_script(tmp_path, real_kubectl, FAKE_CLUSTER_EXISTS="1", KIND_CLUSTER="ci", IMAGE_TAG="pr-1")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert not calls_of(calls, "kind", "create") and not calls_of(calls, "kind", "delete")
    assert all(c["args"][c["args"].index("--name") + 1] == "ci" for c in calls if c["tool"] == "kind" and "--name" in c["args"])
    assert "avi-autoscaler:pr-1" in calls_of(calls, "kind", "load", "docker-image")[0]


def test_a_rerun_on_a_kept_cluster_restarts_what_it_tests(tmp_path: Path, real_kubectl: str) -> None:
    runs = []
    for n in (1, 2):
        directory = tmp_path / str(n)
        directory.mkdir()
        result, calls = run_script(directory, real_kubectl, FAKE_CLUSTER_EXISTS="1", KEEP_CLUSTER="true")
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        runs.append(calls)
    sims = [one(applied_from_stdin(calls)[0], "Deployment", "avi-sim") for calls in runs]
    passwords = [one(applied_from_stdin(calls)[0], "Secret")["stringData"]["password"] for calls in runs]
    installs = [helm_values(calls_of(calls, "helm", "upgrade", "--install")[0]) for calls in runs]
    # A new password, and a changed pod template that restarts avi-sim with it (one at a time):
    # its seed load starts with the process, so with this run.
    assert passwords[0] != passwords[1]
    annotations = [s["spec"]["template"]["metadata"]["annotations"] for s in sims]
    assert annotations[0] != annotations[1]
    assert all(s["spec"]["strategy"] == {"type": "Recreate"} for s in sims)
    # The operator is rolled even when the sources, and so the image tag, did not change.
    assert built_tag(runs[0]) == built_tag(runs[1])
    assert installs[0]["podAnnotations"] != installs[1]["podAnnotations"]
    # The example starts from a fresh namespace: no scale, status or events of the last run.
    for calls in runs:
        steps = [(c["tool"], c["args"][:3]) for c in calls]
        delete = steps.index(("kubectl", ["delete", "namespace", "routing-ns1"]))
        assert delete < steps.index(("kubectl", ["apply", "-f", "examples/kuard/namespace.yaml"]))
        assert "--ignore-not-found" in calls[delete]["args"] and "--wait=true" in calls[delete]["args"]


def test_an_all_digit_tag_stays_a_string(tmp_path: Path, real_kubectl: str) -> None:
    result, calls = run_script(tmp_path, real_kubectl, IMAGE_TAG="20261205")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    values = helm_values(calls_of(calls, "helm", "upgrade", "--install")[0])
    assert values["image"]["tag"] == "20261205"
    chart().validate_schema(values)


def dry_run(env_path: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    log = tmp_path / "calls.jsonl"
    result = subprocess.run(
        ["bash", str(SCRIPT)],
        env={"PATH": env_path, "HOME": str(tmp_path), "E2E_KIND_DRY_RUN": "1", "FAKE_LOG": str(log), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert not log.exists(), "a dry run ran a tool"
    return result


def printed_commands(stdout: str) -> list[str]:
    return [line[2:] for line in stdout.splitlines() if line.startswith("+ ")]


def test_dry_run_prints_every_command_and_runs_none(tmp_path: Path, real_kubectl: str) -> None:
    # The recording tools are first on PATH: the dry run must not call them.
    bin_dir = install_fake_tools(tmp_path)
    result = dry_run(f"{bin_dir}:/usr/bin:/bin", tmp_path)
    commands = printed_commands(result.stdout)
    tools = [c.split()[0] for c in commands]
    assert set(tools) == {"kind", "docker", "kubectl", "helm"}, commands
    first = lambda prefix: next(i for i, c in enumerate(commands) if c.startswith(prefix))  # noqa: E731
    order = [
        first("kind create cluster --name avi-autoscaler-e2e"),
        first("docker build --target avi-autoscaler"),
        first("kind load docker-image"),
        first("kubectl --context kind-avi-autoscaler-e2e apply -f -"),
        first("helm --kube-context kind-avi-autoscaler-e2e upgrade --install avi-autoscaler"),
        first("kubectl --context kind-avi-autoscaler-e2e delete namespace routing-ns1"),
        first("kubectl --context kind-avi-autoscaler-e2e wait deployment/kuard-deployment"),
    ]
    assert order == sorted(order), commands
    (helm_line,) = [c for c in commands if c.startswith("helm ")]
    tag = re.search(r"--set-string image\.tag=(\S+)", helm_line).group(1)
    assert SOURCE_TAG.fullmatch(tag)
    assert f"--tag avi-autoscaler:{tag} ." in result.stdout and f"avi-sim:{tag}" in result.stdout
    assert "--set " not in helm_line
    # The manifests a command reads are printed with it.
    assert "  | kind: Deployment" in result.stdout and "  |   name: avi-sim" in result.stdout
    assert "dry run, nothing was run" in result.stdout


def test_dry_run_needs_none_of_the_tools(tmp_path: Path) -> None:
    # Only the basic utilities: no docker, kind or helm (kubectl may be there; it is not called).
    result = dry_run("/usr/bin:/bin", tmp_path)
    assert "is required" not in result.stderr
    assert printed_commands(result.stdout)


def test_the_image_tag_follows_the_sources(tmp_path: Path) -> None:
    def tag() -> str:
        helm_line = next(c for c in printed_commands(dry_run("/usr/bin:/bin", tmp_path).stdout) if c.startswith("helm "))
        return re.search(r"--set-string image\.tag=(\S+)", helm_line).group(1)

    before = tag()
    assert tag() == before, "the same sources give the same tag"
    probe = ROOT / "hack" / f"tag-probe-{os.getpid()}.txt"
    try:
        probe.write_text("a change to the build context\n")
        assert tag() != before, "a changed source gives a new tag, so a rerun tests the new build"
    finally:
        probe.unlink()
    assert tag() == before


def test_missing_tools_are_named(tmp_path: Path) -> None:
    # Only the shell and basic utilities on PATH: docker, kind, kubectl and helm are missing.
    for name in ("dirname",):
        (tmp_path / name).symlink_to(shutil.which(name))
    result = subprocess.run(
        [shutil.which("bash"), str(SCRIPT)], env={"PATH": str(tmp_path), "HOME": str(tmp_path)}, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "e2e-kind: docker is required" in result.stderr


def test_script_passes_shellcheck() -> None:
    result = subprocess.run([tool("shellcheck"), "--severity=style", str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout


# ---------------------------------------------------------------------------------------------
# The workflow


def test_workflow_runs_the_script_on_a_kind_cluster() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"push", "pull_request", "workflow_dispatch"} <= set(triggers)
    assert workflow["permissions"] == {"contents": "read"}
    (job,) = workflow["jobs"].values()
    assert job["timeout-minutes"] <= 90
    steps = job["steps"]
    uses = [s["uses"] for s in steps if "uses" in s]
    for action in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+(\.\d+)*", action), f"{action}: pin a release"
    assert any(u.startswith("actions/checkout@") for u in uses)
    kind_step = next(s for s in steps if s.get("uses", "").startswith("helm/kind-action@"))
    helm_step = next(s for s in steps if s.get("uses", "").startswith("azure/setup-helm@"))
    run_step = next(s for s in steps if "run" in s)
    assert run_step["run"].strip() == "make e2e-kind"
    assert run_step["env"]["KIND_CLUSTER"] == kind_step["with"]["cluster_name"]
    # The Helm the workflow installs is the one the chart is tested with here.
    assert helm_step["with"]["version"] == helm.helm_sdk_version()
    assert steps.index(run_step) > steps.index(kind_step) > steps.index(uses_step(steps, "actions/checkout@"))


def uses_step(steps: list[dict], prefix: str) -> dict:
    return next(s for s in steps if s.get("uses", "").startswith(prefix))


def test_make_e2e_kind_runs_the_script() -> None:
    makefile = (ROOT / "Makefile").read_text()
    target = re.search(r"^e2e-kind:.*## .+\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert target, "Makefile has no documented e2e-kind target"
    assert "hack/e2e-kind.sh" in target.group(1)
