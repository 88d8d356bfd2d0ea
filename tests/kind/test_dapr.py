"""Dapr on the cluster, checked offline against Dapr's own sources at the pinned version.

The Dapr resources are generated from the one copy in components/ and differ from it only
as documented; they and KEDA's resources validate against their CRDs; every sidecar
annotation is one Dapr's injector knows and matches the app ids and ports of the local
mesh; every key of dapr-values.yaml exists in the chart.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from agentia import names
from agentia.paths import repo_root
from agentia_tools import access, kind
from agentia_tools.kind_dapr import DIFFERENCES, KUBERNETES_SECRET_STORE, load_local
from agentia_tools.kind_render import (
    DRAIN_APP_ID,
    DRAIN_COMMAND,
    NAMESPACE,
    PART_OF,
    kind_dir,
    stale_generated,
)
from agentia_tools.runtime.daprbin import DAPR_VERSION

from .conftest import pod_templates, rendered
from .upstream import crd_validators, dapr_annotations, dapr_chart_values

Doc = dict[str, Any]


def test_generated_files_are_up_to_date() -> None:
    assert stale_generated() == [], "run `agentia kind generate` and commit the result"


def _diff(a: Any, b: Any, path: str = "") -> set[str]:
    """Paths where two YAML trees differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: set[str] = set()
        for key in a.keys() | b.keys():
            out |= _diff(a.get(key), b.get(key), f"{path}.{key}" if path else key)
        return out
    return set() if a == b else {path}


def _generated() -> dict[str, list[Doc]]:
    base = kind_dir() / "generated" / "dapr"
    return {
        rel: [d for d in yaml.safe_load_all((base / rel).read_text()) if d] for rel in load_local()
    }


def test_generated_dapr_resources_equal_components_but_for_the_documented_differences() -> None:
    local, generated = load_local(), _generated()
    assert set(generated) == set(local)
    differences: dict[str, set[str]] = {}
    for rel, docs in local.items():
        assert len(generated[rel]) == len(docs), rel
        for mine, theirs in zip(docs, generated[rel], strict=True):
            found = _diff(mine, theirs)
            if found:
                differences[f"{mine['kind']}/{mine['metadata']['name']}"] = found
    assert differences == {
        f"Component/{names.SECRET_STORE}": {"spec.type", "spec.metadata"},
        f"Configuration/{names.CONFIGURATION}": {"spec.nameResolution", "spec.tracing.otel"},
    }
    secret_store = next(d for d in generated["secrets.yaml"] if d["kind"] == "Component")
    assert secret_store["spec"]["type"] == KUBERNETES_SECRET_STORE
    assert len(DIFFERENCES) == 4  # docs/kubernetes.md lists these; update both together


def key(d: Doc) -> tuple[str, str]:
    return (d["kind"], d["metadata"]["name"])


def _all_generated() -> list[Doc]:
    """Every generated Dapr resource: components/ and each service's Configuration."""
    base = kind_dir() / "generated" / "dapr"
    return [
        d
        for path in sorted(base.rglob("*.yaml"))
        for d in yaml.safe_load_all(path.read_text())
        if d
    ]


def test_the_overlays_apply_the_generated_resources_unchanged() -> None:
    generated = _all_generated()
    for d in generated:
        d["metadata"]["namespace"] = NAMESPACE
    dev = [d for d in rendered("dev") if d["apiVersion"].startswith("dapr.io/")]
    assert sorted(dev, key=key) == sorted(generated, key=key)
    # full adds only the collector as the traces' exporter, to every Configuration.
    full = {key(d): d for d in rendered("full") if d["apiVersion"].startswith("dapr.io/")}
    configs = [d for d in generated if d["kind"] == "Configuration"]
    assert len(configs) == 1 + len(names.APP_IDS)
    for want in configs:
        config = copy.deepcopy(full[key(want)])
        otel = config["spec"]["tracing"].pop("otel")
        assert otel["endpointAddress"].startswith("otel-collector."), key(want)
        assert config == want


