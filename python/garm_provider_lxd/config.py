"""The provider config file: the Go provider's TOML keys, validated into a frozen Config."""

from __future__ import annotations

from .errors import ConfigError
from .record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
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
    request_timeout_seconds: float = 45.0
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


class ConfigKey(Record):
    """One plain top-level key of the config file: its JSON type, default and meaning."""

    name: str
    kind: str  # "string", "boolean" or "seconds" (a number from 0 to 86400)
    default: object
    description: str
    choices: tuple[str, ...] = ()


# The one table of the file's plain keys: _validate reads the file with it, config_schema()
# publishes it. Strings are stripped; an empty instance_type means the default.
CONFIG_KEYS: tuple[ConfigKey, ...] = (
    ConfigKey("unix_socket_path", "string", "", "Path of the LXD unix socket."),
    ConfigKey("url", "string", "", "https:// URL of a remote LXD server."),
    ConfigKey("client_certificate", "string", "", "PEM client certificate file."),
    ConfigKey("client_key", "string", "", "PEM client key file."),
    ConfigKey("tls_server_certificate", "string", "", "Pinned PEM server certificate."),
    ConfigKey("tls_ca", "string", "", "PEM CA that signed the server certificate."),
    ConfigKey("project_name", "string", "", "LXD project for runner instances."),
    ConfigKey("include_default_profile", "boolean", False, "Prepend the default profile."),
    ConfigKey(
        "instance_type", "string", "container", "Container or virtual machine.", INSTANCE_TYPES
    ),
    ConfigKey("secure_boot", "boolean", False, "UEFI secure boot for virtual machines."),
    ConfigKey(
        "address_wait_seconds",
        "seconds",
        10.0,
        "How long CreateInstance waits for an IPv4 address (default 10).",
    ),
    ConfigKey(
        "request_timeout_seconds", "seconds", 45.0, "Deadline of one LXD request (default 45)."
    ),
    ConfigKey(
        "operation_timeout_seconds",
        "seconds",
        600.0,
        "Deadline of one LXD operation such as an image pull (default 600).",
    ),
)
MAX_SECONDS = 86400
_EXPECTED = {"string": "a string", "boolean": "a boolean", "seconds": "a number"}


def _read_key(data: Mapping[str, Any], key: ConfigKey, source: str) -> Any:
    value = data.get(key.name, key.default)
    if key.kind == "seconds" and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    kind = {"string": str, "boolean": bool, "seconds": float}[key.kind]
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ConfigError(f"config {source}: {key.name}: must be {_EXPECTED[key.kind]}")
    if isinstance(value, str):
        value = value.strip() or key.default
        if key.choices and value not in key.choices:
            raise ConfigError(
                f"config {source}: {key.name}: must be one of {', '.join(key.choices)}, "
                f"not {value!r}"
            )
    if isinstance(value, float) and not 0 <= value <= MAX_SECONDS:
        raise ConfigError(f"config {source}: {key.name}: must be between 0 and {MAX_SECONDS}")
    return value


def _validate(data: Mapping[str, Any], source: str) -> Config:
    values: dict[str, Any] = {key.name: _read_key(data, key, source) for key in CONFIG_KEYS}
    config = Config(
        **values,
        image_remotes=_image_remotes(data.get("image_remotes", {}), source),
        pool_policy=_pool_policy(data.get("pool_policy", {}), source),
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


# -- image servers: the config's [image_remotes.<name>] and a pool's image_remote spec -------

IMAGE_REMOTE_KEYS = ("addr", "protocol", "public", "skip_verify")
_URL_HOST_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%!$&'()*+,;=:@[]"
)
# The same rule as http_url_problem, for the JSON schemas: a host of URL authority characters,
# then nothing or a path of printable ASCII.
HTTP_URL_PATTERN = r"^https?://[A-Za-z0-9._~%!$&'()*+,;=:@\[\]-]+(/[!-~]*)?$"


