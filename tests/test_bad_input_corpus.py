"""The adversarial corpus (testdata/adversarial): every case ends as expected, cleanly and soon."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import REPO_ROOT, LxdEnv

from garm_provider_lxd._native import LxdTransport, json_loads

sys.path.insert(0, str(REPO_ROOT / "testdata"))
from adversarial_corpus import Case, Invocation, invocation, load_cases
from garm_harness import run_provider

# Generous: the provider's own bound is 2 s of CPU; a loaded CI machine stretches wall time.
CASE_TIMEOUT = 60.0
# The CLI's cap on its one stderr line, plus its "garm-provider-lxd: " prefix and newline.
MAX_STDERR_LINE = 520
# What must never reach an operator's terminal raw (messages.for_terminal escapes it): C0, DEL,
# C1, and invisible format characters (bidirectional overrides, zero-width characters, ...).
TERMINAL_CONTROLS = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]"
)

CASES = load_cases()
OFFLINE = [case for case in CASES if not case.needs_lxd]
ONLINE = [case for case in CASES if case.needs_lxd]


def test_the_corpus_covers_every_kind_of_input() -> None:
    kinds = {case.name.split("/")[0] for case in CASES}
    assert {"templates", "ca_bundles", "configs", "specs", "bootstrap"} <= kinds, kinds


def _run(case: Case, call: Invocation, provider_bin: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return run_provider(
            provider_bin, call.env, call.stdin, timeout=CASE_TIMEOUT, args=call.argv_tail
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{case.name}: still running after {CASE_TIMEOUT:.0f} s")


def _check_outcome(case: Case, done: subprocess.CompletedProcess[bytes]) -> None:
    stderr = done.stderr.decode(errors="replace")
    if case.secret:
        assert case.secret.encode() not in done.stdout + done.stderr, case.name
    assert done.returncode == case.expect_exit, (case.name, done.returncode, stderr[:600])
    if done.returncode == 0:
        return
    assert done.stdout == b"", (case.name, done.stdout[:200])
    assert len(stderr.splitlines()) == 1, (case.name, stderr[:600])
    assert len(stderr) <= MAX_STDERR_LINE, (case.name, len(stderr), stderr[:600])
    assert "internal error" not in stderr and "Traceback" not in stderr, (case.name, stderr)
    assert case.expect_stderr in stderr, (case.name, stderr)
    assert not TERMINAL_CONTROLS.search(stderr.removesuffix("\n")), (case.name, stderr)


@pytest.mark.parametrize("case", OFFLINE, ids=[case.name for case in OFFLINE])
def test_offline_case(case: Case, provider_bin: str, tmp_path: Path) -> None:
    call = invocation(case, tmp_path, "/nonexistent/unix.socket", str(uuid.uuid4()))
    _check_outcome(case, _run(case, call, provider_bin))


@pytest.mark.parametrize("case", ONLINE, ids=[case.name for case in ONLINE])
def test_lxd_case(
    case: Case,
    provider_bin: str,
    tmp_path: Path,
    lxd_env: LxdEnv,
    transport: LxdTransport,
    controller_id: str,
) -> None:
    call = invocation(case, tmp_path, lxd_env.socket, controller_id)
    done = _run(case, call, provider_bin)
    _check_outcome(case, done)
    if call.instance_name and done.returncode != 0:
        # A refused create leaves nothing behind, in any project.
        status, body = transport.request("GET", "/1.0/instances?all-projects=true", None, None)
        assert status == 200, body[:200]
        urls = json_loads(body)["metadata"]
        names = {url.split("?")[0].rsplit("/", 1)[-1] for url in urls}
        assert call.instance_name not in names, case.name
