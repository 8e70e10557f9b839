"""End to end: GARM's CreateInstance boots a real cloud-init container whose runner reports idle.

Every scenario runs the installed provider exactly as GARM does (`run_provider`), lets the
container's cloud-init run the user data against a GARM-like server (tests/e2e/fake_garm.py)
inside the test LXD's network namespace, checks the callbacks and the container, then runs
DeleteInstance and checks nothing is left. See docs/e2e.md.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import RecordingLxd, run_operator
from e2e.driver import GARM_LINUX_WRAPPER, Runner, Scenario, b64
from e2e.harness import SEED_TEMPLATE, runner_service
from e2e.runner_tarball import GO_FILENAME

from garm_provider_lxd.config import parse_config
from garm_provider_lxd.postmortem import inspect_before_delete

pytestmark = pytest.mark.e2e
pytest_plugins = ["e2e.fixtures"]


def assert_idle(s: Scenario, runner: Runner, agent_id: int | None) -> None:
    """Create returned one running instance and the runner went idle with this agent id."""
    assert runner.create.returncode == 0, runner.create.stderr.decode()
    instance = runner.instance
    assert instance["provider_id"] == runner.name
    assert instance["status"] == "running"
    assert any(a["address"].startswith("10.") for a in instance["addresses"]), instance
    statuses = [st["status"] for st in runner.statuses]
    assert statuses, f"{runner.name} never called back"
    assert statuses[0] == "installing"
    assert statuses[-1] == "idle", runner.statuses
    assert "failed" not in statuses
    assert runner.final.get("agent_id") == agent_id
    info = [e for e in s.garm.events(runner.name) if e["kind"] == "system-info"]
    assert [e["body"]["os_name"] for e in info] == ["Debian GNU/Linux"]
    assert s.service_active(runner) == "active"


def assert_deleted(s: Scenario, runner: Runner) -> None:
    """DeleteInstance succeeds and leaves neither the instance nor its volume."""
    done = s.delete(runner)
    assert done.returncode == 0, done.stderr.decode()
    assert s.leftovers(runner.name) == []


def run_to_idle(s: Scenario, label: str, prefix: str, *, jit: bool, **kwargs: Any) -> Runner:
    """Create one runner, wait for its final status and record the timing."""
    runner = s.wait(s.create(prefix, jit=jit, **kwargs))
    s.record(label, [runner])
    return runner


def test_garm_wrapper_template(scenario: Scenario) -> None:
    """GARM's injected wrapper fetches install-script/ and that script registers the runner."""
    specs = {"runner_install_template": b64(GARM_LINUX_WRAPPER)}
    runner = run_to_idle(scenario, "GARM wrapper (JIT)", "wrap", jit=True, extra_specs=specs)
    # GARM's own JIT script reports no agent id: GARM already knows it from the JIT config.
    assert_idle(scenario, runner, None)
    gets = [e["path"] for e in scenario.garm.events(runner.name) if e["kind"] == "get"]
    assert gets[0] == "/api/v1/metadata/install-script"
    assert_deleted(scenario, runner)


def test_default_script_jit(scenario: Scenario) -> None:
    """The provider's own install script installs the JIT credentials GARM serves."""
    runner = run_to_idle(scenario, "default script (JIT)", "jit", jit=True)
    assert_idle(scenario, runner, runner.registration["agent_id"])
    files = scenario.sh(runner, "cd /home/runner/actions-runner && stat -c '%n %U %a' .runner "
                        ".credentials .credentials_rsaparams")  # fmt: skip
    assert files.stdout.split("\n")[0].split()[:2] == [".runner", "runner"], files
    assert_deleted(scenario, runner)


def test_default_script_registration_token(scenario: Scenario) -> None:
    """Without JIT the script fetches one registration token and runs config.sh with it."""
    runner = run_to_idle(scenario, "default script (registration token)", "tok", jit=False)
    assert_idle(scenario, runner, runner.registration["agent_id"])
    fetched = [
        e for e in scenario.garm.events(runner.name) if "registration-token" in e.get("path", "")
    ]
    assert [e["code"] for e in fetched] == [200]
    labels = scenario.sh(runner, "cat /home/runner/actions-runner/.labels").stdout.strip()
    assert labels == ",".join(runner.registration["labels"])
    assert_deleted(scenario, runner)


def test_readme_template_with_extra_context(scenario: Scenario) -> None:
    """The upstream README template renders .ExtraContext and its extra step runs after idle."""
    go_url = f"{scenario.garm.base_url}/tools/{GO_FILENAME}"
    specs = {
        "runner_install_template": b64(SEED_TEMPLATE.read_bytes()),
        "extra_context": {"GolangDownloadURL": go_url},
    }
    runner = run_to_idle(scenario, "README template + extra_context", "seed", jit=False,
                         extra_specs=specs)  # fmt: skip
    assert_idle(scenario, runner, runner.registration["agent_id"])
    assert scenario.garm.wait_for(None, "download", f"/tools/{GO_FILENAME}")
    assert scenario.until(runner, "test -x /usr/local/go/bin/go")
    assert_deleted(scenario, runner)


