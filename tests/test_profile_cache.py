"""The profile cache shared by provider processes (profile_cache.py): fresh entries are read
from the private cache, stale or missing ones from LXD, and an unsafe directory caches nothing.
The reads here are counting stand-ins for LXD's GET: what is checked is how often the cache
asks, which a real server cannot show."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from garm_provider_lxd import profile_cache


class CountingRead:
    """A stand-in for one profile GET that counts its calls."""

    def __init__(self, profile: dict[str, Any] | None) -> None:
        self.profile = profile
        self.calls = 0

    def __call__(self) -> dict[str, Any] | None:
        self.calls += 1
        return self.profile


@pytest.fixture
def server() -> Iterator[str]:
    """A server name of this test's own, so its entries are not another test's."""
    name = f"/test/{uuid.uuid4().hex}.socket"
    yield name
    directory = profile_cache.cache_dir()
    if directory:
        for entry in os.listdir(directory):
            if uuid_part(name) in entry:
                os.unlink(os.path.join(directory, entry))


def uuid_part(server: str) -> str:
    return server.rsplit("/", 1)[1].split(".")[0]


PROFILE = {"config": {"limits.cpu": "2"}, "devices": {}}


def test_a_fresh_entry_is_read_from_the_cache_not_from_lxd(server: str) -> None:
    read = CountingRead(PROFILE)
    assert profile_cache.cached_profile(server, "p", "runner", read) == PROFILE
    assert profile_cache.cached_profile(server, "p", "runner", read) == PROFILE
    assert read.calls == 1
    # Another project or profile is another entry.
    assert profile_cache.cached_profile(server, "q", "runner", read) == PROFILE
    assert read.calls == 2


def test_a_stale_entry_is_read_again(server: str) -> None:
    read = CountingRead(PROFILE)
    profile_cache.cached_profile(server, "p", "runner", read)
    directory = profile_cache.cache_dir()
    assert directory is not None
    (entry,) = [e for e in os.listdir(directory) if uuid_part(server) in e]
    old = os.stat(os.path.join(directory, entry)).st_mtime - profile_cache.FRESH_SECONDS - 1
    os.utime(os.path.join(directory, entry), (old, old))
    changed = CountingRead({"config": {"security.privileged": "true"}, "devices": {}})
    assert profile_cache.cached_profile(server, "p", "runner", changed) == changed.profile
    assert changed.calls == 1


def test_a_missing_profile_is_not_remembered(server: str) -> None:
    missing = CountingRead(None)
    assert profile_cache.cached_profile(server, "p", "later", missing) is None
    made = CountingRead(PROFILE)
    assert profile_cache.cached_profile(server, "p", "later", made) == PROFILE
    assert made.calls == 1


def test_concurrent_readers_ask_lxd_once(server: str) -> None:
    read = CountingRead(PROFILE)
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(
            pool.map(lambda _: profile_cache.cached_profile(server, "p", "r", read), range(32))
        )
    assert results == [PROFILE] * 32
    assert read.calls == 1


def test_without_a_private_directory_every_read_goes_to_lxd(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(profile_cache, "cache_dir", lambda: None)
    read = CountingRead(PROFILE)
    for _ in range(3):
        assert profile_cache.cached_profile(server, "p", "runner", read) == PROFILE
    assert read.calls == 3


def test_cache_dir_refuses_a_directory_others_may_enter(monkeypatch: pytest.MonkeyPatch) -> None:
    directory = profile_cache.cache_dir()
    assert directory is not None
    os.chmod(directory, 0o755)
    try:
        assert profile_cache.cache_dir() is None
    finally:
        os.chmod(directory, 0o700)
    assert profile_cache.cache_dir() == directory
