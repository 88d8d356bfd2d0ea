"""The chaos experiments' kind variants, offline: valid for Chaos Toolkit with the real
chaostoolkit-kubernetes installed, aimed at objects the manifests (and Dapr's chart) really
have, and refused with the reason when there is no cluster. No cluster runs here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml
from chaoslib.exceptions import InvalidActivity
from chaoslib.experiment import ensure_experiment_is_valid

from agentia import names
from agentia.paths import repo_root
from agentia_tools import kind
from agentia_tools.chaos import kind_faults, kind_load, runner
from agentia_tools.kind_render import NAMESPACE

from .conftest import Doc, pod_templates, rendered
from .upstream import dapr_dir

KIND = [e.variants["kind"] for e in runner.experiments() if "kind" in e.targets]
NO_CONTEXT = f"kind target: no kube context '{kind.CONTEXT}' (run `agentia kind up` first)"
# chaosk8s functions whose `name` argument is a Deployment / a StatefulSet.
DEPLOYMENT_FUNCS = {"scale_deployment", "deployment_fully_available"}
STATEFULSET_FUNCS = {"scale_statefulset", "statefulset_fully_available"}


def doc(variant: runner.Variant) -> Doc:
    loaded: Doc = json.loads(variant.path.read_text())
    return loaded


def activities(experiment: Doc) -> list[Doc]:
    steady = experiment["steady-state-hypothesis"]["probes"]
    return [*steady, *experiment["method"], *experiment["rollbacks"]]


def k8s_activities(experiment: Doc) -> list[Doc]:
    return [a for a in activities(experiment) if a["provider"]["module"].startswith("chaosk8s.")]


def resolved(experiment: Doc, value: Any) -> Any:
    """A ``${key}`` argument as Chaos Toolkit substitutes it from the configuration."""
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        return experiment["configuration"][value[2:-1]]
    return value


def selector(text: str) -> dict[str, str]:
    """An equality-based label selector (the only kind these experiments use)."""
    pairs = [p.split("=", 1) for p in text.split(",")]
    assert all(len(p) == 2 and "!" not in p[0] for p in pairs), text
    return {k.strip(): v.strip() for k, v in pairs}


def chart_pod_labels() -> list[dict[str, str]]:
    """The static labels of every pod template in Dapr's Helm chart (its templates are not
    plain YAML: the pod template's ``labels:`` block is read line by line)."""
    found = []
    for path in sorted((dapr_dir() / "charts" / "dapr" / "charts").glob("*/templates/*.yaml")):
        lines = path.read_text().splitlines()
        if not any(line.strip() in ("kind: StatefulSet", "kind: Deployment") for line in lines):
            continue
        start = next(i for i, line in enumerate(lines) if line.strip() == "template:")
        at = next(i for i in range(start, len(lines)) if lines[i].strip() == "labels:")
        labels: dict[str, str] = {}
        indent = None
        for line in lines[at + 1 :]:
            if not line.strip():
                continue
            depth = len(line) - len(line.lstrip())
            indent = depth if indent is None else indent
            if depth < indent:
                break
            if depth == indent and "{{" not in line and ":" in line:
                key, value = line.strip().split(":", 1)
                labels[key.strip()] = value.strip()
        found.append(labels)
    return found


def test_there_are_kind_variants_of_the_experiments_that_fit_kubernetes() -> None:
    names_ = {v.path.stem for v in KIND}
    assert {"kill-runner", "stop-rabbitmq", "stop-postgres", "stop-redis"} <= names_
    assert {"kill-everything", "kill-control-plane", "kill-gateway", "stop-runner"} <= names_
    assert version("chaostoolkit-kubernetes") == "0.39.0"  # the pinned one is what validates


@pytest.mark.parametrize("variant", KIND, ids=lambda v: v.path.stem)
def test_kind_experiment_passes_chaos_toolkits_own_validation(variant: runner.Variant) -> None:
    # Imports every python activity's module (chaosk8s's real ones) and checks that each
    # function exists and takes the arguments given.
    ensure_experiment_is_valid(doc(variant))