def test_pre_install_scripts(scenario: Scenario) -> None:
    """Pre-install scripts run as root, in name order, before the runner install starts."""
    script = '#!/bin/sh\necho "$(date +%s.%N) $(id -u) {}" >> /var/log/garm-e2e-pre-install.log\n'
    specs = {
        "disable_updates": True,
        "pre_install_scripts": {n: b64(script.format(n)) for n in ("20-second", "10-first")},
    }
    runner = run_to_idle(scenario, "pre-install scripts", "pre", jit=True, extra_specs=specs)
    assert_idle(scenario, runner, runner.registration["agent_id"])
    log = scenario.sh(runner, "cat /var/log/garm-e2e-pre-install.log").stdout.split("\n")
    ran = [line.split() for line in log if line]
    assert [(uid, name) for _, uid, name in ran] == [("0", "10-first"), ("0", "20-second")]
    assert float(ran[-1][0]) < runner.statuses[0]["t"]
    assert scenario.sh(runner, "test -e /garm-pre-install").returncode == 1
    assert_deleted(scenario, runner)


def test_ca_bundle_is_trusted(scenario: Scenario, e2e_ca: tuple[Path, Path, Path]) -> None:
    """The pool's CA bundle is trusted system-wide: curl accepts a certificate it signed."""
    bundle = b64(e2e_ca[0].read_bytes())
    runner = run_to_idle(scenario, "CA bundle", "ca", jit=True, **{"ca-cert-bundle": bundle})
    assert_idle(scenario, runner, runner.registration["agent_id"])
    done = scenario.sh(runner, f"curl -sS --max-time 20 {scenario.garm.tls_base_url}/healthz")
    assert (done.returncode, done.stdout) == (0, "ok\n"), done.stderr
    assert_deleted(scenario, runner)


def fake_ssh_key(comment: str) -> str:
    """A well-formed ed25519 public key line (random key material)."""
    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + secrets.token_bytes(32)
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


def test_ssh_keys(scenario: Scenario) -> None:
    """GARM's SSH keys end up, once each, in the runner user's authorized_keys."""
    keys = [fake_ssh_key("e2e-one"), fake_ssh_key("e2e-two")]
    runner = run_to_idle(scenario, "SSH keys", "ssh", jit=True, **{"ssh-keys": [*keys, keys[0]]})
    assert_idle(scenario, runner, runner.registration["agent_id"])
    found = scenario.sh(runner, "cat /home/runner/.ssh/authorized_keys").stdout.splitlines()
    assert sorted(line for line in found if line.startswith("ssh-")) == sorted(keys)
    owner = scenario.sh(runner, "stat -c %U /home/runner/.ssh/authorized_keys").stdout.strip()
    assert owner == "runner"
    assert_deleted(scenario, runner)


def test_proxy_settings(scenario: Scenario, bridge_address: str) -> None:
    """Proxy settings are where apt reads them; no_proxy keeps GARM's own address direct."""
    proxy = f"http://{bridge_address}:3128"
    config = {"http_proxy": proxy, "https_proxy": proxy, "no_proxy": f"{bridge_address},localhost"}
    runner = run_to_idle(scenario, "proxy", "proxy", jit=True, proxy_config=config)
    assert_idle(scenario, runner, runner.registration["agent_id"])
    for scheme in ("http", "https"):
        done = scenario.sh(runner, f"apt-config dump Acquire::{scheme}::Proxy")
        assert f'Acquire::{scheme}::Proxy "{proxy}";' in done.stdout, done
    assert_deleted(scenario, runner)


def test_enable_boot_debug(scenario: Scenario) -> None:
    """enable_boot_debug traces the install script into cloud-init's output, without tokens."""
    specs = {"enable_boot_debug": True}
    runner = run_to_idle(scenario, "enable_boot_debug", "debug", jit=True, extra_specs=specs)
    assert_idle(scenario, runner, runner.registration["agent_id"])
    log = scenario.sh(runner, "cat /var/log/cloud-init-output.log").stdout
    assert any(line.startswith("+ ") for line in log.splitlines()), log[-2000:]
    assert runner.registration["token"] not in log
    assert_deleted(scenario, runner)


def test_refused_credential_reports_failed(scenario: Scenario) -> None:
    """When GARM refuses a credential the runner reports failed; create itself succeeded."""
    register = {"refuse": ["credentials/credentials"]}
    runner = run_to_idle(scenario, "refused credential", "fail", jit=True, register=register)
    assert runner.create.returncode == 0, runner.create.stderr.decode()
    assert runner.instance["status"] == "running"
    statuses = [st["status"] for st in runner.statuses]
    assert statuses[-1] == "failed" and "idle" not in statuses, runner.statuses
    assert "credentials" in runner.final["message"]
    assert scenario.service_active(runner) != "active"
    assert_deleted(scenario, runner)


