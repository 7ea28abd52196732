"""The ``bisenet`` command: one entry point for everything that is not the node.

Each package contributes its own subcommands through ``add_commands(subparsers)`` in its
``commands`` module, imported lazily so that ``bisenet train`` never imports ROS and a
Jetson without training dependencies can still run ``bisenet infer``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# subcommand -> module that defines it
COMMANDS = {
    "export": "bisenet_ros.export.commands",
    "infer": "bisenet_ros.inference.commands",
    "bench": "bisenet_ros.inference.commands",
    "train": "bisenet_ros.training.commands",
    "evaluate": "bisenet_ros.training.commands",
    "check-dataset": "bisenet_ros.training.commands",
    "node": "bisenet_ros.ros.commands",
    "demo": "bisenet_ros.ros.commands",
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bisenet", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = next((a for a in argv if a in COMMANDS), None)
    modules = [COMMANDS[wanted]] if wanted else sorted(set(COMMANDS.values()))
    for name in modules:
        try:
            importlib.import_module(name).add_commands(sub)
        except ImportError as error:  # e.g. no torch on a Jetson, no rclpy on a trainer
            if wanted:
                raise SystemExit(_missing(wanted, error)) from error
    return parser


def _missing(command: str, error: ImportError) -> str:
    why = f"needs {error.name}, which this Python cannot import ({error})"
    return f"bisenet {command}: error: {why}"


def main(argv: list[str] | None = None) -> int:
    """Run a subcommand. A mistake the user can fix from its message alone (a missing file,
    a bad value, a damaged model or config: ``OSError``/``ValueError``; a package the command
    needs and this Python lacks, or a runtime it cannot use: ``ImportError``) is one
    ``error:`` line and exit status 1; ``-v`` shows the traceback too. Ctrl-C is one line
    and status 130, as a shell reports it."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.run(args) or 0)
    except (OSError, ValueError, ImportError) as error:
        if args.verbose:
            raise
        if isinstance(error, ModuleNotFoundError):
            print(_missing(args.command, error), file=sys.stderr)
        else:
            print(f"bisenet {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if args.verbose:
            raise
        print(f"bisenet {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
