"""The one build step besides setuptools' own: Prometheus' ``metrics.proto`` into Python.

The agent writes the Prometheus protobuf exposition (native histograms) with the
``io.prometheus.client`` messages. No maintained PyPI package carries them with native
histograms, so ``agent/proto/prometheus_metrics.proto`` (Prometheus' published schema,
from github.com/prometheus/client_model, Apache-2.0) is compiled here, at build time, with
grpcio-tools' protoc (a build requirement in pyproject.toml), into
``agent/_prometheus_metrics_pb2.py`` and its ``.pyi`` (git-ignored). Every install,
editable or not, runs it; all other configuration is in pyproject.toml.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
PROTO = ROOT / "agent" / "proto" / "prometheus_metrics.proto"
MODULE = "_prometheus_metrics_pb2"


def compile_proto(out_dir: Path = ROOT / "agent") -> None:
    """Run protoc on PROTO; writes ``MODULE.py`` and ``MODULE.pyi`` into ``out_dir``."""
    from importlib.resources import files

    from grpc_tools import protoc

    well_known = str(files("grpc_tools") / "_proto")  # google/protobuf/timestamp.proto
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "protoc",
            f"-I{PROTO.parent}",
            f"-I{well_known}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            str(PROTO),
        ]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed on {PROTO}")
        for suffix in (".py", ".pyi"):
            shutil.copyfile(Path(tmp) / f"{PROTO.stem}_pb2{suffix}", out_dir / f"{MODULE}{suffix}")


class BuildPy(build_py):
    """build_py that compiles the proto first (so that the copy includes its output)."""

    def run(self) -> None:
        compile_proto()
        super().run()


setup(cmdclass={"build_py": BuildPy})