def test_the_validation_can_fail() -> None:
    experiment = doc(next(v for v in KIND if v.path.stem == "kill-runner"))
    terminate = next(a for a in experiment["method"] if a["provider"]["func"] == "terminate_pods")
    terminate["provider"]["arguments"]["namespace"] = NAMESPACE  # chaosk8s calls it `ns`
    with pytest.raises(InvalidActivity, match="namespace"):
        ensure_experiment_is_valid(experiment)


def test_every_variant_is_tagged_with_its_target() -> None:
    for exp in runner.experiments():
        for target, variant in exp.variants.items():
            tags = doc(variant)["tags"]
            assert target in tags, variant.path
            assert not set(tags) & (set(runner.TARGETS) - {target}), variant.path
    assert all("ci" not in doc(v)["tags"] for v in KIND)  # `make test` stays local


@pytest.mark.parametrize("variant", KIND, ids=lambda v: v.path.stem)
def test_kind_experiment_names_the_cluster_and_its_namespaces(variant: runner.Variant) -> None:
    experiment = doc(variant)
    config = experiment["configuration"]
    assert config["namespace"] == NAMESPACE
    assert config["dapr_namespace"] == kind.DAPR_NAMESPACE
    assert config["experiment"] == runner.report_name(variant, variant.path.stem)
    # Run by hand with `chaos run`, it still talks to the kind cluster only.
    assert experiment["secrets"] == {"k8s": {"KUBERNETES_CONTEXT": kind.CONTEXT}}
    for act in k8s_activities(experiment):
        assert act["provider"].get("secrets") == ["k8s"], act["name"]
        ns = resolved(experiment, act["provider"]["arguments"]["ns"])
        assert ns in (NAMESPACE, kind.DAPR_NAMESPACE), act["name"]
    for act in activities(experiment):
        args = act["provider"].get("arguments", {})
        if act["provider"]["module"].startswith("agentia.") and "experiment" in args:
            assert args["experiment"] == config["experiment"], act["name"]
    # Nothing of the local mesh's machinery: the load goes through the gateway's API; the
    # faults are chaosk8s' or the cluster-only ones (kind_faults: nodes, rollouts).
    modules = {a["provider"]["module"] for a in activities(experiment)}
    ours = {"agentia_tools.chaos.kind_load", "agentia_tools.chaos.kind_faults"}
    assert modules <= ours | {m for m in modules if "chaosk8s" in m}


@pytest.mark.parametrize("overlay", kind.OVERLAYS)
@pytest.mark.parametrize("variant", KIND, ids=lambda v: v.path.stem)
def test_kind_experiment_targets_objects_the_manifests_render(
    variant: runner.Variant, overlay: str
) -> None:
    # Only what lands in the experiments' namespace counts as a target.
    docs = [d for d in rendered(overlay) if d["metadata"].get("namespace") == NAMESPACE]
    by_kind = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    pods = [t["metadata"].get("labels", {}) for _, t in pod_templates(docs)]
    experiment = doc(variant)
    for act in k8s_activities(experiment):
        func, args = act["provider"]["func"], act["provider"]["arguments"]
        if resolved(experiment, args["ns"]) != NAMESPACE:
            continue  # Dapr's control plane: checked against its chart below
        if "label_selector" in args:
            wanted = selector(args["label_selector"])
            matching = [p for p in pods if wanted.items() <= p.items()]
            assert matching, f"{act['name']}: no pod template has {wanted}"
        if func in DEPLOYMENT_FUNCS:
            assert ("Deployment", args["name"]) in by_kind, act["name"]
            assert args["name"] in names.APP_IDS
        if func in STATEFULSET_FUNCS:
            assert ("StatefulSet", args["name"]) in by_kind, act["name"]


@pytest.mark.parametrize("variant", KIND, ids=lambda v: v.path.stem)
def test_what_is_scaled_down_is_scaled_back_to_its_rendered_replicas(
    variant: runner.Variant,
) -> None:
    by_kind = {(d["kind"], d["metadata"]["name"]): d for d in rendered("dev")}
    experiment = doc(variant)
    workload = {"scale_deployment": "Deployment", "scale_statefulset": "StatefulSet"}

    def scales(acts: list[Doc]) -> list[tuple[str, str, int]]:
        return [
            (workload[a["provider"]["func"]], a["provider"]["arguments"]["name"], r)
            for a in acts
            if a["provider"]["func"] in workload
            for r in [a["provider"]["arguments"]["replicas"]]
        ]

    method, rollbacks = scales(experiment["method"]), scales(experiment["rollbacks"])
    for what, name, replicas in method:
        if replicas != 0:
            continue
        back = int(by_kind[(what, name)]["spec"]["replicas"])
        assert (what, name, back) in method, f"{name} is never scaled back to {back}"
        assert (what, name, back) in rollbacks, f"{name} has no rollback to {back}"


