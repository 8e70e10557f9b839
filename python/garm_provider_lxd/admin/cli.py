"""Operator subcommands (`garm-provider-lxd userdata ...`); GARM never passes arguments."""

from __future__ import annotations

import argparse
from typing import IO, TYPE_CHECKING

from .. import __version__
from ..errors import EXIT_OK, InputError

if TYPE_CHECKING:
    from ..invocation import Streams
    from ..specs import ExtraSpecs


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that reports usage errors as InputError instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    """Return the operator command-line parser."""
    from .setup import COW_DRIVERS

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
    userdata.add_argument(
        "--config", metavar="FILE",
        help="also load and validate this provider config file (the user data does not depend "
        "on it: it comes from the bootstrap and its extra_specs alone)",
    )  # fmt: skip
    userdata.add_argument(
        "--install-script", action="store_true",
        help="print the runner install script the user data carries (base64 in write_files), "
        "decoded, instead of the whole user data",
    )  # fmt: skip

    check = commands.add_parser(
        "check",
        help="verify a config against its LXD server",
        description=(
            "Verify connectivity, authentication, server version and API extensions, the "
            "project, profiles and image of a config, and print what CreateInstance would "
            "send for a sample pool. Exit 1 when any check fails."
        ),
    )
    check.add_argument("--config", metavar="FILE", required=True, help="provider config file")
    check.add_argument("--image", default="", help="a pool image to check (alias or remote:alias)")
    check.add_argument("--flavor", default="default", help="a pool flavor (profile) to check")
    check.add_argument(
        "--extra-specs",
        metavar="FILE",
        default="",
        help="a pool's extra specs (JSON) to check against the pool policy and the server",
    )

    setup = commands.add_parser(
        "setup",
        help="create an isolated project, bridge, egress ACL and runner profile",
        description=(
            "Bring the server to a runner-ready state: the config's project (when not "
            "default), a NAT bridge whose ACL rejects traffic to private and link-local "
            "ranges (the host and the LAN), and a runner profile on that bridge, with its root "
            "disk on --storage-pool (created copy-on-write with --storage-driver). Shows the "
            "plan; changes nothing unless --apply is given. Idempotent."
        ),
    )
    setup.add_argument("--config", metavar="FILE", required=True, help="provider config file")
    setup.add_argument("--apply", action="store_true", help="make the planned changes")
    setup.add_argument(
        "--network", default="garm-runners", help="bridge name (default garm-runners)"
    )
    setup.add_argument(
        "--subnet", default="10.210.0.1/24", help="bridge address/prefix (default 10.210.0.1/24)"
    )
    setup.add_argument("--acl", default="garm-runners", help="network ACL name")
    setup.add_argument("--profile", default="garm-runner", help="runner profile name")
    setup.add_argument(
        "--storage-pool", default="default", metavar="NAME",
        help="storage pool of the runners' root disks (default: default)",
    )  # fmt: skip
    setup.add_argument(
        "--storage-driver", choices=COW_DRIVERS, default="",
        help="create --storage-pool, when missing, as a loop-backed copy-on-write pool "
        "with this driver (lvm: thin)",
    )  # fmt: skip
    setup.add_argument(
        "--storage-size", default="", metavar="SIZE",
        help="size of that pool's loop file, e.g. 30GiB (default: LXD's, 5 to 30 GiB)",
    )  # fmt: skip
    setup.add_argument(
        "--nesting", action="store_true", help="allow nested containers (docker in runners)"
    )
    _add_image_parser(commands)
    _add_runner_parsers(commands)
    _add_examples(commands)
    return parser


