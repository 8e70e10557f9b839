"""Operator subcommands (`garm-provider-lxd userdata ...`); GARM never passes arguments."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from . import __version__
from .errors import EXIT_OK, InputError

if TYPE_CHECKING:
    from .cli import Streams


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that reports usage errors as InputError instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    """Return the operator command-line parser."""
    parser = _Parser(
        prog="garm-provider-lxd",
        description=(
            "LXD/Incus external provider for GARM. Run without arguments, GARM drives it "
            "through GARM_* environment variables; the subcommands below are for operators."
        ),
    )
    parser.add_argument("--version", action="version", version=f"garm-provider-lxd {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    userdata = commands.add_parser(
        "userdata",
        help="print the user data CreateInstance would attach, for a bootstrap JSON on stdin",
        description=(
            "Read a GARM BootstrapInstance JSON on stdin and print exactly the user data "
            "CreateInstance attaches to the instance. Does not contact LXD."
        ),
    )
    userdata.add_argument("--config", metavar="FILE", help="provider config file to validate")
    return parser


def run_operator(args: list[str], streams: Streams) -> int:
    """Run one operator subcommand."""
    parser = build_parser()
    try:
        options = parser.parse_args(args)
    except SystemExit as exc:  # --help and --version print and exit 0
        code = exc.code if isinstance(exc.code, int) else 0
        return code
    if options.command == "userdata":
        return _userdata(options, streams)
    raise InputError("a subcommand is required (see --help)")


def _userdata(options: argparse.Namespace, streams: Streams) -> int:
    from .cli import read_bootstrap, user_data_for, write
    from .config import load_config

    if options.config:
        load_config(options.config)
    write(streams.stdout, user_data_for(read_bootstrap(streams.stdin)))
    return EXIT_OK