def test_steady_state_covers_every_service_and_store() -> None:
    infra = {d["metadata"]["name"] for d in rendered("dev") if d["kind"] == "StatefulSet"}
    for variant in KIND:
        probes = doc(variant)["steady-state-hypothesis"]["probes"]
        probed = {p["provider"].get("arguments", {}).get("name") for p in probes}
        assert set(names.APP_IDS) | infra <= probed, variant.path


def test_control_plane_selectors_match_dapr_charts_pods() -> None:
    charts = chart_pod_labels()
    assert {"app": "dapr-placement-server"} in charts  # the reader finds the chart's labels
    seen = 0
    for variant in KIND:
        experiment = doc(variant)
        for act in k8s_activities(experiment):
            args = act["provider"]["arguments"]
            if resolved(experiment, args["ns"]) != kind.DAPR_NAMESPACE:
                continue
            wanted = selector(args["label_selector"])
            assert any(wanted.items() <= labels.items() for labels in charts), act["name"]
            seen += 1
    assert seen >= 4  # kill-control-plane: two deletions, two steady-state probes


# -- refusals, with no cluster ---------------------------------------------------------------


def _kubeconfig(path: Path, contexts: dict[str, str]) -> Path:
    """A kubeconfig with one cluster (API server URL) per context name; never contacted."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": c, "cluster": {"server": url}} for c, url in contexts.items()],
        "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": c, "context": {"cluster": c, "user": "u"}} for c in contexts],
        "current-context": next(iter(contexts)),
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_missing_kube_context_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "kubeconfig"
    empty.write_text("")
    monkeypatch.setenv("KUBECONFIG", str(empty))
    with pytest.raises(runner.ChaosError) as refused:
        runner.run("kill-runner", target="kind")
    assert str(refused.value) == NO_CONTEXT
    # Another cluster's context is not the kind one.
    _kubeconfig(empty, {"prod": "https://10.0.0.1:6443"})
    with pytest.raises(runner.ChaosError, match="no kube context 'kind-agentia'"):
        runner.run("kill-runner", target="kind")


def test_a_missing_kubectl_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(runner.ChaosError, match="kind target: kubectl is not on PATH"):
        runner.run("kill-runner", target="kind")


def test_a_missing_api_key_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _kubeconfig(tmp_path / "kubeconfig", {kind.CONTEXT: "https://127.0.0.1:1"})
    monkeypatch.setenv("KUBECONFIG", str(config))
    monkeypatch.delenv("AGENTIA_API_KEY", raising=False)
    monkeypatch.setenv("AGENTIA_HOME", str(tmp_path / "home"))  # no key kept by `kind up`
    with pytest.raises(runner.ChaosError, match="no API key of the cluster's gateway"):
        runner.run("kill-runner", target="kind")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "kind-api-key").write_text("agk_abc_def\n")
    assert kind_load.api_key() == "agk_abc_def", "the key `agentia kind up` kept is used"


def test_an_experiment_with_no_kind_variant_is_refused_by_name() -> None:
    with pytest.raises(runner.ChaosError, match="'freeze-runner-sidecar' has no kind variant"):
        runner.run("freeze-runner-sidecar", target="kind")
    with pytest.raises(runner.ChaosError, match="unknown target 'mars'"):
        runner.run("kill-runner", target="mars")
    with pytest.raises(runner.ChaosError, match="has no local variant"):
        runner.run("stop-runner")


def test_chaosk8s_sees_only_the_kind_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _kubeconfig(
        tmp_path / "kubeconfig",
        {"prod": "https://10.0.0.1:6443", kind.CONTEXT: "https://127.0.0.1:40123"},
    )
    monkeypatch.setenv("KUBECONFIG", str(config))  # current context: prod
    # In a fresh interpreter, as `chaos run` is: the kubernetes client reads KUBECONFIG once.
    probe = (
        "from chaosk8s import create_k8s_api_client as c; "
        f"print(c({{'KUBERNETES_CONTEXT': '{kind.CONTEXT}'}}).configuration.host)"
    )
    with runner.kind_env() as env:
        minified = yaml.safe_load(Path(env["KUBECONFIG"]).read_text())
        assert [c["name"] for c in minified["contexts"]] == [kind.CONTEXT]
        assert oct(Path(env["KUBECONFIG"]).stat().st_mode & 0o777) == "0o600"
        proc = subprocess.run(
            [sys.executable, "-c", probe],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.stdout.strip() == "https://127.0.0.1:40123", proc.stderr
    assert not Path(env["KUBECONFIG"]).exists()  # the copy of the credentials is gone


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentia_tools", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **env},
        cwd=repo_root(),
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize("name", ["all", "kill-runner"])
def test_cli_without_a_cluster_exits_2_with_the_reason(tmp_path: Path, name: str) -> None:
    empty = tmp_path / "kubeconfig"
    empty.write_text("")
    proc = _cli("chaos", "run", name, "--target", "kind", env={"KUBECONFIG": str(empty)})
    assert proc.returncode == 2, proc
    assert NO_CONTEXT in " ".join(proc.stderr.split()), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "running" not in proc.stdout  # refused before anything ran


def test_cli_lists_each_experiments_targets() -> None:
    proc = _cli("chaos", "list", env={})
    assert proc.returncode == 0, proc.stderr
    rows = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in proc.stdout.splitlines()
        if line.count("│") >= 3 and line.split("│")[1].strip()
    }
    assert rows["kill-runner"] == "local, kind"
    assert rows["freeze-runner-sidecar"] == "local"
    assert rows["stop-runner"] == "kind"


def test_node_faults_touch_only_a_worker_of_the_kind_cluster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`lose_worker` and `drain_worker` stop or drain a node only once Docker shows it as a
    worker container of this kind cluster: never the control plane, never anything else."""
    calls: list[list[str]] = []

    def fake_run(cmd: list[str], timeout: float = 120) -> str:
        calls.append(cmd)
        assert cmd[:3] == ["docker", "ps", "-a"], f"nothing but the listing may run: {cmd}"
        return (
            "agentia-control-plane control-plane\nagentia-worker worker\nagentia-worker2 worker\n"
        )

    monkeypatch.setattr(kind_faults, "_run", fake_run)
    assert kind_faults._own_worker("agentia-worker2") == "agentia-worker2"
    with pytest.raises(kind_faults.FaultError, match="is the control-plane; only workers"):
        kind_faults._own_worker("agentia-control-plane")
    with pytest.raises(kind_faults.FaultError, match="is not a node of the kind cluster"):
        kind_faults._own_worker("db-prod-1")
    assert {c[4] for c in calls} == {f"label=io.x-k8s.kind.cluster={kind.CLUSTER}"}


def test_chaos_report_prints_the_stored_kind_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from agentia_tools.cli.main import app

    monkeypatch.setenv("AGENTIA_HOME", str(tmp_path))
    empty = CliRunner().invoke(app, ["chaos", "report", "--target", "kind"])
    assert empty.exit_code == 1 and "no kind chaos reports" in empty.output
    folder = tmp_path / "chaos" / "kind"
    folder.mkdir(parents=True)
    report = {"experiment": "lose-worker", "target": "kind", "sent": 40, "lost": 0}
    (folder / "lose-worker.json").write_text(json.dumps({**report, "verdict": "pass"}))
    (folder / "lose-worker.journal.json").write_text("{}")  # Chaos Toolkit's, not ours
    shown = CliRunner().invoke(app, ["chaos", "report", "--target", "kind"], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert "lose-worker" in shown.output and "1 of 1 passed" in shown.output
    bad = CliRunner().invoke(app, ["chaos", "report", "--target", "mars"])
    assert bad.exit_code == 2 and "unknown target 'mars'" in bad.output
