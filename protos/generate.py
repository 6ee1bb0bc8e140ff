"""Regenerate ``inference_server/grpc/_generated/`` from the ``.proto`` files in this folder.

Usage::

    python protos/generate.py          # rewrite the generated code
    python protos/generate.py --check  # exit 1 if the generated code is out of date

protoc writes absolute imports between generated modules (``import model_config_pb2``); they
are rewritten to relative ones so the code lives inside the ``inference_server.grpc``
package. The generated files are never edited by hand (ruff and mypy skip them).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

PROTOS = Path(__file__).resolve().parent
TARGET = PROTOS.parent / "inference_server" / "grpc" / "_generated"
FILES = ["model_config.proto", "grpc_service.proto", "modelyard_admin.proto"]
HEADER = '"""Generated from protos/*.proto by protos/generate.py; do not edit."""\n'
_IMPORT = re.compile(r"^import (\w+_pb2) as ", re.MULTILINE)


def generate(out: Path) -> None:
    """Run protoc into ``out`` and make its imports package-relative."""
    out.mkdir(parents=True, exist_ok=True)
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *[str(PROTOS / f) for f in FILES],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for path in out.glob("*_pb2*.py*"):
        path.write_text(_IMPORT.sub(r"from . import \1 as ", path.read_text()))
    (out / "__init__.py").write_text(HEADER)


def _snapshot(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.glob("*.py*")) if p.is_file()}


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if out of date")
    args = parser.parse_args()
    if not args.check:
        generate(TARGET)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh = _snapshot(Path(tmp))
    if fresh != _snapshot(TARGET):
        print("inference_server/grpc/_generated is out of date: run protos/generate.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
