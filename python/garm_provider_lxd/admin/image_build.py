"""`garm-provider-lxd image build`: bake the actions runner into an LXD/Incus image (pylxd)."""

from __future__ import annotations

import json
import re
import secrets
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..errors import EXIT_OK, InputError, LxdError, LxdTimeoutError, ProviderError
from ..images import image_source
from ..instances import user_data_key
from ..messages import error_line, for_terminal, one_line
from ..userdata import RUNNER_USER, runner_user, sh_quote
from .pylxd_client import api_node, metadata, wait_for_operation, wait_for_operation_id

if TYPE_CHECKING:
    import pylxd

    from ..config import Config
    from ..lxd import Lxd

BUILDER_PREFIX = "garm-image-build-"
BUILDER_TAG = "user.garm-image-build"
STATE_DIR = "/var/lib/garm-image-build"
POLL_SECONDS = 1.0
# The builder's state files are a line or two; cloud-init's are a few KiB.
MAX_STATE_FILE_BYTES = 64 << 10
FILE_TIMEOUT = 10.0  # the longest wait for any one answer while reading one
# The clean-up's one deadline (--cleanup-timeout): waiting for LXD's operations on the builder,
# force-stopping and deleting it, again while LXD answers "busy", all end by then (each request
# is cut to the time left); a builder still there then is named, with the command to delete it.
# Its last operation wait may end up to WAIT_SLACK_SECONDS later (LXD answers when it is up).
CLEANUP_SECONDS = 120.0
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Room left for the prefixes of this module's messages within the CLI's 500-character line.
MESSAGE_LIMIT = 400
STOPPED_CONFIRMATIONS = 3
# Image properties the build records (besides the base image's own os/release/...).
PROPERTY_BASE = "garm_base_image"
PROPERTY_RUNNER_VERSION = "garm_runner_version"
PROPERTY_BUILT_AT = "garm_built_at"
# The builder's scripts: shell files with @@VALUES@@ (the build's settings as shell variables)
# and @@STATE@@ (STATE_DIR) filled in by build_script and builder_user_data.
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_PACKAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9+._:=~@-]*")
_VERSION = re.compile(r"(\d+\.\d+\.\d+)")


@dataclass(frozen=True)
class BuildOptions:
    """What to build: the base image, the alias to publish, the runner and extra packages."""

    base: str
    alias: str
    runner_url: str
    runner_sha256: str = ""
    insecure_skip_runner_checksum: bool = False
    packages: tuple[str, ...] = ()
    profile: str = "default"
    timeout: float = 1800.0
    delete_previous: bool = False
    compression: str = ""  # the server's images.compression_algorithm when empty
    cleanup_timeout: float = CLEANUP_SECONDS


class BuilderLeft(LxdError):
    """The builder was still there when the clean-up's deadline came."""


def validate(options: BuildOptions) -> None:
    """Refuse options that cannot produce an image, before anything is created."""
    if not options.alias or "/" in options.alias or not options.alias.isprintable():
        raise InputError(f"--alias: {options.alias!r} is not a valid image alias")
    scheme = options.runner_url.partition("://")[0]
    if scheme not in ("http", "https") or not options.runner_url.isprintable():
        raise InputError("--runner-url: must be an http(s) URL")
    if any(c.isspace() for c in options.runner_url):
        raise InputError("--runner-url: must not contain white space")
    if options.runner_sha256 and not _SHA256.fullmatch(options.runner_sha256):
        raise InputError("--runner-sha256: must be 64 lower-case hex digits")
    # The image runs every job of the pools that use it: its runner must be the one meant.
    if options.runner_sha256 and options.insecure_skip_runner_checksum:
        raise InputError("--runner-sha256 and --insecure-skip-runner-checksum exclude each other")
    if not options.runner_sha256 and scheme == "http":
        raise InputError("--runner-url: an http:// URL needs --runner-sha256")
    if not options.runner_sha256 and not options.insecure_skip_runner_checksum:
        raise InputError(
            "--runner-sha256 is required (the SHA-256 listed with the runner release); "
            "--insecure-skip-runner-checksum publishes an unverified download instead"
        )
    for name in options.packages:
        if not _PACKAGE.fullmatch(name):
            raise InputError(f"--package: {name!r} is not a package name")
    if options.compression and not _PACKAGE.fullmatch(options.compression):
        raise InputError(f"--compression: {options.compression!r} is not an algorithm name")
    if not 0 < options.timeout <= 86400:
        raise InputError("--timeout: must be between 1 and 86400 seconds")
    if not 1 <= options.cleanup_timeout <= 3600:
        raise InputError("--cleanup-timeout: must be between 1 and 3600 seconds")


