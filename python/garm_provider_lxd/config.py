"""The provider config file: the Go provider's TOML keys, validated into a frozen Config."""

from __future__ import annotations

from .errors import ConfigError
from .record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

INSTANCE_TYPES = ("container", "virtual-machine")
REMOTE_PROTOCOLS = ("simplestreams",)


# Records rather than dataclasses: `dataclasses` imports `inspect` and `typing`, a start-up cost
# paid on every runner create and delete (see record.py).
class ImageRemote(Record):
    """A simplestreams image server the LXD daemon pulls images from."""

    addr: str
    public: bool = True
    protocol: str = "simplestreams"
    skip_verify: bool = False


class PoolPolicy(Record):
    """What the operator lets pool extra specs do beyond the safe defaults (deny by default)."""

    allow_config: tuple[str, ...] = ()  # glob patterns of instance config keys
    allow_device_types: tuple[str, ...] = ()  # LXD device types
    allow_projects: tuple[str, ...] = ()  # LXD projects besides project_name


class Config(Record):
    """Validated provider configuration."""

    unix_socket_path: str = ""
    url: str = ""
    client_certificate: str = ""
    client_key: str = ""
    tls_server_certificate: str = ""
    tls_ca: str = ""
    project_name: str = ""
    include_default_profile: bool = False
    instance_type: str = "container"
    secure_boot: bool = False
    image_remotes: Mapping[str, ImageRemote] = {}  # never mutated
    pool_policy: PoolPolicy = PoolPolicy()
    # Keys below are this provider's own; the Go provider ignores unknown keys, so a
    # config carrying them still loads there.
    address_wait_seconds: float = 10.0
    request_timeout_seconds: float = 30.0
    operation_timeout_seconds: float = 600.0


def load_config(path: str) -> Config:
    """Read and validate the TOML config file at path."""
    from .files import MAX_CONFIG_BYTES, read_regular_file

    if not path:
        raise ConfigError("GARM_PROVIDER_CONFIG_FILE is not set")
    return parse_config(read_regular_file(path, f"config {path}", MAX_CONFIG_BYTES), source=path)


def parse_config(raw: bytes, *, source: str = "config") -> Config:
    """Parse TOML bytes into a validated Config."""
    # The extension parses TOML: `tomllib` would import `re`, `datetime` and `typing`.
    from ._native import toml_loads

    try:
        data = toml_loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"config {source}: not UTF-8 text") from None
    except ValueError as exc:
        raise ConfigError(f"config {source}: invalid TOML: {exc}") from None
    return _validate(data, source)