CONFIG = "/etc/garm/garm-provider-lxd.toml"
RUNNER_URL = (
    "https://github.com/actions/runner/releases/download/v2.321.0/"
    "actions-runner-linux-x64-2.321.0.tar.gz"
)
# Shown after each subcommand's options (--help), verbatim.
EXAMPLES = {
    "userdata": f"""\
where the bootstrap JSON comes from:
  GARM writes one to the provider's stdin on every CreateInstance (BootstrapInstance: name,
  tools, repo_url, callback-url, metadata-url, instance-token, extra_specs, ...). Samples:
  testdata/conformance/cases/*.json in the source tree; put a pool's extra specs under its
  "extra_specs" key to see what that pool's runners get.

examples:
  garm-provider-lxd userdata < testdata/conformance/cases/c01_minimal_jit.json
  garm-provider-lxd userdata --install-script < bootstrap.json     # the install script, decoded
  garm-provider-lxd userdata --config {CONFIG} < bootstrap.json""",
    "check": f"""\
examples:
  garm-provider-lxd check --config {CONFIG}
  garm-provider-lxd check --config {CONFIG} --image ubuntu:24.04 \\
      --flavor garm-runner --extra-specs pool-specs.json""",
    "setup": f"""\
examples:
  garm-provider-lxd setup --config {CONFIG}              # the plan, changes nothing
  garm-provider-lxd setup --config {CONFIG} --apply      # make it so
  garm-provider-lxd setup --config {CONFIG} --storage-pool garm-runners \\
      --storage-driver btrfs --storage-size 30GiB --apply
setup changes only objects it created (see docs/security.md, "Existing objects").""",
    "image": f"""\
example:
  garm-provider-lxd image build --config {CONFIG} \\
      --from ubuntu:24.04 --alias garm-runner-noble \\
      --runner-url {RUNNER_URL} \\
      --runner-sha256 <the SHA-256 the release page lists>
(ubuntu: an image_remotes entry of the config; see docs/runner-images.md)""",
    "status": f"""\
examples:
  garm-provider-lxd status --config {CONFIG}
  garm-provider-lxd status --config {CONFIG} --controller-id <controller id> --json
(GARM's controller id: `garm-cli controller show`)""",
    "logs": f"""\
examples:
  garm-provider-lxd logs --config {CONFIG} garm-abc123def456
  garm-provider-lxd logs --config {CONFIG} garm-abc123def456 --lines 400""",
    "prune": f"""\
examples:
  garm-provider-lxd prune --config {CONFIG} --controller-id <controller id>   # the plan
  garm-provider-lxd prune --config {CONFIG} --controller-id <controller id> \\
      --older-than 2h --apply""",
    "stats": f"""\
examples:
  garm-provider-lxd stats --config {CONFIG} --since 1h
  garm-provider-lxd stats --config {CONFIG} --pool <pool id> --html /tmp/garm-stats.html
  garm-provider-lxd stats --config {CONFIG} --prometheus     # a node_exporter textfile
(needs [diagnostics] command_log in the config; see docs/operating-runners.md)""",
}


def _add_examples(commands: argparse._SubParsersAction[_Parser]) -> None:
    """Put EXAMPLES under each subcommand's --help (`image build` shares image's)."""
    for name, parser in commands.choices.items():
        parsers = [parser]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers += action.choices.values()
        for each in parsers:
            each.epilog = EXAMPLES[name]
            each.formatter_class = argparse.RawDescriptionHelpFormatter


