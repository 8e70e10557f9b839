"""Loading the reference's user-data cases (testdata/conformance) and building them."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from garm_provider_lxd.bootstrap import parse_bootstrap
from garm_provider_lxd.specs import parse_extra_specs
from garm_provider_lxd.userdata import build_user_data

CONFORMANCE = Path(__file__).resolve().parent.parent / "testdata" / "conformance"
INSTALL_SCRIPT = "/install_runner.sh"


def load_case(name: str) -> dict[str, Any]:
    case: dict[str, Any] = json.loads((CONFORMANCE / "cases" / f"{name}.json").read_text())
    return case


def build(case: dict[str, Any]) -> bytes:
    return build_user_data(parse_bootstrap(case), parse_extra_specs(case["extra_specs"]))


def install_script(document: dict[str, Any]) -> bytes:
    entries = [f for f in document["write_files"] if f["path"] == INSTALL_SCRIPT]
    assert len(entries) == 1
    return base64.b64decode(entries[0]["content"], validate=True)