def _get(data: Mapping[str, Any], key: str, kind: type, default: Any, source: str) -> Any:
    value = data.get(key, default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        expected = {str: "a string", bool: "a boolean", float: "a number"}[kind]
        raise ConfigError(f"config {source}: {key}: must be {expected}")
    return value


def _validate(data: Mapping[str, Any], source: str) -> Config:
    def text(key: str) -> str:
        return str(_get(data, key, str, "", source)).strip()

    def flag(key: str) -> bool:
        return bool(_get(data, key, bool, False, source))

    def seconds(key: str, default: float) -> float:
        value = float(_get(data, key, float, default, source))
        if not 0 <= value <= 86400:
            raise ConfigError(f"config {source}: {key}: must be between 0 and 86400")
        return value

    config = Config(
        unix_socket_path=text("unix_socket_path"),
        url=text("url"),
        client_certificate=text("client_certificate"),
        client_key=text("client_key"),
        tls_server_certificate=text("tls_server_certificate"),
        tls_ca=text("tls_ca"),
        project_name=text("project_name"),
        include_default_profile=flag("include_default_profile"),
        instance_type=text("instance_type") or "container",
        secure_boot=flag("secure_boot"),
        image_remotes=_image_remotes(data.get("image_remotes", {}), source),
        pool_policy=_pool_policy(data.get("pool_policy", {}), source),
        address_wait_seconds=seconds("address_wait_seconds", 10.0),
        request_timeout_seconds=seconds("request_timeout_seconds", 30.0),
        operation_timeout_seconds=seconds("operation_timeout_seconds", 600.0),
    )
    if config.instance_type not in INSTANCE_TYPES:
        raise ConfigError(
            f"config {source}: instance_type: must be one of {', '.join(INSTANCE_TYPES)}, "
            f"not {config.instance_type!r}"
        )
    _validate_endpoint(config, source)
    return config


def _validate_endpoint(config: Config, source: str) -> None:
    if config.unix_socket_path:
        return
    if not config.url:
        raise ConfigError(f"config {source}: one of unix_socket_path or url must be set")
    scheme, _, rest = config.url.partition("://")
    if scheme != "https" or not rest or rest.startswith("/"):
        from .messages import redact_url

        # Without "://" nothing marks where user information ends: show none of it.
        shown = f", not {redact_url(config.url)!r}" if "://" in config.url else ""
        raise ConfigError(f"config {source}: url: must be an https:// URL{shown}")
    if not config.client_certificate or not config.client_key:
        raise ConfigError(
            f"config {source}: client_certificate and client_key are required with url"
        )


def _image_remotes(value: object, source: str) -> dict[str, ImageRemote]:
    if not isinstance(value, dict):
        raise ConfigError(f"config {source}: image_remotes: must be a table")
    remotes: dict[str, ImageRemote] = {}
    for name, entry in value.items():
        key = f"image_remotes.{name}"
        if not isinstance(entry, dict):
            raise ConfigError(f"config {source}: {key}: must be a table")
        addr = _get(entry, "addr", str, "", f"{source}: {key}")
        scheme = addr.partition("://")[0]
        if scheme not in ("http", "https"):
            raise ConfigError(f"config {source}: {key}.addr: must be an http(s) URL")
        protocol = _get(entry, "protocol", str, "simplestreams", f"{source}: {key}")
        if protocol not in REMOTE_PROTOCOLS:
            raise ConfigError(f"config {source}: {key}.protocol: {protocol!r} is not supported")
        remotes[name] = ImageRemote(
            addr=addr,
            public=_get(entry, "public", bool, True, f"{source}: {key}"),
            protocol=protocol,
            skip_verify=_get(entry, "skip_verify", bool, False, f"{source}: {key}"),
        )
    return remotes


_POOL_POLICY_KEYS = ("allow_config", "allow_device_types", "allow_projects")


def _pool_policy(value: object, source: str) -> PoolPolicy:
    # Unlike the rest of the file, unknown keys here are refused: a misspelt allowance must not
    # silently leave a pool without the access its operator meant to give.
    if not isinstance(value, dict):
        raise ConfigError(f"config {source}: pool_policy: must be a table")
    unknown = sorted(set(value) - set(_POOL_POLICY_KEYS))
    if unknown:
        raise ConfigError(
            f"config {source}: pool_policy: unknown key {unknown[0]!r} "
            f"(expected {', '.join(_POOL_POLICY_KEYS)})"
        )
    lists: dict[str, tuple[str, ...]] = {}
    for key in _POOL_POLICY_KEYS:
        items = value.get(key, [])
        if not isinstance(items, list) or not all(
            isinstance(item, str) and item.strip() for item in items
        ):
            raise ConfigError(
                f"config {source}: pool_policy.{key}: must be a list of non-empty strings"
            )
        lists[key] = tuple(item.strip() for item in items)
    return PoolPolicy(**lists)


def instance_projects(config: Config) -> tuple[str, ...]:
    """The projects runners may live in: project_name first, then pool_policy.allow_projects."""
    projects = [config.project_name]
    seen = {config.project_name or "default"}  # an empty project_name is the default project
    for project in config.pool_policy.allow_projects:
        if project not in seen:
            seen.add(project)
            projects.append(project)
    return tuple(projects)
