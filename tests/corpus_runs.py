"""Running one adversarial case (testdata/adversarial) as one provider process, and judging how
it ended: shared by the tests that run corpus cases, with the profile a case's pool names."""

from __future__ import annotations

import contextlib
import re
import subprocess
import uuid
from collections.abc import Iterator

import pylxd
import pytest
from adversarial_corpus import Case, Invocation, profile_body
from conftest import delete_controller_instances
from garm_harness import run_provider

from garm_provider_lxd._native import LxdTransport, json_loads

# Generous: the provider's own bound is 2 s of CPU; a loaded CI machine stretches wall time.
CASE_TIMEOUT = 60.0
# The CLI's cap on its one stderr line, plus its "garm-provider-lxd: " prefix and newline.
MAX_STDERR_LINE = 520
# What must never reach an operator's terminal raw (messages.for_terminal escapes it): C0, DEL,
# C1, and invisible format characters (bidirectional overrides, zero-width characters, ...).
TERMINAL_CONTROLS = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]"
)


def run_case(case: Case, call: Invocation, provider_bin: str) -> subprocess.CompletedProcess[bytes]:
    """Run the case's provider process; fail the test if it does not end in CASE_TIMEOUT."""
    try:
        return run_provider(
            provider_bin, call.env, call.stdin, timeout=CASE_TIMEOUT, args=call.argv_tail
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{case.name}: still running after {CASE_TIMEOUT:.0f} s")


def check_outcome(
    case: Case, done: subprocess.CompletedProcess[bytes], runner: str = "", profile: str = ""
) -> None:
    """The exit code the case expects; a failure is one short line, escaped, naming the cause,
    with nothing on stdout; the case's secret nowhere."""
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
    assert case.expected_stderr(runner, profile) in stderr, (case.name, stderr)
    assert not TERMINAL_CONTROLS.search(stderr.removesuffix("\n")), (case.name, stderr)


@contextlib.contextmanager
def case_profile(case: Case, client: pylxd.Client, controller_id: str) -> Iterator[str]:
    """Make the profile the case's pool names, in the default project, under a fresh name; yield
    the name and delete the profile afterwards, whatever happened."""
    name = f"adv-profile-{uuid.uuid4().hex[:10]}"
    client.api.profiles.post(json=profile_body(case, name))
    try:
        yield name
    finally:
        # LXD keeps a profile in use: first the runner of a create that was not refused.
        delete_controller_instances(client, controller_id)
        client.profiles.get(name).delete()


def instance_names(transport: LxdTransport) -> set[str]:
    """The names of the instances in every project of the server."""
    status, body = transport.request("GET", "/1.0/instances?all-projects=true", None, None)
    assert status == 200, body[:200]
    return {url.split("?")[0].rsplit("/", 1)[-1] for url in json_loads(body)["metadata"]}
