"""The adversarial corpus (testdata/adversarial): every case ends as expected, cleanly and soon.

The cases that are one provider process run here; the others run in the tests named in
testdata/adversarial/README.md (SETTINGS below), which make the runner, server or race they need.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from adversarial_corpus import Case, invocation, load_cases
from conftest import REPO_ROOT, LxdEnv
from corpus_runs import check_outcome, run_case

from garm_provider_lxd._native import LxdTransport, json_loads

CASES = load_cases()
OFFLINE = [case for case in CASES if case.one_process and not case.needs_lxd]
ONLINE = [case for case in CASES if case.one_process and case.needs_lxd]
# Where the cases that are not one process run: the test that makes their setting.
SETTINGS = {
    "operator (runner_file)": "tests/test_logs_lxd.py",
    "race": "tests/test_reliability_concurrency.py",
    "transport": "tests/test_response_cap.py",
    "host_addresses": "tests/test_setup_ownership.py",
}


def test_the_corpus_covers_every_kind_of_input() -> None:
    kinds = {case.kind for case in CASES}
    assert {"templates", "ca_bundles", "configs", "specs", "bootstrap"} <= kinds, kinds
    assert {"operator", "race", "transport", "host_addresses"} <= kinds, kinds


def test_every_case_has_a_test_that_runs_it() -> None:
    for case in CASES:
        if case.one_process:
            continue
        setting = "operator (runner_file)" if case.via == "operator" else case.via
        test = REPO_ROOT / SETTINGS[setting]
        assert f'load_cases(via="{case.via}")' in test.read_text(), (case.name, test)


def test_a_misspelt_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "race").mkdir()
    (tmp_path / "race" / "typo.json").write_text(
        '{"about": "a", "via": "race", "hold_loser_until": "winner-done", "rounds": 1,'
        ' "expect_exit": 0, "expect_loser_exit": [31], "expect_loser_stderr": [],'
        ' "expect_loser_exits": [1]}'
    )
    with pytest.raises(ValueError, match=r"^race/typo: unknown key 'expect_loser_exits'"):
        load_cases(tmp_path)


@pytest.mark.parametrize("case", OFFLINE, ids=[case.name for case in OFFLINE])
def test_offline_case(case: Case, provider_bin: str, tmp_path: Path) -> None:
    call = invocation(case, tmp_path, "/nonexistent/unix.socket", str(uuid.uuid4()))
    check_outcome(case, run_case(case, call, provider_bin))


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
    done = run_case(case, call, provider_bin)
    check_outcome(case, done)
    if call.instance_name and done.returncode != 0:
        # A refused create leaves nothing behind, in any project.
        status, body = transport.request("GET", "/1.0/instances?all-projects=true", None, None)
        assert status == 200, body[:200]
        urls = json_loads(body)["metadata"]
        names = {url.split("?")[0].rsplit("/", 1)[-1] for url in urls}
        assert call.instance_name not in names, case.name