def test_each_service_gets_its_access_policy_and_secret_scopes() -> None:
    docs = {d["metadata"]["name"]: d for d in _all_generated() if d["kind"] == "Configuration"}
    base = docs[names.CONFIGURATION]
    assert "accessControl" not in base["spec"]
    for app_id in names.APP_IDS:
        spec = docs[f"{names.CONFIGURATION}-{app_id}"]["spec"]
        assert spec["tracing"] == base["spec"]["tracing"]
        assert spec["accessControl"]["defaultAction"] == "deny"
        callers = {p["appId"] for p in spec["accessControl"]["policies"]}
        assert callers == {g.caller for g in access.CALLERS[app_id]}
        assert {p["namespace"] for p in spec["accessControl"]["policies"]} == {NAMESPACE}
        (scope,) = spec["secrets"]["scopes"]
        assert scope["defaultAccess"] == "deny"
        assert scope["allowedSecrets"] == list(access.SECRETS[app_id])
    tool_callers = {
        p["appId"]: p
        for p in docs[f"{names.CONFIGURATION}-tool-mcp"]["spec"]["accessControl"]["policies"]
    }
    assert set(tool_callers) == {names.AGENT_RUNNER}
    # Each service's pod asks for its own Configuration.
    for d in rendered("dev"):
        if d["kind"] == "Deployment" and d["metadata"]["name"] in names.APP_IDS:
            annotations = d["spec"]["template"]["metadata"]["annotations"]
            assert annotations["dapr.io/config"] == f"{names.CONFIGURATION}-{d['metadata']['name']}"


def test_every_custom_resource_has_its_crd_schema() -> None:
    custom = {
        (d["apiVersion"], d["kind"])
        for d in rendered("full")
        if d["apiVersion"].split("/")[0] in ("dapr.io", "keda.sh")
    }
    assert {k for _, k in custom} >= {"Component", "Subscription", "Resiliency", "ScaledObject"}
    assert custom <= set(crd_validators()), custom - set(crd_validators())


def test_dapr_resources_validate_against_dapr_crds() -> None:
    docs = {
        (d["kind"], d["metadata"]["name"], str(d)): d
        for overlay in kind.OVERLAYS
        for d in rendered(overlay)
        if d["apiVersion"].startswith("dapr.io/")
    }
    problems = [
        f"{d['kind']}/{d['metadata']['name']}: {e.message} at {'.'.join(map(str, e.path))}"
        for d in docs.values()
        for e in crd_validators()[(d["apiVersion"], d["kind"])].iter_errors(d)
    ]
    assert not problems, (
        f"not fields of Dapr {DAPR_VERSION}'s CRDs (kubectl apply refuses them; "
        "daprd ignores them; fix components/ and run `agentia kind generate`):\n"
        + "\n".join(sorted(set(problems)))
    )


def test_a_misspelt_field_is_caught_by_the_crd_schemas() -> None:
    sub = next(d for d in rendered("dev") if d["kind"] == "Subscription")
    bad = copy.deepcopy(sub)
    bad["spec"]["deadLetterTopc"] = "x"
    validator = crd_validators()[(sub["apiVersion"], "Subscription")]
    assert validator.is_valid(sub) and not validator.is_valid(bad)


def _dapr_pods() -> list[tuple[str, Doc]]:
    return [
        (where, pod)
        for where, pod in pod_templates(rendered("full"))
        if pod["metadata"].get("annotations", {}).get("dapr.io/enabled") == "true"
    ]


def test_every_sidecar_annotation_is_one_the_injector_knows() -> None:
    known = dapr_annotations()
    assert "dapr.io/app-id" in known and len(known) > 40
    for where, pod in _dapr_pods():
        used = {k for k in pod["metadata"]["annotations"] if k.startswith("dapr.io/")}
        assert used <= known, f"{where}: {used - known}"


