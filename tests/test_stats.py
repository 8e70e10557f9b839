"""`garm-provider-lxd stats`: the command record read back (in-process, no LXD needed)."""

from __future__ import annotations

import io
import json
import re
import time
import xml.dom.minidom
from pathlib import Path
from typing import Any

from garm_provider_lxd.admin.stats import percentile
from garm_provider_lxd.cli import main


def stamp(seconds_ago: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - seconds_ago))


def record(command: str, pool: str, wall: float, **extra: Any) -> dict[str, Any]:
    return {"time": stamp(60), "command": command, "interface": "v0.1.1", "controller": "c",
            "pool": pool, "instance": "", "exit": 0, "wall": wall, "lxd": wall / 2,
            "lxd_operations": 0.0, "lxd_requests": 3, **extra}  # fmt: skip


def write_log(tmp_path: Path, records: list[dict[str, Any]], tail: str = "") -> Path:
    log = tmp_path / "commands.log"
    log.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)
    config = tmp_path / "provider.toml"
    config.write_text(f'unix_socket_path = "/s"\n[diagnostics]\ncommand_log = "{log}"\n')
    return config


class Output(io.BytesIO):
    """stdout that outlives the text wrapper the command puts around it (and closes)."""

    def close(self) -> None:
        pass


def stats(config: Path, *args: str) -> tuple[int, str, str]:
    out, err = Output(), io.StringIO()
    code = main(["stats", "--config", str(config), *args], environ={}, stdout=out, stderr=err)
    return code, out.getvalue().decode(), err.getvalue()


def sample(tmp_path: Path) -> Path:
    creates = [record("CreateInstance", "pool-a", float(wall)) for wall in range(1, 101)]
    failed = [
        record(
            "CreateInstance",
            "pool-a",
            2.0,
            exit=1,
            instance=f"garm-{i}",
            error=f"create instance garm-{i} from image x: LXD: boom",
        )
        for i in range(3)
    ]
    other = record("CreateInstance", "pool-b", 9.0, exit=1, instance="garm-9", error="other")
    old = {**record("DeleteInstance", "pool-a", 1.0), "time": stamp(3 * 86400)}
    gone = record("DeleteInstance", "pool-a", 0.5, exit=30)
    not_up = record("DeleteInstance", "pool-a", 1.5, did_not_come_up=DOWNLOAD_FAILED)
    return write_log(tmp_path, [*creates, *failed, other, old, gone, not_up], tail='{"torn": ')


DOWNLOAD_FAILED = "last install status: runner install failed: failed to download tools"


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert [percentile(values, q) for q in (0.5, 0.9, 0.99)] == [50.0, 90.0, 99.0]
    assert percentile([], 0.5) == 0.0
    assert percentile([3.0], 0.99) == 3.0


def test_json_counts_failures_and_groups_reasons(tmp_path: Path) -> None:
    code, out, err = stats(sample(tmp_path), "--json")
    assert (code, err) == (0, "")
    summary = json.loads(out)
    assert summary["unreadable_lines"] == 1
    rows = {(r["command"], r["pool"]): r for r in summary["rows"]}
    create = rows[("CreateInstance", "pool-a")]
    assert (create["count"], create["failures"]) == (103, 3)
    assert create["reasons"] == [["create instance <instance> from image x: LXD: boom", 3]]
    delete = rows[("DeleteInstance", "pool-a")]
    assert (delete["count"], delete["failures"]) == (3, 0)  # exit 30 is not a failure
    # The delete of a runner that did not come up succeeded; the runner is counted apart.
    assert delete["did_not_come_up"] == 1
    assert delete["not_up_reasons"] == [[DOWNLOAD_FAILED, 1]]
    assert create["did_not_come_up"] == 0


def test_text_report_shows_the_runners_that_did_not_come_up(tmp_path: Path) -> None:
    code, out, _ = stats(sample(tmp_path))
    assert code == 0
    assert f"        1 runners did not come up:\n        1 x {DOWNLOAD_FAILED}\n" in out


