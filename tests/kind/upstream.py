"""Upstream sources the manifests are checked against, fetched as Go modules (offline once
cached): Dapr's Helm chart, CRDs and sidecar-injector annotations (github.com/dapr/dapr at
the local runtime's version, already in Go's module cache when the runtime was built),
KEDA's CRDs, and kind's config types and default node image. Never from the web.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from agentia_tools.kind import KEDA_VERSION, KIND_VERSION
from agentia_tools.runtime.daprbin import DAPR_VERSION

Doc = dict[str, Any]


@functools.cache
def go_module(path: str, version: str) -> Path:
    """The extracted source of a Go module (``go mod download``; cached by Go)."""
    if not shutil.which("go"):
        raise RuntimeError("Go is needed to fetch upstream schemas (it also builds Dapr)")
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            ["go", "mod", "download", "-json", f"{path}@{version}"],
            cwd=tmp,
            env={**os.environ, "GOFLAGS": "-mod=mod"},
            capture_output=True,
            text=True,
            check=False,
        )
    info = json.loads(proc.stdout) if proc.stdout.strip() else {}
    if proc.returncode != 0 or "Dir" not in info:
        raise RuntimeError(f"go mod download {path}@{version}: {info.get('Error') or proc.stderr}")
    return Path(info["Dir"])


def dapr_dir() -> Path:
    return go_module("github.com/dapr/dapr", f"v{DAPR_VERSION}")


def keda_dir() -> Path:
    return go_module("github.com/kedacore/keda/v2", f"v{KEDA_VERSION}")


def kind_source_dir() -> Path:
    return go_module("sigs.k8s.io/kind", KIND_VERSION)


def _strict(schema: Any) -> Any:
    """An OpenAPI v3 CRD schema made strict like kubectl's field validation: no unknown
    fields where the schema lists properties and does not preserve unknown fields."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def _crd_validators(files: list[Path]) -> dict[tuple[str, str], jsonschema.Draft4Validator]:
    out = {}
    for path in files:
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version.get("served"):
                    schema = _strict(version["schema"]["openAPIV3Schema"])
                    out[(f"{group}/{version['name']}", kind)] = jsonschema.Draft4Validator(schema)
    return out


@functools.cache
def crd_validators() -> dict[tuple[str, str], jsonschema.Draft4Validator]:
    """(apiVersion, kind) -> validator, for Dapr's and KEDA's custom resources."""
    dapr = sorted((dapr_dir() / "charts" / "dapr" / "crds").glob("*.yaml"))
    keda = sorted((keda_dir() / "config" / "crd" / "bases").glob("keda.sh_*.yaml"))
    return _crd_validators(dapr + keda)


@functools.cache
def dapr_annotations() -> frozenset[str]:
    """Every pod annotation Dapr's sidecar injector knows, from its source."""
    text = (dapr_dir() / "pkg" / "injector" / "annotations" / "annotations.go").read_text()
    return frozenset(re.findall(r'=\s*"(dapr\.io/[a-z0-9-]+)"', text))


def dapr_chart_values() -> dict[str, Any]:
    """The chart's values, each subchart's under its name (as a parent chart sets them)."""
    chart = dapr_dir() / "charts" / "dapr"
    values: dict[str, Any] = yaml.safe_load((chart / "values.yaml").read_text())
    for sub in sorted((chart / "charts").iterdir()):
        values[sub.name] = yaml.safe_load((sub / "values.yaml").read_text()) or {}
    return values


def kind_config_fields() -> frozenset[str]:
    """The YAML field names of kind's v1alpha4 cluster config."""
    text = (kind_source_dir() / "pkg" / "apis" / "config" / "v1alpha4" / "types.go").read_text()
    return frozenset(f for f in re.findall(r'yaml:"([A-Za-z0-9]*)[,"]', text) if f)


def kind_default_node_image() -> str:
    text = (kind_source_dir() / "pkg" / "apis" / "config" / "defaults" / "image.go").read_text()
    match = re.search(r'const Image = "([^"]+)"', text)
    assert match, "kind's default node image not found"
    return match.group(1)
