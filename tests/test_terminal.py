"""One escaping rule for everything that reaches a terminal (messages.for_terminal): the rule, and
the stderr and stdout of GARM commands and operator commands fed escape sequences."""

from __future__ import annotations

import contextlib
import re
import uuid
from pathlib import Path

import pylxd
import pytest
from conftest import LxdEnv, RunProvider, run_operator
from image_build_runs import UNUSED_RUNNER, RunningBuild, builder_name

from garm_provider_lxd.admin.image_build import STATE_DIR
from garm_provider_lxd.messages import ELLIPSIS, error_line, for_terminal, one_line

# An OSC 8 link, an OSC title, BEL, the C1 CSI and OSC, a bidi override and a zero-width space.
HOSTILE = (
    "\x1b]8;;https://evil.example/\x07click\x1b]8;;\x07\x1b]0;title\x07\x07"
    "\x9b2J\x9d0;t\x9c\u202eevil\u200b"
)
ESCAPED = (
    "\\x1b]8;;https://evil.example/\\x07click\\x1b]8;;\\x07\\x1b]0;title\\x07\\x07"
    "\\x9b2J\\x9d0;t\\x9c\\u202eevil\\u200b"
)
# What must never reach a terminal raw: C0 (but the line's own newline), DEL, C1, and the
# invisible format characters.
RAW = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]"
)
INVISIBLE = [
    0x061C, 0x180E, *range(0x200B, 0x2010), 0x2028, 0x2029, *range(0x202A, 0x202F),
    *range(0x2060, 0x2065), *range(0x2066, 0x2070), 0xFEFF, 0xFFF9, 0xFFFA, 0xFFFB,
]  # fmt: skip


def assert_no_raw_controls(text: str) -> None:
    """No control or invisible format character in text, but newlines."""
    found = RAW.search(text)
    assert found is None, (found, text)


# -- the rule ------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [*range(0x20), 0x7F, *range(0x80, 0xA0)])
def test_every_control_becomes_a_visible_escape(code: int) -> None:
    assert for_terminal(f"a{chr(code)}b") == f"a\\x{code:02x}b"


@pytest.mark.parametrize("code", INVISIBLE)
def test_every_invisible_format_character_becomes_a_visible_escape(code: int) -> None:
    assert for_terminal(f"a{chr(code)}b") == f"a\\u{code:04x}b"


def test_printable_text_is_untouched_and_escaping_twice_changes_nothing() -> None:
    text = "runner-1 été 中文 \U0001f680 a\\b 'q' \"q\" ~"
    assert for_terminal(text) == text
    assert for_terminal(HOSTILE) == ESCAPED
    assert for_terminal(for_terminal(HOSTILE)) == ESCAPED
    assert for_terminal("a\nb\tc", multiline=True) == "a\nb\tc"
    assert for_terminal("a\nb\tc") == "a\\x0ab\\x09c"


def test_one_line_escapes_after_redacting() -> None:
    """An escape in a URL's password must not end the URL before the password is redacted."""
    line = one_line(f"failed: https://user:pa\x1bss@host.example/x {HOSTILE}", 500)
    assert line == f"failed: https://***@host.example/x {ESCAPED}"
    assert "pa" not in line.split("***")[0]


# -- an exception as one line (messages.error_line, the one rule both programs use) ---------------


class _Quiet(Exception):
    """An exception whose text is empty."""


def test_an_exception_without_text_is_its_class_name() -> None:
    assert error_line(_Quiet(), 400) == "_Quiet"
    assert error_line(_Quiet(" \n\t "), 400) == "_Quiet"


def test_a_multi_line_exception_becomes_one_line() -> None:
    """Every line is kept, joined by single spaces (the first-line-only copy lost the rest)."""
    exc = RuntimeError("Failed to create instance:\n  not enough space\r\n\tin pool default ")
    assert error_line(exc, 400) == "Failed to create instance: not enough space in pool default"


def test_an_exceptions_url_credentials_are_redacted() -> None:
    exc = ConnectionError("HTTPSConnectionPool: https://admin:s3cret@lxd.example:8443/1.0?x=t")
    line = error_line(exc, 400)
    assert line == "HTTPSConnectionPool: https://***@lxd.example:8443/1.0?***"
    assert "admin" not in line and "s3cret" not in line


@pytest.mark.parametrize("limit", [10, 80, 400])
def test_an_exceptions_line_holds_its_limit(limit: int) -> None:
    line = error_line(ValueError("word " * 1000), limit)
    assert len(line) == limit and line.endswith(ELLIPSIS)
    assert error_line(ValueError("short"), limit) == "short"


def test_an_exceptions_escape_sequence_is_shown_escaped() -> None:
    assert error_line(OSError("bad \x1b[2J name"), 400) == "bad \\x1b[2J name"


# -- GARM commands -------------------------------------------------------------------------------


def test_garm_command_error_has_no_raw_controls(
    run_provider: RunProvider, provider_config: Path, controller_id: str
) -> None:
    """GARM_INSTANCE_ID with escape sequences: the one stderr line shows them escaped."""
    done = run_provider("GetInstance", config=provider_config, controller_id=controller_id,
                        instance_id=f"garm-{HOSTILE}")  # fmt: skip
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr
    assert stderr.count("\n") == 1 and stderr.endswith("\n")
    assert_no_raw_controls(stderr)
    assert ESCAPED in stderr


# -- operator commands ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "args"),
    [
        (["logs"], [f"x{HOSTILE}"]),
        (["status"], ["--controller-id", HOSTILE]),
        (["check"], ["--image", HOSTILE]),
        (["image", "build"], ["--from", HOSTILE, "--alias", "x", *UNUSED_RUNNER]),
    ],
    ids=["logs", "status", "check", "image-build"],
)
def test_operator_command_output_has_no_raw_controls(
    provider_bin: str, provider_config: Path, command: list[str], args: list[str]
) -> None:
    done = run_operator(provider_bin, *command, "--config", str(provider_config), *args)
    assert done.returncode == 1, done.stderr
    assert_no_raw_controls(done.stdout + done.stderr)
    assert ESCAPED in done.stdout + done.stderr


def test_image_build_progress_escapes_the_builders_status_file(
    provider_bin: str, provider_config: Path, lxd_client: pylxd.Client, lxd_env: LxdEnv
) -> None:
    """The builder's step file (written by whatever runs in the builder) is shown escaped."""
    build = RunningBuild(provider_bin, provider_config, "--from", lxd_env.image,
                         "--alias", f"x-{uuid.uuid4().hex[:6]}", *UNUSED_RUNNER)  # fmt: skip
    builder = lxd_client.instances.get(build.wait_for("waiting for cloud-init"))
    for directory in ("/var", "/var/lib", STATE_DIR):
        with contextlib.suppress(pylxd.exceptions.LXDAPIException):
            builder.files.mk_dir(directory)
    builder.files.put(f"{STATE_DIR}/step", f"step {HOSTILE}\n".encode())
    build.wait_for("step ")
    _, stderr = build.finish()
    assert f"cloud-init not started; step {ESCAPED}\n" in stderr
    assert_no_raw_controls(stderr)
    assert not lxd_client.instances.exists(builder_name(stderr))