def test_since_and_pool_filter(tmp_path: Path) -> None:
    config = sample(tmp_path)
    rows = json.loads(stats(config, "--json", "--since", "1d")[1])["rows"]
    assert {(r["command"], r["pool"]): r["count"] for r in rows}[("DeleteInstance", "pool-a")] == 2
    rows = json.loads(stats(config, "--json", "--pool", "pool-b")[1])["rows"]
    assert [(r["command"], r["pool"], r["failures"]) for r in rows] == [
        ("CreateInstance", "pool-b", 1)
    ]


def test_prometheus_textfile_format(tmp_path: Path) -> None:
    code, out, _ = stats(sample(tmp_path), "--prometheus")
    assert code == 0
    sample_line = re.compile(r'^[a-z_]+\{(command="[A-Za-z]+",)?pool="[^"]*"'
                             r'(,quantile="[0-9.]+")?\} [0-9.]+$')  # fmt: skip
    for line in out.splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or sample_line.match(line)
    assert 'garm_provider_lxd_command_failures{command="CreateInstance",pool="pool-a"} 3' in out
    assert 'garm_provider_lxd_runners_not_up{pool="pool-a"} 1' in out
    assert (
        'garm_provider_lxd_command_wall_seconds{command="CreateInstance",pool="pool-a",'
        'quantile="0.99"} 99.0'
    ) in out


def test_html_report_is_self_contained_and_escapes_what_it_shows(tmp_path: Path) -> None:
    hostile = "<script>alert(1)</script>\x1b]0;x\x07"
    config = write_log(
        tmp_path,
        [record("CreateInstance", hostile, 1.0, exit=1, error=hostile),
         record("CreateInstance", "pool-a", 2.0)],
    )  # fmt: skip
    page = tmp_path / "report.html"
    code, _, err = stats(config, "--html", str(page))
    assert (code, err) == (0, "")
    html = page.read_text()
    assert "<script" not in html and "\x1b" not in html
    assert "&lt;script&gt;" in html
    svgs = re.findall(r"<svg.*?</svg>", html, re.S)
    assert len(svgs) == 2
    for svg in svgs:
        xml.dom.minidom.parseString(svg)  # well-formed
    assert "http" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_prometheus_labels_show_control_characters_as_escapes(tmp_path: Path) -> None:
    """A tampered log's pool id: no raw ESC or BEL reaches the textfile (or a terminal)."""
    config = write_log(tmp_path, [record("DeleteInstance", 'p\x1b]0;x\x07"\\', 1.0)])
    code, out, _ = stats(config, "--prometheus")
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out
    assert 'garm_provider_lxd_runners_not_up{pool="p\\\\x1b]0;x\\\\x07\\"\\\\"} 0' in out


def test_html_report_is_private_also_when_it_replaces_a_file(tmp_path: Path) -> None:
    config = write_log(tmp_path, [record("CreateInstance", "pool-a", 1.0, exit=1, error="e")])
    page = tmp_path / "report.html"
    page.write_text("old")
    page.chmod(0o644)
    assert stats(config, "--html", str(page))[0] == 0
    assert oct(page.stat().st_mode & 0o777) == "0o600"


def test_text_report_escapes_and_missing_log_is_one_line(tmp_path: Path) -> None:
    config = write_log(tmp_path, [record("CreateInstance", "p\x1b[2J", 1.0)])
    code, out, _ = stats(config)
    assert code == 0 and "\x1b" not in out and "p\\x1b[2J" in out
    (tmp_path / "commands.log").unlink()
    code, out, err = stats(config)
    assert code == 1 and out == ""
    assert "no such file" in err and err.count("\n") == 1


def test_overlong_and_unterminated_lines_are_skipped_in_bounded_reads(tmp_path: Path) -> None:
    good = json.dumps(record("CreateInstance", "p", 1.0))
    config = write_log(tmp_path, [], tail=f"{good}\n{'x' * (200 << 10)}\n{good}\n{'y' * 70000}")
    summary = json.loads(stats(config, "--json")[1])
    assert (summary["records"], summary["unreadable_lines"]) == (2, 2)