def test_failed_download_leaves_a_postmortem(
    scenario: Scenario, tmp_path: Path, provider_bin: str
) -> None:
    """A tools URL that 404s: the runner reports failed, DeleteInstance keeps a post-mortem
    whose cloud-init output shows the failed download, and `logs` and `stats` show it."""
    config = tmp_path / "diagnostics.toml"
    config.write_text(
        f"{scenario.config.read_text()}\n[diagnostics]\n"
        f'command_log = "{tmp_path}/commands.log"\npostmortem_dir = "{tmp_path}/postmortems"\n'
    )
    s = dataclasses.replace(scenario, config=config)
    missing = {"download_url": f"{s.garm.base_url}/tools/no-such-runner.tar.gz"}
    runner = run_to_idle(s, "tools URL 404 (post-mortem)", "dl404", jit=True, register=missing)
    assert runner.create.returncode == 0, runner.create.stderr.decode()
    assert runner.final.get("status") == "failed", runner.statuses
    assert_deleted(s, runner)
    shown = run_operator(provider_bin, "logs", "--config", str(config), runner.name)
    assert shown.returncode == 0, shown.stderr
    assert "is gone; post-mortem saved" in shown.stdout
    assert "runner install failed: failed to download tools" in shown.stdout
    assert "curl: (22) The requested URL returned error: 404" in shown.stdout
    stats = run_operator(provider_bin, "stats", "--config", str(config), "--json")
    assert stats.returncode == 0, stats.stderr
    rows = {row["command"]: row for row in json.loads(stats.stdout)["rows"]}
    assert {command: row["count"] for command, row in rows.items()} == {
        "CreateInstance": 1, "DeleteInstance": 1,
    }  # fmt: skip
    # Both commands succeeded; the runner did not come up, and stats says why.
    assert rows["DeleteInstance"]["did_not_come_up"] == 1
    ((why, _),) = rows["DeleteInstance"]["not_up_reasons"]
    assert "failed to download tools" in why, why


def test_healthy_runners_leave_no_postmortem(scenario: Scenario, tmp_path: Path) -> None:
    """Runners that came up, with the provider's script and with GARM's wrapper: their real
    console shows it (rules 4 and 5 of docs/operating-runners.md), so judging them reads no
    file; that console GET drains LXD's ring buffer, and DeleteInstance then reads the end of
    their cloud-init output over SFTP, judges them healthy too and keeps nothing."""
    config = tmp_path / "diagnostics.toml"
    config.write_text(
        f'{scenario.config.read_text()}\n[diagnostics]\npostmortem_dir = "{tmp_path}/postmortems"\n'
    )
    s = dataclasses.replace(scenario, config=config)
    wrapper = {"runner_install_template": b64(GARM_LINUX_WRAPPER)}
    runners = [
        run_to_idle(s, "default script (post-mortems on)", "pmok", jit=True),
        run_to_idle(s, "GARM wrapper (post-mortems on)", "pmwrap", jit=True, extra_specs=wrapper),
    ]
    lxd = RecordingLxd(parse_config(config.read_bytes()))
    for runner in runners:
        assert runner.final.get("status") == "idle", runner.statuses
        lxd.sent = []
        meta = lxd.get_instance(runner.name)[0]
        lxd.sent.clear()
        warnings: list[str] = []
        inspect_before_delete(lxd, runner.name, meta, lxd.config, warnings.append)
        console = f"/1.0/instances/{runner.name}/console"
        assert (lxd.sent, warnings) == ([("GET", console)], [])
        done = s.delete(runner)
        assert (done.returncode, done.stderr) == (0, b""), done.stderr.decode()
    assert not (tmp_path / "postmortems").exists()


def test_five_runners_at_once(scenario: Scenario) -> None:
    """Five CreateInstance processes at once: all five runners go idle, then all are deleted."""
    with ThreadPoolExecutor(max_workers=5) as pool:
        runners = list(pool.map(lambda i: scenario.create(f"many{i}", jit=True), range(5)))
        runners = list(pool.map(scenario.wait, runners))
    scenario.record("five at once", runners)
    for runner in runners:
        assert_idle(scenario, runner, runner.registration["agent_id"])
    assert len({runner_service(r.name) for r in runners}) == 5
    with ThreadPoolExecutor(max_workers=5) as pool:
        deleted = list(pool.map(scenario.delete, runners))
    assert [d.returncode for d in deleted] == [0] * 5, [d.stderr for d in deleted]
    assert [scenario.leftovers(r.name) for r in runners] == [[]] * 5
