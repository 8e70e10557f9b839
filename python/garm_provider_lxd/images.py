"""Turn a pool's image name into an LXD instance source."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .config import ImageRemote
from .errors import InputError

_HEX = frozenset("0123456789abcdef")


def image_source(image: str, remotes: Mapping[str, ImageRemote]) -> dict[str, Any]:
    """Return the `source` object of POST /1.0/instances for `image` (remote:alias or local)."""
    image = image.strip()
    if not image:
        raise InputError("bootstrap: image: must not be empty")
    remote_name, sep, alias = image.partition(":")
    if sep:
        remote = remotes.get(remote_name)
        if remote is None:
            configured = ", ".join(sorted(remotes)) or "none"
            raise InputError(
                f"image {image!r}: remote {remote_name!r} is not configured in image_remotes "
                f"(configured: {configured})"
            )
        if not alias:
            raise InputError(f"image {image!r}: missing alias after the remote name")
        # The LXD server resolves the alias and pulls the image itself, so skip_verify and
        # public only matter to clients that talk to the remote directly (the check command).
        return {
            "type": "image",
            "mode": "pull",
            "server": remote.addr,
            "protocol": remote.protocol,
            "alias": alias,
        }
    if len(image) >= 12 and set(image.lower()) <= _HEX:
        return {"type": "image", "fingerprint": image.lower()}
    return {"type": "image", "alias": image}
