"""Judging extra specs with the pool policy in-process (no LXD), for the policy rule tests."""

from __future__ import annotations

from typing import Any

import pytest

from garm_provider_lxd.config import Config, PoolPolicy
from garm_provider_lxd.errors import InputError
from garm_provider_lxd.policy import enforce_pool_policy
from garm_provider_lxd.specs import parse_extra_specs

NO_ALLOWANCES = PoolPolicy()


def refusal_of(specs: dict[str, Any], policy: PoolPolicy = NO_ALLOWANCES, **config: Any) -> str:
    """The one-line refusal of specs under policy (fails the test if they are allowed)."""
    with pytest.raises(InputError) as caught:
        enforce_pool_policy(Config(pool_policy=policy, **config), parse_extra_specs(specs))
    message = str(caught.value)
    assert "\n" not in message
    return message


def accept(specs: dict[str, Any], policy: PoolPolicy = NO_ALLOWANCES, **config: Any) -> None:
    """Judge specs under policy; raises InputError if they are refused."""
    enforce_pool_policy(Config(pool_policy=policy, **config), parse_extra_specs(specs))
