"""Turn a pool's image name into an LXD instance source."""

from __future__ import annotations

from .errors import InputError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from .config import ImageRemote

_HEX = frozenset("0123456789abcdef")


def image_source(
    image: str, remotes: Mapping[str, ImageRemote], pool_remote: ImageRemote | None = None
) -> dict[str, Any]:
    """Return the `source` of POST /1.0/instances for `image` (remote:alias, alias, fingerprint).

    A pool's own `image_remote` serves images named without a remote prefix.
    """
    image = image.strip()
    if not image:
        raise InputError("bootstrap: image: must not be empty")
    remote_name, sep, alias = image.partition(":")
    if not sep and pool_remote is not None:
        return _pull(pool_remote, image)
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
        return _pull(remote, alias)
    if len(image) >= 12 and set(image.lower()) <= _HEX:
        return {"type": "image", "fingerprint": image.lower()}
    return {"type": "image", "alias": image}


def _pull(remote: ImageRemote, alias: str) -> dict[str, Any]:
    # The LXD server resolves the alias and pulls the image itself, so skip_verify and
    # public only matter to clients that talk to the remote directly.
    return {
        "type": "image",
        "mode": "pull",
        "server": remote.addr,
        "protocol": remote.protocol,
        "alias": alias,
    }
