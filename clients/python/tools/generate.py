"""Generates the gRPC stubs of ``proto/`` into ``sessiond_client/_gen/`` (committed).

Run from anywhere with grpcio-tools installed (``requirements-dev.txt`` pins the one
whose output is committed)::

    python clients/python/tools/generate.py          # rewrite sessiond_client/_gen/
    python clients/python/tools/generate.py --check  # exit 1 if _gen/ differs from proto/

protoc writes imports of our own protos as top-level packages
(``from session.v1 import session_pb2``); they are rewritten into subpackages of
``sessiond_client._gen`` so nothing named ``session`` lands on ``sys.path``.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
PROTO_ROOT = HERE.parent.parent / "proto"
#: The folders of proto/ that are our contract (only ours: Envoy's protos, for the
#: server's reflection, are in third_party/).
CONTRACT = ("session",)
GEN = HERE / "sessiond_client" / "_gen"


def generate(out: Path) -> None:
    """Writes the stubs of every proto under PROTO_ROOT into ``out`` (an empty folder)."""
    import grpc_tools
    from grpc_tools import protoc

    protos = sorted(
        str(path.relative_to(PROTO_ROOT))
        for top in CONTRACT
        for path in (PROTO_ROOT / top).rglob("*.proto")
    )
    # google/protobuf/*.proto (timestamp.proto) ship inside grpc_tools.
    include = Path(grpc_tools.__file__).parent / "_proto"
    status = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{include}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            f"--pyi_out={out}",
            *protos,
        ]
    )
    if status != 0:
        sys.exit(f"generate.py: protoc failed ({status})")
    ours = re.compile(r"^(from|import) (%s)\." % "|".join(map(re.escape, CONTRACT)), re.M)
    for folder, _, files in os.walk(out):
        (Path(folder) / "__init__.py").touch()
        for name in files:
            if name.endswith((".py", ".pyi")):
                path = Path(folder) / name
                path.write_text(ours.sub(r"\1 sessiond_client._gen.\2.", path.read_text()))


def differences(left: Path, right: Path) -> list[str]:
    """Paths (relative) whose presence or content differs between two trees."""
    found: list[str] = []

    def walk(cmp: filecmp.dircmp[str], prefix: str) -> None:
        found.extend(prefix + n for n in cmp.left_only + cmp.right_only + cmp.diff_files)
        for name, sub in cmp.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    walk(filecmp.dircmp(left, right, ignore=["__pycache__"]), "")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "_gen"
        fresh.mkdir()
        generate(fresh)
        if args.check:
            stale = differences(GEN, fresh)
            if stale:
                sys.exit(
                    "sessiond_client/_gen/ does not match proto/ (run "
                    "clients/python/tools/generate.py): " + ", ".join(sorted(stale))
                )
            print("sessiond_client/_gen/ matches proto/")
            return
        shutil.rmtree(GEN, ignore_errors=True)
        shutil.copytree(fresh, GEN)


if __name__ == "__main__":
    main()