def _add_runner_parsers(commands: argparse._SubParsersAction[_Parser]) -> None:
    status = commands.add_parser(
        "status",
        help="list the provider's runner instances and flag stuck or leaked ones",
        description=(
            "List every instance the provider tagged, in the config's project and the projects "
            "of [pool_policy] allow_projects: name, controller, pool, status, age, IPv4, "
            "image, cluster member, and a summary. Flags runners not running for over 30 "
            "minutes, running without an address for over 10 minutes, and (with "
            "--all-controllers) those of other controllers. See docs/operating-runners.md."
        ),
    )
    status.add_argument("--config", metavar="FILE", required=True, help="provider config file")
    status.add_argument("--controller-id", default="", metavar="ID", help="only this controller")
    status.add_argument("--pool-id", default="", metavar="ID", help="only this pool")
    status.add_argument(
        "--all-controllers", action="store_true",
        help="list every controller's runners, flagging those not of --controller-id",
    )  # fmt: skip
    status.add_argument("--json", action="store_true", help="print one JSON list")

    logs = commands.add_parser(
        "logs",
        help="print a runner's install status, cloud-init output and console log",
        description=(
            "Print the install script's status lines and the end of "
            "/var/log/cloud-init-output.log of a runner instance (over LXD's SFTP endpoint), "
            "and its console log where the server keeps one. Only instances the provider "
            "tagged; output is bounded and control characters are escaped. When the instance "
            "is gone, prints the newest post-mortem DeleteInstance saved of it "
            "([diagnostics] postmortem_dir)."
        ),
    )
    logs.add_argument("--config", metavar="FILE", required=True, help="provider config file")
    logs.add_argument("name", metavar="NAME", help="the runner instance")
    logs.add_argument(
        "--lines", type=int, default=100, metavar="N", help="lines of each log (default 100)"
    )

    stats = commands.add_parser(
        "stats",
        help="counts, failures and latencies of GARM commands, from the command record",
        description=(
            "Read the [diagnostics] command_log (and its rotated copies) and print, per "
            "command and pool, how many ran, how many failed and why (most common first), and "
            "p50/p90/p99 wall times. See docs/operating-runners.md."
        ),
    )
    stats.add_argument("--config", metavar="FILE", required=True, help="provider config file")
    stats.add_argument(
        "--since", default="", metavar="DURATION", help="only the last DURATION, e.g. 1h, 7d"
    )
    stats.add_argument("--pool", default="", metavar="ID", help="only this pool")
    output = stats.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print one JSON object")
    output.add_argument(
        "--prometheus", action="store_true", help="print node_exporter textfile metrics"
    )
    stats.add_argument(
        "--html", default="", metavar="FILE", help="also write a report with charts to FILE"
    )

    prune = commands.add_parser(
        "prune",
        help="delete a controller's runners that are not running and older than a threshold",
        description=(
            "Delete the runner instances of one GARM controller that are stopped, in error or "
            "frozen and older than --older-than. Shows the plan; changes nothing unless "
            "--apply is given. Never touches running instances, other controllers' or "
            "untagged ones."
        ),
    )
    prune.add_argument("--config", metavar="FILE", required=True, help="provider config file")
    prune.add_argument("--controller-id", required=True, metavar="ID", help="the controller")
    prune.add_argument(
        "--older-than", default="30m", metavar="DURATION",
        help="minimum age, e.g. 90s, 30m, 2h, 1d (default 30m)",
    )  # fmt: skip
    prune.add_argument("--apply", action="store_true", help="delete what the plan shows")


def _add_image_parser(commands: argparse._SubParsersAction[_Parser]) -> None:
    image = commands.add_parser(
        "image",
        help="build runner images",
        description="Build images with the actions runner baked in.",
    )
    image_commands = image.add_subparsers(
        dest="image_command", metavar="IMAGE_COMMAND", parser_class=_Parser, required=True
    )
    build = image_commands.add_parser(
        "build",
        help="bake the actions runner into an image and publish it under an alias",
        description=(
            "Launch a builder from --from, download (and verify) the runner tarball into "
            "/home/runner/actions-runner, install its dependencies and extra packages, reset "
            "cloud-init, publish the builder as an image under --alias and delete it. Progress "
            "goes to stderr, one JSON object to stdout. See docs/runner-images.md."
        ),
    )
    build.add_argument("--config", metavar="FILE", required=True, help="provider config file")
    build.add_argument(
        "--from", dest="base", metavar="IMAGE", required=True,
        help="base image: alias, fingerprint or remote:alias (needs cloud-init)",
    )  # fmt: skip
    build.add_argument("--alias", required=True, help="alias to publish (moved if it exists)")
    build.add_argument("--runner-url", metavar="URL", required=True, help="runner tarball URL")
    build.add_argument(
        "--runner-sha256", metavar="HEX", default="",
        help="the tarball's SHA-256 (required, unless --insecure-skip-runner-checksum)",
    )  # fmt: skip
    build.add_argument(
        "--insecure-skip-runner-checksum", action="store_true",
        help="publish an https:// download without checking it (never for http://)",
    )  # fmt: skip
    build.add_argument(
        "--package", dest="packages", metavar="NAME", action="append", default=[],
        help="extra package to install (repeatable)",
    )  # fmt: skip
    build.add_argument("--profile", default="default", help="profile of the builder instance")
    build.add_argument(
        "--timeout", type=float, default=1800.0, metavar="SECONDS",
        help="give up when the builder has not finished after this long (default 1800)",
    )  # fmt: skip
    build.add_argument(
        "--cleanup-timeout", type=float, default=120.0, metavar="SECONDS",
        help="give up deleting the builder after this long, naming it (default 120)",
    )  # fmt: skip
    build.add_argument(
        "--compression", default="", metavar="ALGORITHM",
        help="image compression (e.g. none, gzip, zstd; default: the server's setting)",
    )  # fmt: skip
    build.add_argument(
        "--delete-previous", action="store_true",
        help="delete the image the alias pointed at once the new one is published",
    )  # fmt: skip


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
    if options.command == "check":
        from ..config import load_config
        from .check import run_check

        config = load_config(options.config)
        specs = _read_extra_specs(options.extra_specs) if options.extra_specs else None
        return run_check(
            config, _text(streams), image=options.image, flavor=options.flavor, specs=specs
        )
    if options.command == "setup":
        from ..config import load_config
        from .setup import SetupOptions, run_setup

        wanted = SetupOptions(
            network=options.network,
            subnet=options.subnet,
            acl=options.acl,
            profile=options.profile,
            storage_pool=options.storage_pool,
            nesting=options.nesting,
            storage_driver=options.storage_driver,
            storage_size=options.storage_size,
        )
        return run_setup(load_config(options.config), wanted, _text(streams), apply=options.apply)
    if options.command == "image":
        from ..config import load_config
        from .image_build import BuildOptions, run_image_build

        wanted_image = BuildOptions(
            base=options.base,
            alias=options.alias,
            runner_url=options.runner_url,
            runner_sha256=options.runner_sha256,
            insecure_skip_runner_checksum=options.insecure_skip_runner_checksum,
            packages=tuple(options.packages),
            profile=options.profile,
            timeout=options.timeout,
            delete_previous=options.delete_previous,
            compression=options.compression,
            cleanup_timeout=options.cleanup_timeout,
        )
        from ..invocation import signals_as_exceptions

        # SIGTERM, like Ctrl-C, must still delete the builder on the way out.
        with signals_as_exceptions():
            return run_image_build(
                load_config(options.config), wanted_image, _text(streams), streams.stderr
            )
    if options.command in ("status", "logs", "prune"):
        return _runner_command(options, streams)
    if options.command == "stats":
        from ..config import load_config
        from .stats import run_stats

        return run_stats(
            load_config(options.config),
            _text(streams),
            since=options.since,
            pool=options.pool,
            as_json=options.json,
            prometheus=options.prometheus,
            html=options.html,
        )
    raise InputError("a subcommand is required (see --help)")


