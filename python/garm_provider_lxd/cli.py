"""Entry point: GARM's environment → one command; errors → one stderr line and an exit code."""

from __future__ import annotations

import io
import os
import sys

from . import __version__
from .errors import EXIT_ERROR, EXIT_OK, InputError, ProviderError
from .invocation import MAX_STDIN_BYTES, Streams, read_bootstrap, signals_as_exceptions, write

# Type-only imports: `typing` and `collections.abc` cost start-up time on every runner command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import IO, Any

    Handler = Callable[[Mapping[str, str], Any, str, "Streams"], bytes | None]

INTERFACE_VERSIONS = ("v0.1.0", "v0.1.1")
INSTANCE_COMMANDS = ("DeleteInstance", "GetInstance", "StartInstance", "StopInstance")


def main(
    argv: list[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    stdin: IO[bytes] | None = None,
    stdout: IO[bytes] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run one invocation and return its exit status."""
    args = sys.argv[1:] if argv is None else argv
    env = os.environ if environ is None else environ
    streams = Streams(
        stdin if stdin is not None else sys.stdin.buffer,
        stdout if stdout is not None else sys.stdout.buffer,
        stderr if stderr is not None else sys.stderr,
    )
    try:
        if args:
            from .admin.cli import run_operator

            return run_operator(args, streams)
        return run_garm_command(env, streams)
    except BaseException as exc:  # no traceback may ever reach GARM
        if isinstance(exc, SystemExit) and isinstance(exc.code, int):
            return exc.code
        code, message = _outcome(exc)
        report(streams.stderr, message)
        return code


def report(stderr: IO[str], message: str) -> None:
    """Write message to stderr as one line of bounded length, URLs without credentials."""
    from .messages import MAX_LINE, one_line

    prefix = "garm-provider-lxd: "
    try:
        stderr.write(f"{prefix}{one_line(message, MAX_LINE - len(prefix))}\n")
        stderr.flush()
    except (OSError, ValueError):
        pass


def run_garm_command(env: Mapping[str, str], streams: Streams) -> int:
    """Execute GARM_COMMAND as GARM's external-provider contract defines it."""
    command = env.get("GARM_COMMAND", "").strip()
    version = env.get("GARM_INTERFACE_VERSION", "").strip() or "v0.1.0"
    if version not in INTERFACE_VERSIONS:
        raise InputError(f"GARM_INTERFACE_VERSION {version!r} is not supported")
    if not command:
        raise InputError("GARM_COMMAND is not set")
    static = STATIC_COMMANDS.get(command)
    if static is not None:
        write(streams.stdout, static())
        return EXIT_OK
    handler = LXD_COMMANDS.get(command)
    if handler is None:
        raise InputError(f"unknown GARM_COMMAND {command!r}")
    controller_id = env.get("GARM_CONTROLLER_ID", "").strip()
    if not controller_id:
        raise InputError("GARM_CONTROLLER_ID is not set")
    if command in INSTANCE_COMMANDS and not env.get("GARM_INSTANCE_ID", "").strip():
        raise InputError("GARM_INSTANCE_ID is not set")
    from .config import load_config

    config = load_config(env.get("GARM_PROVIDER_CONFIG_FILE", "").strip())
    if not config.command_log:
        return _run_handler(handler, env, config, controller_id, streams)
    from .command_log import CommandRecord

    record = CommandRecord(config, env, command, version)
    warn = lambda message: report(streams.stderr, message)  # noqa: E731
    try:
        code = _run_handler(handler, env, config, controller_id, streams)
    except BaseException as exc:
        record.finish(*_outcome(exc), warn)
        raise
    record.finish(code, "", warn)
    return code


def _run_handler(
    handler: Handler, env: Mapping[str, str], config: Any, controller_id: str, streams: Streams
) -> int:
    output = handler(env, config, controller_id, streams)
    if output is not None:
        write(streams.stdout, output)
    return EXIT_OK


def _outcome(exc: BaseException) -> tuple[int, str]:
    """The exit code and error line main() turns an exception into."""
    if isinstance(exc, ProviderError):
        return exc.exit_code, str(exc) or type(exc).__name__
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_ERROR, "interrupted"
    return EXIT_ERROR, f"internal error: {type(exc).__name__}: {exc}"


def pool_extra_specs(env: Mapping[str, str]) -> object:
    """Decode GARM_POOL_EXTRASPECS (base64 JSON, v0.1.1); None when absent."""
    from ._native import json_loads
    from .specs import strict_b64decode

    raw = env.get("GARM_POOL_EXTRASPECS", "").strip()
    if not raw:
        return None
    data = strict_b64decode(raw)
    if data is not None:
        try:
            return json_loads(data)
        except ValueError:
            pass
    raise InputError("GARM_POOL_EXTRASPECS is not base64-encoded JSON")


# -- commands that need neither config nor LXD ------------------------------------------------


def _version() -> bytes:
    return f"v{__version__}".encode()


def _interface_versions() -> bytes:
    import json

    return json.dumps(list(INTERFACE_VERSIONS)).encode()


def _config_schema() -> bytes:
    import json

    from .config import config_schema

    return json.dumps(config_schema()).encode()


def _extra_specs_schema() -> bytes:
    import json

    from .specs import EXTRA_SPECS_SCHEMA

    return json.dumps(EXTRA_SPECS_SCHEMA).encode()


STATIC_COMMANDS: dict[str, Callable[[], bytes]] = {
    "GetVersion": _version,
    "GetSupportedInterfaceVersions": _interface_versions,
    "GetConfigJSONSchema": _config_schema,
    "GetExtraSpecsJSONSchema": _extra_specs_schema,
}


# -- commands that talk to LXD ----------------------------------------------------------------


def _provider(config: Any, controller_id: str, env: Mapping[str, str]) -> Any:
    """The provider for the pool GARM names in the environment (v0.1.1 passes its specs)."""
    from .provider import Provider
    from .specs import parse_extra_specs

    return Provider(config, controller_id, parse_extra_specs(pool_extra_specs(env)))


def _create(env: Mapping[str, str], config: Any, controller_id: str, streams: Streams) -> bytes:
    from .bootstrap import parse_bootstrap
    from .provider import Provider
    from .specs import parse_extra_specs
    from .userdata import build_user_data

    data = read_bootstrap(streams.stdin)
    if config.command_log:
        from .command_log import note_instance

        note_instance(data.get("name"), data.get("pool_id"))
    bootstrap = parse_bootstrap(data)
    # The bootstrap carries the pool's extra specs in both interface versions.
    specs = parse_extra_specs(data.get("extra_specs"))
    user_data = build_user_data(bootstrap, specs)
    provider = Provider(config, controller_id, specs)
    with signals_as_exceptions():
        result: bytes = provider.create_instance(bootstrap, user_data)
    return result


def _delete(env: Mapping[str, str], config: Any, controller_id: str, streams: Streams) -> None:
    provider = _provider(config, controller_id, env)
    if not config.postmortem_dir:
        provider.delete_instance(env["GARM_INSTANCE_ID"].strip())
        return
    from .postmortem import inspect_before_delete

    def before(lxd: Any, name: str, instance: dict[str, Any]) -> None:
        warn = lambda message: report(streams.stderr, message)  # noqa: E731
        inspect_before_delete(lxd, name, instance, config, warn)

    provider.delete_instance(env["GARM_INSTANCE_ID"].strip(), before)


def _get(env: Mapping[str, str], config: Any, controller_id: str, streams: Streams) -> bytes:
    result: bytes = _provider(config, controller_id, env).get_instance(
        env["GARM_INSTANCE_ID"].strip()
    )
    return result


def _list(env: Mapping[str, str], config: Any, controller_id: str, streams: Streams) -> bytes:
    pool_id = env.get("GARM_POOL_ID", "").strip()
    result: bytes = _provider(config, controller_id, env).list_instances(pool_id)
    return result


def _remove_all(env: Mapping[str, str], config: Any, controller_id: str, streams: Streams) -> None:
    _provider(config, controller_id, env).remove_all_instances()


def _start(env: Mapping[str, str], config: Any, controller_id: str, streams: Streams) -> None:
    _provider(config, controller_id, env).start_instance(env["GARM_INSTANCE_ID"].strip())


def _stop(env: Mapping[str, str], config: Any, controller_id: str, streams: Streams) -> None:
    _provider(config, controller_id, env).stop_instance(env["GARM_INSTANCE_ID"].strip())


def _validate_pool(
    env: Mapping[str, str], config: Any, controller_id: str, streams: Streams
) -> None:
    # GARM sends no stdin here; an operator may pass {"image": ..., "flavor": ...} to check those.
    data = streams.stdin.read(MAX_STDIN_BYTES + 1)
    pool = read_bootstrap(io.BytesIO(data)) if data.strip() else {}
    _provider(config, controller_id, env).validate_pool(
        image=str(pool.get("image") or ""),
        flavor=str(pool.get("flavor") or ""),
    )


LXD_COMMANDS: dict[str, Handler] = {
    "CreateInstance": _create,
    "DeleteInstance": _delete,
    "GetInstance": _get,
    "ListInstances": _list,
    "RemoveAllInstances": _remove_all,
    "StartInstance": _start,
    "StopInstance": _stop,
    "ValidatePoolInfo": _validate_pool,
}
