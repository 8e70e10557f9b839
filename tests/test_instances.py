"""What a runner instance is on LXD, as both programs read it: the GARM id rule and the filter.

The id rule used to have two copies that disagreed (the GARM commands' accepted non-ASCII
letters, the operator commands' did not); the ASCII-only rule won (docs/operating-runners.md,
"Which ids are accepted"). IPv4 reading was Rust in GetInstance and Python in `status`, which
differed on an address without a family and on the order; the Rust rule won (state_ipv4). Which
runner a name means (choose_runner) had a copy in each program
too; one rule now serves both, with whose runners count as its one parameter
(docs/operating-runners.md, "Which runner a name means"). The unit tests need no LXD; the last
one lists on the real test LXD.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import LxdEnv

from garm_provider_lxd.config import parse_config
from garm_provider_lxd.errors import NotFoundError, ProviderError
from garm_provider_lxd.instances import (
    TAG_CONTROLLER,
    TAG_POOL,
    NotARunner,
    choose_runner,
    instance_filter,
    is_garm_id,
    listing_filter,
)
from garm_provider_lxd.provider import Provider

UUID = "8c1b6a4e-2f0d-4c55-9d1e-3a7b2c9e0f11"
# Letters and digits to Python's isalnum, but not ASCII: the rule that lost accepted them.
NON_ASCII = ["contrôleur", "ctl\u0663", "pool\uff21", "İd"]


@pytest.mark.parametrize("value", [UUID, "a", "pool_1.2-b", "ABC"])
def test_a_garm_id_is_ascii_letters_digits_dash_underscore_dot(value: str) -> None:
    assert is_garm_id(value)


@pytest.mark.parametrize(
    "value", ["", "a b", "a'b", 'a"b', "a and b", "a\nb", "a/b", "a=b", *NON_ASCII]
)
def test_anything_else_is_no_garm_id(value: str) -> None:
    assert not is_garm_id(value)


def test_the_filter_selects_every_tag_given() -> None:
    assert instance_filter({TAG_CONTROLLER: UUID, TAG_POOL: "p-1"}) == (
        f"config.{TAG_CONTROLLER} eq {UUID} and config.{TAG_POOL} eq p-1"
    )


@pytest.mark.parametrize("value", NON_ASCII)
def test_no_filter_for_a_value_that_is_no_garm_id(value: str) -> None:
    assert instance_filter({TAG_CONTROLLER: UUID, TAG_POOL: value}) == ""


def test_a_listing_filter_keeps_instances_on_unreachable_members() -> None:
    """Both programs list with this one clause: the tags, or LXD's Error entries without config
    (an instance on a cluster member LXD cannot reach)."""
    assert listing_filter({TAG_CONTROLLER: UUID}) == (
        f"config.{TAG_CONTROLLER} eq {UUID} or status eq Error"
    )
    assert listing_filter({}) == ""
    assert listing_filter({TAG_CONTROLLER: UUID, TAG_POOL: NON_ASCII[0]}) == ""


@pytest.mark.lxd
def test_list_with_a_non_ascii_controller_sends_no_filter_on_real_lxd(lxd_env: LxdEnv) -> None:
    text = f'unix_socket_path = "{lxd_env.socket}"\nproject_name = "default"\n'
    provider = Provider(parse_config(text.encode()), "contrôleur-garm-instances")
    paths: list[str] = []
    send = provider.lxd.raw

    def recorded(method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        paths.append(path)
        return send(method, path, *args, **kwargs)

    provider.lxd.raw = recorded  # type: ignore[method-assign]  # a spy; the request still goes out
    assert provider.list_instances("") == b"[]"
    listings = [path for path in paths if path.startswith("/1.0/instances?")]
    assert listings and not any("filter" in path for path in listings)


OTHER = "0d6f1c2b-7a44-4e1e-8b0a-5c2f9e3d1a77"
PROJECTS = ("runners", "default")


def _meta(controller: str | None) -> dict[str, Any]:
    return {"config": {TAG_CONTROLLER: controller} if controller else {"user.other": "x"}}


@pytest.mark.parametrize("controller_id", [UUID, None])
def test_the_one_runner_found_is_chosen_beside_other_instances(controller_id: str | None) -> None:
    found = [("untagged", _meta(None)), ("ours", _meta(UUID))]
    assert choose_runner("r", PROJECTS, found, controller_id=controller_id) == "ours"


def test_garm_counts_only_its_controllers_runner_and_logs_counts_any() -> None:
    found = [("theirs", _meta(OTHER)), ("ours", _meta(UUID))]
    assert choose_runner("r", PROJECTS, found, controller_id=UUID) == "ours"
    with pytest.raises(ProviderError, match=r"^instance r is a runner in several projects"):
        choose_runner("r", PROJECTS, found, controller_id=None)


@pytest.mark.parametrize(
    ("controller_id", "whose"),
    [(UUID, "this GARM controller"), (None, "garm-provider-lxd")],
)
def test_only_other_instances_of_that_name_is_not_a_runner(
    controller_id: str | None, whose: str
) -> None:
    found = [("a", _meta(None)), ("b", _meta(OTHER if controller_id else None))]
    with pytest.raises(NotARunner, match=f"^instance r is not a runner of {whose}$"):
        choose_runner("r", PROJECTS, found, controller_id=controller_id)


def test_two_runners_of_one_controller_is_an_error_naming_the_projects() -> None:
    found = [("a", _meta(UUID)), ("b", _meta(UUID))]
    with pytest.raises(ProviderError, match=r"several projects \(runners, default\); refusing"):
        choose_runner("r", PROJECTS, found, controller_id=UUID)


def test_nothing_found_is_not_found_in_every_project_looked_in() -> None:
    with pytest.raises(
        NotFoundError, match=r"^instance r not found in project\(s\) runners, default$"
    ):
        choose_runner("r", PROJECTS, [], controller_id=UUID)
    with pytest.raises(NotFoundError) as raised:
        choose_runner("r", ("",), [], controller_id=None)
    assert not isinstance(raised.value, NotARunner)
    assert str(raised.value).endswith("project(s) default")


def test_status_reads_ipv4_by_the_rule_getinstance_uses() -> None:
    from garm_provider_lxd._native import json_dumps, provider_instance
    from garm_provider_lxd.admin.status import _ipv4

    state = {
        "status": "Running",
        "network": {
            "lo": {"addresses": [{"family": "inet", "address": "127.0.0.1", "scope": "global"}]},
            "eth1": {"addresses": [{"address": "10.9.0.2", "scope": "global"}]},
            "eth0": {
                "addresses": [
                    {"family": "inet", "address": "10.9.0.1", "scope": "global"},
                    {"family": "inet", "address": "169.254.1.1", "scope": "link"},
                    {"family": "inet6", "address": "fd42::1", "scope": "global"},
                ]
            },
        },
    }
    instance = {"type": "sync", "metadata": {"name": "r", "status": "Running"}}
    envelope = {"type": "sync", "metadata": state}
    got = json.loads(provider_instance(json_dumps(instance), json_dumps(envelope)))
    v4 = tuple(a["address"] for a in got["addresses"] if ":" not in a["address"])
    assert v4 == ("10.9.0.2", "10.9.0.1")  # no family is still IPv4; the server's order
    assert _ipv4(state) == v4
    assert _ipv4(None) == _ipv4({}) == ()
