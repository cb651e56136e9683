"""Command line: `python -m cnn_lab {train,transfer,bench} ...`, the same core as the pages, headless."""
from __future__ import annotations

import argparse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cnn_lab", description=__doc__)
    parser.add_subparsers(dest="command", metavar="{}")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command is None:
        build_parser().print_help()
        return 0
    return args.handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