def display_url(url: str) -> str:
    """The URL without credentials or query string, for messages and image properties."""
    scheme, _, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    host = host.rpartition("@")[2]
    return f"{scheme}://{host}{slash}{path.split('?')[0].split('#')[0]}"


def runner_version(url: str) -> str:
    """The runner version in a release file name (actions-runner-linux-x64-2.321.0.tar.gz)."""
    name = display_url(url).rsplit("/", 1)[-1]
    found = _VERSION.search(name)
    return found.group(1) if found else ""


def build_script(options: BuildOptions) -> str:
    """The script cloud-init runs in the builder: fetch, verify, extract, then seal."""
    url = options.runner_url
    values = {
        "RUNNER_URL": url,
        "SHOWN_URL": display_url(url),
        "RUNNER_SHA256": options.runner_sha256,
        "RUNNER_VERSION": runner_version(url),
        "RUNNER_USER": RUNNER_USER,
        "PACKAGES": " ".join(packages(options)),
    }
    header = "".join(f"{key}={sh_quote(value)}\n" for key, value in values.items())
    return (
        _template("image_build.sh").replace("@@VALUES@@\n", header).replace("@@STATE@@", STATE_DIR)
    )


def _template(name: str) -> str:
    """A builder script from templates/, its @@KEYS@@ not yet filled in."""
    return (TEMPLATES / name).read_text(encoding="utf-8")


def packages(options: BuildOptions) -> list[str]:
    """The packages cloud-init installs in the builder: curl and tar, then every --package."""
    return list(dict.fromkeys(("curl", "tar", *options.packages)))


def builder_user_data(options: BuildOptions) -> bytes:
    """The builder's #cloud-config: the runner user as runners get it, and the build script."""
    from .._native import cloud_config as render_cloud_config
    from .._native import json_dumps

    seal = _template("image_seal.sh").replace("@@STATE@@", STATE_DIR)
    files = [("build.sh", build_script(options)), ("seal.sh", seal)]
    document = {
        "users": ["default"],
        "package_upgrade": False,
        "packages": packages(options),
        "ssh_authorized_keys": [],
        "system_info": {"default_user": runner_user()},
        "runcmd": [f"{STATE_DIR}/build.sh"],
        "write_files": [_root_file(f"{STATE_DIR}/{name}", text) for name, text in files],
        "ca_certs": None,
        "bootcmd": [],
    }
    return render_cloud_config(json_dumps(document))


def _root_file(path: str, text: str) -> dict[str, str]:
    from .._native import b64encode

    return {"encoding": "b64", "content": b64encode(text.encode()), "owner": "root:root",
            "path": path, "permissions": "700"}  # fmt: skip