def http_url_problem(addr: str) -> str:
    """Why addr is not an http(s) URL with a host ("" when it is one)."""
    scheme, sep, rest = addr.partition("://")
    host, _, path = rest.partition("/")
    if (
        scheme not in ("http", "https")
        or not sep
        or not host
        or not _URL_HOST_CHARS.issuperset(host)
        or not all("!" <= char <= "~" for char in path)
    ):
        return "expected an http(s) URL with a host and no spaces or control characters"
    return ""


def parse_image_remote(
    entry: Mapping[str, Any], fail: Callable[[str, str], Exception]
) -> ImageRemote:
    """Validate one image server table; fail(key, problem) makes the error to raise."""

    def typed(key: str, kind: type, expected: str, default: object) -> Any:
        value = entry.get(key, default)
        if not isinstance(value, kind):
            raise fail(key, f"expected {expected}")
        return value

    addr = typed("addr", str, "a string", None)
    problem = http_url_problem(addr)
    if problem:
        raise fail("addr", problem)
    protocol = typed("protocol", str, "a string", "simplestreams")
    if protocol not in REMOTE_PROTOCOLS:
        raise fail("protocol", f"only {', '.join(REMOTE_PROTOCOLS)} is supported")
    return ImageRemote(
        addr=addr,
        protocol=protocol,
        public=typed("public", bool, "a boolean", True),
        skip_verify=typed("skip_verify", bool, "a boolean", False),
    )


def image_remote_schema() -> dict[str, Any]:
    """The JSON schema of one image server table (parse_image_remote's rules)."""
    return {
        "type": "object",
        "properties": {
            "addr": {"type": "string", "pattern": HTTP_URL_PATTERN},
            "protocol": {"type": "string", "enum": list(REMOTE_PROTOCOLS)},
            "public": {"type": "boolean"},
            "skip_verify": {"type": "boolean"},
        },
        "required": ["addr"],
    }


def _image_remotes(value: object, source: str) -> dict[str, ImageRemote]:
    if not isinstance(value, dict):
        raise ConfigError(f"config {source}: image_remotes: must be a table")
    remotes: dict[str, ImageRemote] = {}
    for name, entry in value.items():
        at = f"config {source}: image_remotes.{name}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{at}: must be a table")

        def fail(key: str, problem: str, at: str = at) -> ConfigError:
            return ConfigError(f"{at}.{key}: {problem}")

        # Unknown keys are ignored, as everywhere in the file (the Go provider's rule).
        remotes[name] = parse_image_remote(entry, fail)
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


_POLICY_DESCRIPTIONS = {
    "allow_config": "Glob patterns of instance config keys pools may set.",
    "allow_device_types": "Device types pools may add (e.g. gpu, unix-char).",
    "allow_projects": "LXD projects pools may use besides project_name.",
}


def config_schema() -> dict[str, Any]:
    """The JSON schema of the config file (GetConfigJSONSchema), built from the rules above."""
    kinds: dict[str, dict[str, Any]] = {
        "string": {"type": "string"},
        "boolean": {"type": "boolean"},
        "seconds": {"type": "number", "minimum": 0, "maximum": MAX_SECONDS},
    }
    properties: dict[str, Any] = {}
    for key in CONFIG_KEYS:
        properties[key.name] = {**kinds[key.kind], "description": key.description}
        if key.choices:
            properties[key.name]["enum"] = list(key.choices)
    properties["image_remotes"] = {
        "type": "object",
        "description": "Simplestreams image servers, by the name used in a pool's image.",
        "additionalProperties": image_remote_schema(),
    }
    properties["pool_policy"] = {
        "type": "object",
        "description": "What pool extra specs may do beyond the safe defaults.",
        "properties": {
            key: {
                "type": "array",
                "items": {"type": "string", "pattern": "\\S"},
                "description": _POLICY_DESCRIPTIONS[key],
            }
            for key in _POOL_POLICY_KEYS
        },
        "additionalProperties": False,
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "garm-provider-lxd config",
        "type": "object",
        "properties": properties,
        "anyOf": [{"required": ["unix_socket_path"]}, {"required": ["url"]}],
    }
