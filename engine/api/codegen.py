"""Regenerates the gRPC code of ``engine/api/v1/*.proto`` in place (``python -m
engine.api.codegen``), or into another directory for the staleness test."""

from __future__ import annotations

import pathlib
import sys

PROTO_DIR = pathlib.Path(__file__).resolve().parent / "v1"
REPOSITORY = PROTO_DIR.parents[2]


def generate(output: pathlib.Path = REPOSITORY) -> list[pathlib.Path]:
    """Run protoc on every .proto; return the generated files. Raises RuntimeError."""
    from grpc_tools import protoc

    protos = sorted(str(path.relative_to(REPOSITORY)) for path in PROTO_DIR.glob("*.proto"))
    include = str(pathlib.Path(protoc.__file__).parent / "_proto")
    arguments = ["protoc", f"-I{REPOSITORY}", f"-I{include}", f"--python_out={output}",
                 f"--grpc_python_out={output}", f"--pyi_out={output}", *protos]
    if protoc.main(arguments) != 0:
        raise RuntimeError(f"protoc failed: {' '.join(arguments)}")
    generated = output / "engine" / "api" / "v1"
    return sorted(generated.glob("*_pb2*.py*"))


if __name__ == "__main__":
    for path in generate():
        print(path)
    sys.exit(0)
