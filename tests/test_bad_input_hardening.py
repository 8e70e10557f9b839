"""Hardened inputs: config and key files, URLs in messages, the CA bundle, sha256_checksum and
the length of the error line. Every case runs the installed provider as GARM (or an operator)
does, with a timeout that only bounds a hang."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CONFORMANCE_CASES, LxdEnv, bootstrap_payload, garm_env
from reliability.harness import PREFIX, Outcome, one_line_failure, run
from reliability.tlsenv import KeyPair, self_signed

from garm_provider_lxd.cli import report
from garm_provider_lxd.messages import MAX_LINE, redact_url

# Bounds a hang (a FIFO opened for reading, /dev/zero read to the end, a backtracking regular
# expression): each of these cases ends in well under a second when the provider is right.
HANG_BOUND = 60.0
SECRET = "S3cretPassw0rd"
PEM_KEYS = ("client_certificate", "client_key", "tls_server_certificate", "tls_ca")
DIGEST = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

SpecialFile = Callable[[str], str]


@pytest.fixture
def special_file(tmp_path: Path) -> Iterator[SpecialFile]:
    """A factory of paths that are not small regular files, by kind."""
    # A unix socket path must fit in 108 bytes: keep it out of pytest's long tmp_path.
    short = Path(tempfile.mkdtemp(prefix="garm-in-"))
    listeners: list[socket.socket] = []

    def make(kind: str) -> str:
        if kind == "fifo":
            path = tmp_path / "fifo"
            os.mkfifo(path)  # nobody ever writes to it
            return str(path)
        if kind == "directory":
            return str(tmp_path)
        if kind == "dev_zero":
            return "/dev/zero"
        if kind == "socket":
            path = short / "sock"
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(str(path))
            listener.listen(1)
            listeners.append(listener)
            return str(path)
        if kind == "oversized":
            # Valid TOML and PEM-neutral text: only the size is wrong.
            path = tmp_path / "oversized"
            path.write_text(f'unix_socket_path = "{short}/none"\n' + "# padding\n" * 120_000)
            return str(path)
        raise AssertionError(kind)

    yield make
    for listener in listeners:
        listener.close()
    for child in short.iterdir():
        child.unlink()
    short.rmdir()


FILE_KINDS = {
    "fifo": "a FIFO, not a regular file",
    "directory": "a directory, not a regular file",
    "dev_zero": "a character device, not a regular file",
    "socket": "a socket, not a regular file",
    "oversized": "larger than the 1 MiB limit",
}


def _list(provider_bin: str, config: str | Path) -> Outcome:
    return run(provider_bin, garm_env("ListInstances", config, "controller"), timeout=HANG_BOUND)


# -- the config file and the PEM files it names --------------------------------------------------


@pytest.mark.parametrize("kind", FILE_KINDS)
def test_config_file_must_be_a_regular_file_of_bounded_size(
    kind: str, provider_bin: str, special_file: SpecialFile
) -> None:
    path = special_file(kind)
    line = one_line_failure(_list(provider_bin, path))
    assert line == f"config {path}: cannot read: {FILE_KINDS[kind]}", line


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    """A real client certificate and key."""
    return self_signed(tmp_path_factory.mktemp("pki"), "garm-input-client")


def _https_config(directory: Path, pair: KeyPair, url: str, **paths: str) -> Path:
    values = {
        "url": url,
        "client_certificate": str(pair.cert),
        "client_key": str(pair.key),
        **paths,
    }
    path = directory / "https.toml"
    path.write_text("".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items()))
    return path


@pytest.mark.parametrize("kind", FILE_KINDS)
@pytest.mark.parametrize("key", PEM_KEYS)
def test_pem_files_must_be_regular_files_of_bounded_size(
    key: str,
    kind: str,
    provider_bin: str,
    special_file: SpecialFile,
    key_pair: KeyPair,
    tmp_path: Path,
) -> None:
    path = special_file(kind)
    config = _https_config(tmp_path, key_pair, "https://127.0.0.1:1", **{key: path})
    line = one_line_failure(_list(provider_bin, config))
    assert line == f"config: {key} {path}: cannot read: {FILE_KINDS[kind]}", line


def test_operator_commands_read_files_by_the_same_rule(
    provider_bin: str, special_file: SpecialFile
) -> None:
    fifo = special_file("fifo")
    for args in (["check", "--config", fifo], ["setup", "--config", fifo]):
        line = one_line_failure(run(provider_bin, {}, args=args, timeout=HANG_BOUND))
        assert line == f"config {fifo}: cannot read: a FIFO, not a regular file", (args, line)


# -- URLs never show their credentials -----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"http://garm:{SECRET}@lxd.example:8443", "'http://***@lxd.example:8443'"),
        (f"garm:{SECRET}@lxd.example:8443", "must be an https:// URL"),
        (f"https://garm:{SECRET}@127.0.0.1:1", "user information (user:password@)"),
        (f"https://127.0.0.1:1/?token={SECRET}", '"https://127.0.0.1:1/?***"'),
        (f"http://127.0.0.1:1/lxd#{SECRET}", "'http://127.0.0.1:1/lxd#***'"),
        (f"https://garm:{SECRET} x@127.0.0.1:1", '"https://***@127.0.0.1:1"'),
    ],
)
def test_config_url_credentials_never_reach_the_error(
    url: str, shown: str, provider_bin: str, key_pair: KeyPair, tmp_path: Path
) -> None:
    outcome = _list(provider_bin, _https_config(tmp_path, key_pair, url))
    line = one_line_failure(outcome)
    assert SECRET not in outcome.error, outcome.error
    assert shown in line, line


def test_check_shows_image_remotes_without_credentials(
    provider_bin: str, lxd_env: LxdEnv, tmp_path: Path
) -> None:
    config = tmp_path / "check.toml"
    config.write_text(
        f"unix_socket_path = {json.dumps(lxd_env.socket)}\n"
        "[image_remotes.private]\n"
        f'addr = "https://garm:{SECRET}@images.example/?key={SECRET}"\n'
    )
    outcome = run(
        provider_bin,
        {},
        args=["check", "--config", str(config), "--image", "private:debian/12"],
        timeout=HANG_BOUND,
    )
    text = outcome.stdout.decode() + outcome.error
    assert "image remote private: https://***@images.example/?***" in text, text
    assert SECRET not in text, text


def test_error_line_redacts_urls_from_any_source(provider_bin: str) -> None:
    env = {"GARM_COMMAND": f"https://garm:{SECRET}@host/?token={SECRET}"}
    outcome = run(provider_bin, env, timeout=HANG_BOUND)
    line = one_line_failure(outcome)
    assert SECRET not in outcome.error
    assert "https://***@host/?***" in line, line


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://u:p@lxd:8443/1.0?project=x#top", "https://***@lxd:8443/1.0?***"),
        ("get 'http://u:p@[::1]:1/a?t=s' failed", "get 'http://***@[::1]:1/a?***' failed"),
        ("a=https://u:p@h,b=ftp://x:y@z/", "a=https://***@h,b=ftp://***@z/"),
        ("https://lxd:8443/1.0/instances", "https://lxd:8443/1.0/instances"),
        ("an https:// URL, me@example.com", "an https:// URL, me@example.com"),
    ],
)
def test_redact_url_in_text(text: str, shown: str) -> None:
    assert redact_url(text) == shown


# -- the length of the error line ----------------------------------------------------------------


def test_error_line_is_capped(provider_bin: str) -> None:
    outcome = run(provider_bin, {"GARM_COMMAND": "x" * 100_000}, timeout=HANG_BOUND)
    line = one_line_failure(outcome)
    assert len(PREFIX + line) <= MAX_LINE and line.endswith("\u2026"), len(line)


@pytest.mark.parametrize(
    "message",
    [
        "word " * 10_000 + f"https://garm:{SECRET}@host",
        f"https://garm:{SECRET * 1000}@host and more",
        f"start https://garm:{'x' * 5000}{SECRET}@host",
        f"{'y' * 10_000}https://garm:{SECRET}@host",
    ],
    ids=["many-words", "long-password", "password-past-the-head", "one-huge-word"],
)
def test_capped_line_never_shows_part_of_a_password(message: str) -> None:
    err = io.StringIO()
    report(err, message)
    text = err.getvalue()
    assert text.count("\n") == 1 and len(text) <= MAX_LINE + 1, len(text)
    assert SECRET[:6] not in text and "xxxxxxxx" not in text, text


# -- the CA bundle ---------------------------------------------------------------------------------


def _reference_certificate() -> bytes:
    case = json.loads((CONFORMANCE_CASES / "c07_ca_bundle.json").read_text())
    return base64.b64decode(case["ca-cert-bundle"])


CERT = _reference_certificate()
LINES = CERT.splitlines()
PRIVATE_KEY = b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"
BAD_CA = "failed to parse CA cert bundle"

# (id, bundle, expected stderr substring; empty when the bundle is accepted)
CA_BUNDLES: list[tuple[str, bytes, str]] = [
    ("begin-flood", b"-----BEGIN A-----\n" * 100_000, "line 1: PEM block has no matching END line"),
    ("begin-flood-then-cert", b"-----BEGIN A-----\n" * 100_000 + CERT, "no matching END line"),
    ("nested-begins", b"-----BEGIN CERTIFICATE-----\n" * 60_000 + CERT, "no matching END line"),
    ("unterminated", CERT + b"-----BEGIN CERTIFICATE-----\nMIIB", "line 12: PEM block has no"),
    ("begin-line-joined", CERT.replace(b"-----\n", b"-----", 1), "line 1: malformed BEGIN line"),
    (
        "huge-body",
        b"-----BEGIN CERTIFICATE-----\n" + b"QUFB" * 500_000 + b"\n-----END CERTIFICATE-----\n",
        "PEM block 1 is not an X.509 CERTIFICATE",
    ),
    (
        "dash-lines-in-body",
        b"-----BEGIN CERTIFICATE-----\n" + b"-----x\n" * 200_000 + b"-----END CERTIFICATE-----\n",
        "PEM block 1 is not an X.509 CERTIFICATE",
    ),
    ("end-mismatch", CERT.replace(b"END CERTIFICATE", b"END CERT"), "line 11: END line does not"),
    ("private-key", CERT + PRIVATE_KEY, "PEM block 2 is not an X.509 CERTIFICATE"),
    ("no-block", b"no certificate here\n" * 10_000, "no PEM certificate found"),
    ("only-text-around", "é\n".encode() * 10 + b"\xff\xfe", "no PEM certificate found"),
    ("crlf", CERT.replace(b"\n", b"\r\n"), ""),
    ("body-on-one-line", b"\n".join([LINES[0], b"".join(LINES[1:-1]), LINES[-1], b""]), ""),
    ("trailing-blanks", CERT.replace(b"\n", b" \t\n"), ""),
    ("comments-and-non-ascii", "# für ☃\n\n".encode() + CERT + b"\xff junk\n" + CERT, ""),
    ("midline-begins", b"x -----BEGIN A-----\n" * 20_000 + CERT, ""),
    ("many-certificates", CERT * 2000, ""),
]


def _userdata(provider_bin: str, payload: dict[str, Any]) -> Outcome:
    stdin = json.dumps(payload).encode()
    return run(provider_bin, {}, stdin, args=["userdata"], timeout=HANG_BOUND)


@pytest.mark.parametrize(
    ("bundle", "problem"), [c[1:] for c in CA_BUNDLES], ids=[c[0] for c in CA_BUNDLES]
)
def test_ca_bundle_scan(bundle: bytes, problem: str, provider_bin: str) -> None:
    payload = bootstrap_payload(
        "garm-in-ca", **{"ca-cert-bundle": base64.b64encode(bundle).decode()}
    )
    outcome = _userdata(provider_bin, payload)
    if not problem:
        assert outcome.returncode == 0, outcome.error
        assert b"ca-certs:" in outcome.stdout
        return
    line = one_line_failure(outcome)
    assert line.startswith(f"adding CA cert bundle: {BAD_CA}: ") and problem in line, line


# -- sha256_checksum -------------------------------------------------------------------------------


def _with_checksum(checksum: str | None) -> dict[str, Any]:
    payload = bootstrap_payload("garm-in-sha")
    for tool in payload["tools"]:
        if checksum is None:
            tool.pop("sha256_checksum", None)
        else:
            tool["sha256_checksum"] = checksum
    return payload


@pytest.mark.parametrize(
    "checksum",
    [
        f"{DIGEST}\n{DIGEST}  /etc/hostname",
        "$(touch /tmp/x)`id`;" + "a" * 45,
        DIGEST[:63],
        DIGEST + "0",
        "g" * 64,
        DIGEST + " ",
        "a" * 500_000,
    ],
    ids=["second-line", "shell", "short", "long", "not-hex", "trailing-space", "huge"],
)
def test_bad_sha256_checksum_is_refused_without_echo(checksum: str, provider_bin: str) -> None:
    outcome = _userdata(provider_bin, _with_checksum(checksum))
    line = one_line_failure(outcome)
    assert line == "bootstrap: tools[1].sha256_checksum: expected 64 hexadecimal digits", line


@pytest.mark.parametrize("checksum", [DIGEST, DIGEST.upper(), "", None])
def test_digest_or_no_checksum_is_accepted(checksum: str | None, provider_bin: str) -> None:
    outcome = _userdata(provider_bin, _with_checksum(checksum))
    assert outcome.returncode == 0, outcome.error
