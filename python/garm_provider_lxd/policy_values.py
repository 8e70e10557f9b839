"""Values in the pool policy: config values that only take, and device values that tighten.

Units and spellings follow LXD (shared/units: byte sizes like `10GiB`/`10GB`, bit rates like
`100Mbit`; shared/util.go: IsTrue/IsFalse), so a value is judged as LXD will read it.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_BYTE_UNITS = {"": 1, "B": 1, " bytes": 1}
_BIT_UNITS = {"": 1, "bit": 1}
for _power, _prefix in enumerate("kMGTPE", start=1):
    _BYTE_UNITS[f"{_prefix}B"] = 1000**_power
    _BYTE_UNITS[f"{_prefix.upper()}iB"] = 1024**_power
    _BIT_UNITS[f"{_prefix}bit"] = 1000**_power
    _BIT_UNITS[f"{_prefix.upper()}ibit"] = 1024**_power
_INT64_MAX = 2**63 - 1


def is_true(value: str) -> bool:
    """Whether LXD reads value as true (shared.IsTrue)."""
    return value.lower() in _TRUE


def is_false(value: str) -> bool:
    """Whether LXD reads value as false (shared.IsFalse)."""
    return value.lower() in _FALSE


def _integer(text: str) -> int | None:
    return int(text) if text and text.isascii() and text.isdigit() else None


def _int_up_to(limit: int) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        number = _integer(value)
        return number is not None and number <= limit

    return check


def cpu_allowance_takes(value: str) -> bool:
    """Whether limits.cpu.allowance is a share of at most 100% or a hard quota (`50ms/100ms`).

    LXD turns a percentage into CPU shares without an upper bound (cgroup.ParseCPU): `1000%`
    weighs ten times the default against every other instance. A quota caps time and keeps the
    default weight.
    """
    if value.endswith("%"):
        number = _integer(value[:-1])
        return number is not None and number <= 100
    quota, slash, period = value.partition("/")
    return bool(slash) and all(
        _integer(part.removesuffix("ms")) is not None for part in (quota, period)
    )


# Config keys a pool may set without an allowance only with values that take from the runner
# (docs/security.md): the check, and the values to name in a refusal.
SAFE_CONFIG_VALUES: dict[str, tuple[Callable[[str], bool], str]] = {
    "limits.cpu.allowance": (cpu_allowance_takes, "a share up to 100% or a quota like 50ms/100ms"),
    "limits.disk.priority": (_int_up_to(5), "0 to 5 (5 is LXD's default)"),
    "limits.memory.swap": (is_true, "true (false keeps the runner's memory out of swap)"),
    "boot.autostart": (is_false, "false"),
    "cluster.evacuate": (lambda value: value in ("auto", "stop"), "auto or stop"),
    "security.privileged": (is_false, "false"),
}


def _quantity(value: str, units: dict[str, int]) -> int | None:
    """LXD's parseSizeString: digits then a known suffix; None when LXD would refuse it."""
    digits = len(value) - len(value.lstrip("0123456789"))
    number = _integer(value[:digits])
    scale = units.get(value[digits:])
    if number is None or scale is None or number * scale > _INT64_MAX:
        return None
    return number * scale


def _disk_rate(value: str) -> tuple[str, int] | None:
    """A disk limit: (`iops`, count) or (`bytes`, bytes per second)."""
    if value.endswith("iops"):
        count = _integer(value[:-4])
        return None if count is None else ("iops", count)
    size = _quantity(value, _BYTE_UNITS)
    return None if size is None else ("bytes", size)


def _nic_rate(value: str) -> tuple[str, int] | None:
    rate = _quantity(value, _BIT_UNITS)
    return None if rate is None else ("bits", rate)


def _size(value: str) -> tuple[str, int] | None:
    size = _quantity(value, _BYTE_UNITS)
    return None if size is None else ("bytes", size)


# Device keys whose value may change in a pool's override when the new one is tighter: a
# quantity (0 means no limit in LXD, so it is the loosest), or a flag turned on.
_QUANTITIES: dict[tuple[str, str], Callable[[str], tuple[str, int] | None]] = {
    ("disk", "size"): _size,
    ("disk", "size.state"): _size,
    ("disk", "limits.read"): _disk_rate,
    ("disk", "limits.write"): _disk_rate,
    ("disk", "limits.max"): _disk_rate,
    ("nic", "limits.ingress"): _nic_rate,
    ("nic", "limits.egress"): _nic_rate,
    ("nic", "limits.max"): _nic_rate,
}
_FLAGS = frozenset(
    {("disk", "readonly")}
    | {("nic", "security.mac_filtering"), ("nic", "security.ipv4_filtering")}
    | {("nic", "security.ipv6_filtering"), ("nic", "security.port_isolation")}
)


def tightenable(kind: str, key: str) -> bool:
    """Whether a device key may change to a tighter value (else it must stay as it is)."""
    return (kind, key) in _FLAGS or (kind, key) in _QUANTITIES


def loosens(kind: str, key: str, before: str, after: str) -> bool:
    """Whether after, replacing a profile's value before for a device key, gives more."""
    if after == before:
        return False
    if (kind, key) in _FLAGS:
        return is_true(before) and not is_true(after)
    parse = _QUANTITIES.get((kind, key))
    if parse is None:
        return True
    old, new = parse(before), parse(after)
    if old is None or new is None or old[0] != new[0]:
        return True  # unreadable, or iops against bytes: nothing to compare
    if old[1] == 0:
        return False  # the profile set no limit
    return new[1] == 0 or new[1] > old[1]
