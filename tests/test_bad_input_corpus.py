"""The adversarial corpus (testdata/adversarial): every case ends as expected, cleanly and soon.

The cases that are one provider process run here, and so do those whose pool names a profile
(the profile made first); the others run in the tests named in testdata/adversarial/README.md
(SETTINGS below), which make the runner, signal, server or race they need.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pylxd
import pytest
from adversarial_corpus import Case, invocation, load_cases
from conftest import REPO_ROOT, LxdEnv
from corpus_runs import case_profile, check_outcome, instance_names, run_case

from garm_provider_lxd._native import LxdTransport

CASES = load_cases()
OFFLINE = [case for case in CASES if case.one_process and not case.needs_lxd]
ONLINE = [case for case in CASES if case.one_process and case.needs_lxd]
PROFILED = [case for case in CASES if "profile" in case.spec]
# Where the cases that are not one process run: the test that makes their setting, and what
# the test selects them by.
SETTINGS = {
    "operator (runner_file)": ("tests/test_logs_lxd.py", 'if "runner_file" in case.spec'),
    "operator (interrupt)": ("tests/test_image_build_lxd.py", 'if "interrupt" in case.spec'),
    "create (profile)": ("tests/test_bad_input_corpus.py", 'if "profile" in case.spec'),
    "validate (profile)": ("tests/test_bad_input_corpus.py", 'if "profile" in case.spec'),
    "race": ("tests/test_reliability_concurrency.py", 'load_cases(via="race")'),
    "transport": ("tests/test_response_cap.py", 'load_cases(via="transport")'),
    "host_addresses": ("tests/test_setup_ownership_lxd.py", 'load_cases(via="host_addresses")'),
}


def test_the_corpus_covers_every_kind_of_input() -> None:
    kinds = {case.kind for case in CASES}
    assert {"templates", "ca_bundles", "configs", "specs", "bootstrap", "profiles"} <= kinds
    assert {"operator", "race", "transport", "host_addresses"} <= kinds, kinds


def test_every_case_has_a_test_that_runs_it() -> None:
    for case in CASES:
        if case.one_process:
            continue
        setting = f"{case.via} ({case.setting_keys[0]})" if case.setting_keys else case.via
        test, selects = SETTINGS[setting]
        assert selects in (REPO_ROOT / test).read_text(), (case.name, test)


def test_a_misspelt_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "race").mkdir()
    (tmp_path / "race" / "typo.json").write_text(
        '{"about": "a", "via": "race", "hold_loser_until": "winner-done", "rounds": 1,'
        ' "expect_exit": 0, "expect_loser_exit": [31], "expect_loser_stderr": [],'
        ' "expect_loser_exits": [1]}'
    )
    with pytest.raises(ValueError, match=r"^race/typo: unknown key 'expect_loser_exits'"):
        load_cases(tmp_path)


@pytest.mark.parametrize(
    ("kind", "case", "refusal"),
    [
        (  # a profile nobody names: the case would judge the pool without it
            "profiles",
            '"via": "validate", "profile": {"config": {"raw.lxc": ""}}',
            "the pool must name its profile",
        ),
        ("profiles", '"via": "validate", "extra_specs": {"profiles": ["{profile}"]}', "needs"),
        (  # GARM's ValidatePoolInfo has no flavor to name it by
            "profiles",
            '"via": "validate", "profile": {"config": {}}, "bootstrap": {"flavor": "{profile}"}',
            "the pool must name its profile",
        ),
        ("specs", '"via": "config", "profile": {"config": {}}', "unknown key 'profile'"),
        (
            "operator",
            '"via": "operator", "argv": ["image", "build", "--config", "{config}"],'
            ' "interrupt": {"signal": "SIGKILL", "after": "creating builder"}',
            "interrupt needs a signal of",
        ),
        (
            "operator",
            '"via": "operator", "argv": ["logs", "x"],'
            ' "interrupt": {"signal": "SIGINT", "after": "creating builder"}',
            "interrupt is for image build",
        ),
    ],
)
def test_a_setting_that_cannot_run_is_refused(
    tmp_path: Path, kind: str, case: str, refusal: str
) -> None:
    (tmp_path / kind).mkdir()
    (tmp_path / kind / "bad.json").write_text(f'{{"about": "a", "expect_exit": 1, {case}}}')
    with pytest.raises(ValueError, match=rf"^{kind}/bad: .*{re.escape(refusal)}"):
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
        assert call.instance_name not in instance_names(transport), case.name


@pytest.mark.parametrize("case", PROFILED, ids=[case.name for case in PROFILED])
def test_lxd_profile_case(
    case: Case,
    provider_bin: str,
    tmp_path: Path,
    lxd_env: LxdEnv,
    lxd_client: pylxd.Client,
    transport: LxdTransport,
    controller_id: str,
) -> None:
    """The profile the pool names is judged like its extra specs: a dangerous one refuses the
    create (leaving nothing) or the pool, with one line naming the profile and the key."""
    with case_profile(case, lxd_client, controller_id) as profile:
        call = invocation(case, tmp_path, lxd_env.socket, controller_id, profile=profile)
        done = run_case(case, call, provider_bin)
        check_outcome(case, done, profile=profile)
        if call.instance_name and done.returncode != 0:
            assert call.instance_name not in instance_names(transport), case.name
