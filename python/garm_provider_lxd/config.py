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
    allow_volumes: tuple[str, ...] = ()  # glob patterns of custom volumes, "pool/volume"
    allow_profiles: tuple[str, ...] = ()  # glob patterns of profiles used as they are
    allow_image_hosts: tuple[str, ...] = ()  # glob patterns of image_remote hosts (host[:port])


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
    # [diagnostics] (docs/operating-runners.md): empty paths turn each feature off.
    command_log: str = ""
    command_log_max_bytes: int = 16 << 20
    command_log_keep: int = 3
    postmortem_dir: str = ""
    postmortem_keep: int = 500
    postmortem_max_age_days: int = 30


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
    """One plain key of the config file: its JSON type, default, meaning and table."""

    name: str
    kind: str  # "string", "boolean", "seconds" (a number from 0 to 86400), "count", "path"
    default: object
    description: str
    choices: tuple[str, ...] = ()
    table: str = ""  # "" for a top-level key, else the [table] it lives in
    maximum: int = 1 << 40  # of a count


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
    ConfigKey(
        "command_log",
        "path",
        "",
        "File every GARM command appends one JSON line to (off when empty).",
        table="diagnostics",
    ),
    ConfigKey(
        "command_log_max_bytes",
        "count",
        16 << 20,
        "Size at which the command log is rotated (default 16 MiB; 0: never rotated).",
        table="diagnostics",
    ),
    ConfigKey(
        "command_log_keep",
        "count",
        3,
        "Rotated command logs kept as <command_log>.1 ... .N (default 3, at most 1000).",
        table="diagnostics",
        # The process that rotates renames every kept file under the lock: a bounded number.
        maximum=1000,
    ),
    ConfigKey(
        "postmortem_dir",
        "path",
        "",
        "Directory for post-mortems of runners that did not come up (off when empty).",
        table="diagnostics",
    ),
    ConfigKey(
        "postmortem_keep",
        "count",
        500,
        "Most post-mortems kept; the oldest go first (default 500).",
        table="diagnostics",
    ),
    ConfigKey(
        "postmortem_max_age_days",
        "count",
        30,
        "Post-mortems older than this many days are removed (default 30).",
        table="diagnostics",
    ),
)
MAX_SECONDS = 86400
_EXPECTED = {
    "string": "a string",
    "path": "an absolute path",
    "boolean": "a boolean",
    "seconds": "a number",
    "count": "a whole number",
}
_PYTHON_TYPES = {"string": str, "path": str, "boolean": bool, "seconds": float, "count": int}


def _read_key(data: Mapping[str, Any], key: ConfigKey, source: str) -> Any:
    value: Any = data.get(key.name, key.default)
    name = f"{key.table}.{key.name}" if key.table else key.name
    if key.kind == "seconds" and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    kind = _PYTHON_TYPES[key.kind]
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ConfigError(f"config {source}: {name}: must be {_EXPECTED[key.kind]}")
    if isinstance(value, str):
        value = value.strip() or key.default
        if key.choices and value not in key.choices:
            raise ConfigError(
                f"config {source}: {name}: must be one of {', '.join(key.choices)}, not {value!r}"
            )
        if key.kind == "path" and value and (not value.startswith("/") or "\0" in value):
            raise ConfigError(f"config {source}: {name}: must be {_EXPECTED[key.kind]}")
    if isinstance(value, float) and not 0 <= value <= MAX_SECONDS:
        raise ConfigError(f"config {source}: {name}: must be between 0 and {MAX_SECONDS}")
    if key.kind == "count" and not 0 <= value <= key.maximum:
        raise ConfigError(f"config {source}: {name}: must be between 0 and {key.maximum}")
    return value


def _table(data: Mapping[str, Any], table: str, source: str) -> Mapping[str, Any]:
    """A [table] of plain keys; unknown keys are refused (a typo must not turn a feature off)."""
    if not table:
        return data
    value = data.get(table, {})
    if not isinstance(value, dict):
        raise ConfigError(f"config {source}: {table}: must be a table")
    known = {key.name for key in CONFIG_KEYS if key.table == table}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ConfigError(
            f"config {source}: {table}: unknown key {unknown[0]!r} "
            f"(expected {', '.join(sorted(known))})"
        )
    return value


def _validate(data: Mapping[str, Any], source: str) -> Config:
    values: dict[str, Any] = {
        key.name: _read_key(_table(data, key.table, source), key, source) for key in CONFIG_KEYS
    }
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


_DEFAULT_PORTS = {"https": 443, "http": 80}
_HOST_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")
_IPV6_CHARS = frozenset("0123456789abcdef:.")


def image_host(addr: str) -> str:
    """The host of an http(s) URL as allow_image_hosts matches it ("" when it has no plain one).

    Lower case, with the port only when it is not the scheme's default: `name`, `name:8443`,
    `192.0.2.1`, `[2001:db8::1]:8443`. User information, percent escapes and any character a
    host name or address does not have give "", so no URL parser can read another host in it.
    """
    scheme, _, rest = addr.partition("://")
    authority = rest.partition("/")[0].lower()
    if authority.startswith("["):
        end = authority.find("]")
        host, port = authority[: end + 1], authority[end + 1 :]
        if end < 0 or ":" not in host or not _IPV6_CHARS.issuperset(host[1:-1]):
            return ""
    else:
        host, colon, digits = authority.partition(":")
        port = colon + digits
        if not host or not _HOST_NAME_CHARS.issuperset(host):
            return ""
    if not port:
        return host
    digits = port[1:]
    if port[0] != ":" or not (digits.isascii() and digits.isdigit()) or len(digits) > 5:
        return ""
    number = int(digits)
    if not 0 < number < 65536:
        return ""
    return host if number == _DEFAULT_PORTS.get(scheme) else f"{host}:{number}"


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


_POOL_POLICY_KEYS = (
    "allow_config",
    "allow_device_types",
    "allow_projects",
    "allow_volumes",
    "allow_profiles",
    "allow_image_hosts",
)


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
    "allow_volumes": "Glob patterns of custom volumes (pool/volume) pools may attach.",
    "allow_profiles": "Glob patterns of profiles pools may use without their contents judged.",
    "allow_image_hosts": "Glob patterns of the hosts (host or host:port) of pools' image_remote.",
}


def config_schema() -> dict[str, Any]:
    """The JSON schema of the config file (GetConfigJSONSchema), built from the rules above."""
    kinds: dict[str, dict[str, Any]] = {
        "string": {"type": "string"},
        "path": {"type": "string", "pattern": "^(/|\\s*$)"},
        "boolean": {"type": "boolean"},
        "seconds": {"type": "number", "minimum": 0, "maximum": MAX_SECONDS},
        "count": {"type": "integer", "minimum": 0},  # its maximum is the key's
    }
    properties: dict[str, Any] = {}
    for key in CONFIG_KEYS:
        where = properties
        if key.table:
            table = properties.setdefault(
                key.table, {"type": "object", "properties": {}, "additionalProperties": False}
            )
            where = table["properties"]
        where[key.name] = {**kinds[key.kind], "description": key.description}
        if key.kind == "count":
            where[key.name]["maximum"] = key.maximum
        if key.choices:
            where[key.name]["enum"] = list(key.choices)
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