def _runner_command(options: argparse.Namespace, streams: Streams) -> int:
    """status, logs and prune (their modules import pylxd: loaded only here)."""
    from ..config import load_config

    config = load_config(options.config)
    if options.command == "status":
        from .status import run_status

        return run_status(
            config,
            _text(streams),
            controller_id=options.controller_id,
            pool_id=options.pool_id,
            all_controllers=options.all_controllers,
            as_json=options.json,
        )
    if options.command == "logs":
        from .logs import run_logs

        return run_logs(config, _text(streams), name=options.name, lines=options.lines)
    from .prune import run_prune

    return run_prune(
        config,
        _text(streams),
        controller_id=options.controller_id,
        older_than=options.older_than,
        apply=options.apply,
    )


def _text(streams: Streams) -> IO[str]:
    """A text view of the binary stdout, for human-readable reports."""
    import io

    return io.TextIOWrapper(streams.stdout, encoding="utf-8", write_through=True)


def _userdata(options: argparse.Namespace, streams: Streams) -> int:
    from ..config import load_config
    from ..invocation import read_bootstrap, write
    from ..userdata import user_data_for

    if options.config:
        load_config(options.config)
    bootstrap = read_bootstrap(streams.stdin)
    if options.install_script:
        from ..userdata import install_script_for

        write(streams.stdout, install_script_for(bootstrap))
    else:
        write(streams.stdout, user_data_for(bootstrap))
    return EXIT_OK


def _read_extra_specs(path: str) -> ExtraSpecs:
    """Read a pool's extra specs from a JSON file, as GARM would pass them."""
    from .._native import json_loads
    from ..files import read_regular_file
    from ..invocation import MAX_STDIN_BYTES
    from ..specs import parse_extra_specs

    # A pool admin's file: the config files' rule (regular file, bounded), not a bare open().
    data = read_regular_file(path, f"extra specs {path}", MAX_STDIN_BYTES)
    try:
        raw = json_loads(data)
    except ValueError as exc:
        raise InputError(f"extra specs {path}: invalid JSON: {exc}") from None
    return parse_extra_specs(raw)
