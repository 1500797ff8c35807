"""The ``berth`` command line.

Each command imports only what it needs (``berth failpoints`` never loads SQLAlchemy). Errors
print one line, ``Error: <message>``, and exit 1; never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

VERSION = "0.1.0"


def _failpoints(_args: argparse.Namespace) -> int:
    from engine.steps import failpoint_names

    print("\n".join(failpoint_names()))
    return 0


def _version(_args: argparse.Namespace) -> int:
    print(f"berth {VERSION}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from engine.demo import run_demo

    return run_demo(args.root)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="berth", description="A durable container engine.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    failpoints = commands.add_parser("failpoints", help="list every failpoint name")
    failpoints.set_defaults(handler=_failpoints)
    version = commands.add_parser("version", help="print the version")
    version.set_defaults(handler=_version)
    demo = commands.add_parser(
        "demo", help="run a failed and a successful start on the in-process fake runtime and "
        "print their history from SQL")
    demo.add_argument("--root", default=None,
                      help="data root (default: a new temporary directory)")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the one place that turns any error into one line
        from engine.errors import as_berth_error

        print(f"Error: {as_berth_error(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