def test_sidecar_annotations_match_the_local_mesh() -> None:
    services = {}
    for where, pod in _dapr_pods():
        ann = pod["metadata"]["annotations"]
        app_id = ann["dapr.io/app-id"]
        own = f"{names.CONFIGURATION}-{app_id}" if app_id in names.APP_IDS else None
        assert ann["dapr.io/config"] == (own or names.CONFIGURATION), where
        assert ann["dapr.io/api-token-secret"] == names.SECRET_DAPR_API_TOKEN, where
        # The sidecar mounts the service account token volume of its own pod.
        volume, _, mount = ann["dapr.io/volume-mounts"].partition(":")
        assert volume in {v["name"] for v in pod["spec"]["volumes"]}, where
        assert mount == "/var/run/secrets/kubernetes.io/serviceaccount", where
        if where.startswith("Deployment/"):
            services[ann["dapr.io/app-id"]] = (where, ann)
    assert set(services) == set(names.APP_IDS)
    for app_id, (where, ann) in services.items():
        ports = names.PORTS[app_id]
        assert where == f"Deployment/{app_id}"
        assert ann["dapr.io/app-port"] == str(ports.app)
        assert ann["dapr.io/metrics-port"] == str(ports.dapr_metrics)
        assert ann["dapr.io/enable-metrics"] == "true"
        assert ann["dapr.io/app-protocol"] == "http"
        assert ann["dapr.io/app-token-secret"] == names.SECRET_APP_API_TOKEN
        assert ann["dapr.io/app-health-check-path"] == "/livez"
        for resource in ("cpu", "memory"):
            for bound in ("request", "limit"):
                assert ann[f"dapr.io/sidecar-{resource}-{bound}"], (app_id, resource, bound)


def test_the_drain_cronjob_runs_the_scheduler_drain_with_a_native_sidecar() -> None:
    cron = next(d for d in rendered("dev") if d["kind"] == "CronJob")
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]
    ann = pod["metadata"]["annotations"]
    assert pod["spec"]["containers"][0]["command"] == list(DRAIN_COMMAND)
    assert pod["spec"]["containers"][0]["image"].startswith(f"agentia/{names.SCHEDULER}:")
    assert ann["dapr.io/enable-native-sidecar"] == "true"  # the Job ends when the drain does
    assert ann["dapr.io/app-id"] == DRAIN_APP_ID and DRAIN_APP_ID not in names.APP_IDS
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"


def _leaves(tree: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(tree, dict) and tree:
        return [leaf for k, v in tree.items() for leaf in _leaves(v, (*path, k))]
    return [path]


def test_every_dapr_helm_value_exists_in_the_chart() -> None:
    ours = yaml.safe_load((kind_dir() / "dapr-values.yaml").read_text())
    chart = dapr_chart_values()
    for path in _leaves(ours):
        node: Any = chart
        for part in path:
            if node == {}:  # a free-form value the chart passes through (a selector)
                break
            assert isinstance(node, dict) and part in node, f"{'.'.join(path)} not in the chart"
            node = node[part]
    assert ours["global"]["mtls"]["enabled"] is True
    assert ours["dapr_placement"]["ha"] is True
    # Sidecars in the "restricted" namespace must drop every capability.
    assert ours["dapr_sidecar_injector"]["sidecarDropALLCapabilities"] is True
    # No mesh pod without its sidecar, and only the mesh's pods wait on the injector.
    injector = ours["dapr_sidecar_injector"]
    assert injector["webhookFailurePolicy"] == "Fail"
    selector = injector["objectSelector"]
    assert selector["matchLabels"] == PART_OF
    (wanted,) = selector["matchExpressions"]
    sidecar_components = {
        t["metadata"]["labels"]["app.kubernetes.io/component"]
        for _, t in pod_templates(rendered("full"))
        if t["metadata"].get("annotations", {}).get("dapr.io/enabled") == "true"
    }
    assert wanted["key"] == "app.kubernetes.io/component"
    assert set(wanted["values"]) == sidecar_components
    others = {
        t["metadata"]["labels"].get("app.kubernetes.io/component")
        for _, t in pod_templates(rendered("full"))
        if t["metadata"].get("annotations", {}).get("dapr.io/enabled") != "true"
    }
    assert not others & sidecar_components


def test_the_docs_name_the_pinned_versions() -> None:
    docs = (repo_root() / "docs" / "kubernetes.md").read_text()
    assert "DAPR_VERSION" in docs  # Dapr follows the local runtime, whatever its version
    assert kind.KIND_VERSION in docs and kind.KEDA_VERSION in docs
    assert kind.KUSTOMIZE_VERSION in docs