class _Progress:
    """Steps with elapsed time on stderr."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.started = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def say(self, text: str) -> None:
        # Steps carry what the builder wrote into its status files.
        self.out.write(f"[{self.elapsed:6.1f}s] {for_terminal(text)}\n")
        self.out.flush()


def run_image_build(config: Config, options: BuildOptions, stdout: IO[str], stderr: IO[str]) -> int:
    """Build and publish the image; print one JSON object on stdout."""
    from ..lxd import Lxd
    from .pylxd_client import connect, lxd_errors

    validate(options)
    progress = _Progress(stderr)
    client = connect(config)
    source = image_source(options.base, config.image_remotes)
    with lxd_errors("image build"):
        base_fingerprint = _check_base(client, source, options.base)
    # The name is chosen before the create request: whenever the build stops, even while that
    # request is on its way, the clean-up knows which instance can be there and that it is ours.
    name = BUILDER_PREFIX + secrets.token_hex(4)
    project = config.project_name or "default"
    try:
        with lxd_errors("image build"):
            progress.say(f"creating builder {name} from {options.base}")
            user_data_at = user_data_key(client.has_api_extension)
            client.instances.create(
                {
                    "name": name,
                    "type": config.instance_type,
                    "source": source,
                    "profiles": [options.profile],
                    "config": {
                        user_data_at: builder_user_data(options).decode(),
                        BUILDER_TAG: "true",
                    },
                },
                wait=True,
            )
            builder = client.instances.get(name)
            builder.start(wait=True)
            progress.say("builder started; waiting for cloud-init")
            _wait_sealed(client, Lxd(config), name, options, progress)
            progress.say("builder stopped; publishing")
            fingerprint = _publish(client, name, options, base_fingerprint)
            previous = _move_alias(client, options.alias, fingerprint)
            size = int(client.images.get(fingerprint).size)
            if previous and previous != fingerprint and options.delete_previous:
                client.images.get(previous).delete(wait=True)
                progress.say(f"deleted the previous image {previous[:12]}")
            progress.say(f"published {fingerprint[:12]} as {options.alias}")
    except BaseException:
        # The failure stays the last line; a builder left behind is said on the line before it.
        with _signals_ignored():
            try:
                _delete_builder(client, name, project, options.cleanup_timeout)
            except BuilderLeft as left:
                progress.say(str(left))
        raise
    with _signals_ignored():
        _delete_builder(client, name, project, options.cleanup_timeout)
    result = {
        "fingerprint": fingerprint,
        "alias": options.alias,
        "size": size,
        "seconds": round(progress.elapsed, 1),
        "runner_version": runner_version(options.runner_url),
        "previous": previous if previous != fingerprint else "",
    }
    stdout.write(json.dumps(result) + "\n")
    stdout.flush()
    return EXIT_OK


def _check_base(client: pylxd.Client, source: dict[str, Any], base: str) -> str:
    # A local base image must exist before anything is created; a remote one is pulled by the
    # server at create time, and a failure there leaves no instance behind.
    if source.get("mode") == "pull":
        return ""
    from pylxd.exceptions import NotFound

    try:
        segments = ("aliases", source["alias"]) if "alias" in source else (source["fingerprint"],)
        found = metadata(api_node(client, "images", *segments).get())
        return str(found.get("target") or found.get("fingerprint"))
    except NotFound:
        project = client.project or "default"
        raise InputError(f"base image {base!r} not found in project {project!r}") from None


def _read(lxd: Lxd, name: str, path: str) -> str:
    # LXD's file server rather than exec: it runs nothing in the guest while it shuts down, and
    # tells a missing file from an empty one. Over SFTP, as `logs` reads runners' logs: what
    # runs in the builder (packages, the runner's installdependencies.sh) could make these
    # files FIFOs, which the plain file API would wait on, keeping the builder from stopping;
    # nothing but a regular file is opened. Any failure reads as "" (the builder may be
    # stopping; the next poll retries).
    from ..lxd import REGULAR_FILE

    try:
        kind, content, _ = lxd.read_file_tail(name, path, MAX_STATE_FILE_BYTES, FILE_TIMEOUT)
    except LxdError:
        # Only LXD's errors: SIGTERM arrives as a ProviderError and must end the build.
        return ""
    return content.decode("utf-8", "replace").strip() if kind == REGULAR_FILE else ""


def _exists(lxd: Lxd, name: str, path: str) -> bool | None:
    # Whether anything is at path; None when the builder does not say (a stopped VM).
    try:
        kind, _, _ = lxd.read_file_tail(name, path, 0, FILE_TIMEOUT)
    except LxdError:  # not SIGTERM (a ProviderError), which must end the build
        return None
    return kind is not None


def _cloud_init_stage(lxd: Lxd, name: str) -> str:
    text = _read(lxd, name, "/run/cloud-init/status.json")
    if not text:
        return "not started"
    try:
        v1 = json.loads(text)["v1"]
    except (ValueError, KeyError, TypeError):
        return "running"
    if v1.get("stage"):
        return str(v1["stage"])
    return "done" if _read(lxd, name, "/run/cloud-init/result.json") else "running"


def _status(client: pylxd.Client, name: str) -> str:
    from pylxd.exceptions import LXDAPIException, NotFound

    try:
        return str(client.api.instances[name].state.get().json()["metadata"]["status"])
    except NotFound:
        raise ProviderError(f"image build: the builder {name} disappeared") from None
    except LXDAPIException:
        # Incus answers "Invalid PID" while the instance is shutting down: ask again.
        return "Unknown"


def _wait_sealed(
    client: pylxd.Client, lxd: Lxd, name: str, options: BuildOptions, progress: _Progress
) -> None:
    deadline = time.monotonic() + options.timeout
    shown = ""
    stopped = 0
    while True:
        # Incus has been seen to report a running instance as Stopped for a moment: only a
        # stop that lasts counts.
        stopped = stopped + 1 if _status(client, name) == "Stopped" else 0
        if stopped >= STOPPED_CONFIRMATIONS:
            _check_sealed(lxd, name, shown)
            return
        failed = _read(lxd, name, f"{STATE_DIR}/failed")
        if failed:
            raise ProviderError(f"image build failed: {_one_line(failed)}")
        if not stopped:
            stage = _cloud_init_stage(lxd, name)
            step = _read(lxd, name, f"{STATE_DIR}/step") or "-"
            now = f"cloud-init {stage}; {step}"
            if now != shown:
                progress.say(now)
                shown = now
        if time.monotonic() > deadline:
            raise LxdTimeoutError(
                f"image build: the builder did not finish within {options.timeout:.0f} s "
                f"(last seen: {shown})"
            )
        time.sleep(POLL_SECONDS)


def _check_sealed(lxd: Lxd, name: str, shown: str) -> None:
    # A builder that stopped before sealing (a crash, someone's `lxc stop`) must not become an
    # image. A stopped container still serves its files; a stopped VM does not (an error), and
    # then the stop is trusted.
    failed = _read(lxd, name, f"{STATE_DIR}/failed")
    if failed:
        raise ProviderError(f"image build failed: {_one_line(failed)}")
    runner = _exists(lxd, name, f"/home/{RUNNER_USER}/actions-runner/config.sh")
    state = _exists(lxd, name, f"{STATE_DIR}/build.sh")
    if runner is False or state is True:
        raise ProviderError(
            f"image build: the builder stopped before the build finished (last seen: {shown})"
        )


def _publish(client: pylxd.Client, name: str, options: BuildOptions, base_fingerprint: str) -> str:
    builder = client.instances.get(name)
    # A base pulled from a remote is known by its fingerprint only once the server has it.
    base_fingerprint = base_fingerprint or str(builder.config.get("volatile.base_image", ""))
    properties = {
        key[len("image.") :]: str(value)
        for key, value in builder.expanded_config.items()
        if key.startswith("image.")
    }
    version = runner_version(options.runner_url)
    properties.update(
        {
            PROPERTY_BASE: options.base
            + (f" ({base_fingerprint[:12]})" if base_fingerprint else ""),
            PROPERTY_RUNNER_VERSION: version,
            PROPERTY_BUILT_AT: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "description": f"{properties.get('description') or options.base} "
            f"+ actions-runner {version or 'unknown'}".strip(),
        }
    )
    body: dict[str, Any] = {
        "public": False,
        "source": {"type": "instance", "name": name},
        "properties": properties,
    }
    if options.compression:
        body["compression_algorithm"] = options.compression
    return str(wait_for_operation(client, client.api.images.post(json=body))["fingerprint"])


def _move_alias(client: pylxd.Client, alias: str, fingerprint: str) -> str:
    """Point alias at fingerprint (creating it); return the fingerprint it pointed at before."""
    from pylxd.exceptions import LXDAPIException, NotFound

    aliases = api_node(client, "images", "aliases")
    node = api_node(client, "images", "aliases", alias)
    try:
        previous = str(metadata(node.get())["target"])
    except NotFound:
        previous = ""
    description = "garm-provider-lxd runner image"
    try:
        if previous:
            node.put(json={"target": fingerprint, "description": description})
        else:
            aliases.post(json={"name": alias, "target": fingerprint, "description": description})
    except LXDAPIException:
        # Nothing half-made: the new image goes, the alias stays where it was.
        client.images.get(fingerprint).delete(wait=True)
        raise
    return previous


@contextmanager
def _signals_ignored() -> Iterator[None]:
    """SIGTERM and SIGINT wait while the builder is deleted: a second one must not stop that."""
    previous = {number: signal.signal(number, signal.SIG_IGN) for number in _STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _delete_builder(
    client: pylxd.Client, name: str, project: str = "default", seconds: float = CLEANUP_SECONDS
) -> None:
    """Delete the builder, whatever state the build left it in (or nothing, if there is none),
    within one deadline; raise BuilderLeft naming it and the command to delete it if it stays.

    LXD may still be running the create or start request when the build was interrupted, or
    only about to register it: wait for the operations on the builder, then force-stop and
    delete it, again while LXD answers that it is busy; "not there" counts once it has been
    seen twice, POLL_SECONDS apart, with no operation on the name in between (once, when the
    deadline has come: a create request cannot still be on its way by then).
    """
    from pylxd.exceptions import LXDAPIException
    from requests import RequestException

    deadline = time.monotonic() + seconds
    absent = 0
    why = "LXD kept it busy"
    while True:
        try:
            outcome = _delete_once(client, name, deadline)
        except (LXDAPIException, LxdError, RequestException, _Busy) as exc:
            outcome, why = "busy", error_line(exc, MESSAGE_LIMIT)
        absent = absent + 1 if outcome == "absent" else 0
        left = deadline - time.monotonic()
        if outcome == "done" or absent == 2 or (absent and left <= 0):
            return
        if left <= 0:
            break
        time.sleep(min(POLL_SECONDS, left))
    server = str((client.host_info.get("environment") or {}).get("server") or "lxd")
    tool = "incus" if server == "incus" else "lxc"
    raise BuilderLeft(
        f"image build: the builder {name} is still there after {seconds:g} s of clean-up "
        f"({why}); delete it with: {tool} delete --force --project {project} {name}"
    )


class _Busy(Exception):
    """LXD has not finished with the builder yet (an operation on it is still running)."""


def _delete_once(client: pylxd.Client, name: str, deadline: float) -> str:
    """One attempt at deleting the builder: "done" or "absent" (nothing under way); _Busy or
    LXD's error when it could not."""
    from pylxd.exceptions import NotFound

    busy = _wait_for_operations_on(client, name, deadline)
    node = api_node(client, "instances", name)
    try:
        builder = metadata(node.get(timeout=_time_left(deadline))) or {}
    except NotFound:
        if busy:
            raise _Busy("an LXD operation on it is still running") from None
        return "absent"
    if (builder.get("config") or {}).get(BUILDER_TAG) != "true":
        return "done"  # another instance took the name: not ours to delete
    if builder.get("status") != "Stopped":
        state = api_node(client, "instances", name, "state")
        stopping = state.put(json={"action": "stop", "force": True}, timeout=_time_left(deadline))
        wait_for_operation(client, stopping, _time_left(deadline))
    wait_for_operation(client, node.delete(timeout=_time_left(deadline)), _time_left(deadline))
    return "done"


def _time_left(deadline: float) -> float:
    """The timeout for one request made before the deadline (at least a second)."""
    return max(1.0, deadline - time.monotonic())


def _wait_for_operations_on(client: pylxd.Client, name: str, deadline: float) -> bool:
    """Wait, until the deadline at most, for LXD's running operations on instance name; False
    when there were none."""
    from pylxd.exceptions import NotFound

    listed = metadata(client.api.operations.get(params={"recursion": "1"},
                                                timeout=_time_left(deadline))) or {}  # fmt: skip
    wanted = f"/1.0/instances/{name}"
    found = False
    for operation in listed.get("running") or []:
        resources = (operation.get("resources") or {}).get("instances") or []
        if any(str(r).split("?")[0] == wanted for r in resources):
            found = True
            try:
                wait_for_operation_id(client, str(operation.get("id")), _time_left(deadline))
            except NotFound:  # finished and gone meanwhile
                continue
    return found


def _one_line(text: str) -> str:
    return one_line(text, MESSAGE_LIMIT)
