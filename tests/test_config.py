"""The config file: Go-provider compatible keys, clear errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from garm_provider_lxd.config import Config, PoolPolicy, config_schema, load_config, parse_config
from garm_provider_lxd.errors import ConfigError, InputError
from garm_provider_lxd.specs import parse_extra_specs

TESTDATA = Path(__file__).resolve().parent.parent / "testdata" / "config"


def test_documented_sample_loads() -> None:
    config = load_config(str(TESTDATA / "garm-provider-lxd.toml"))
    assert config.unix_socket_path == "/var/snap/lxd/common/lxd/unix.socket"
    assert config.instance_type == "container"
    assert config.project_name == "default"
    assert config.address_wait_seconds == 10.0
    assert sorted(config.image_remotes) == ["images", "ubuntu", "ubuntu_daily"]
    assert config.image_remotes["ubuntu"].addr == "https://cloud-images.ubuntu.com/releases"
    assert config.image_remotes["ubuntu"].protocol == "simplestreams"


def test_go_provider_sample_loads_unchanged() -> None:
    config = load_config(str(TESTDATA / "go-provider-upstream.toml"))
    assert config.include_default_profile is False
    assert config.secure_boot is False
    assert config.image_remotes["images"].addr == "https://images.linuxcontainers.org"


def test_unknown_keys_are_ignored_like_the_go_provider() -> None:
    config = parse_config(b'unix_socket_path = "/s"\nsome_future_key = 3\n')
    assert config.unix_socket_path == "/s"


def test_https_with_client_certificate() -> None:
    config = parse_config(
        b'url = "https://10.0.0.1:8443"\nclient_certificate = "/c"\nclient_key = "/k"\n'
        b'tls_server_certificate = "/s"\ninstance_type = "virtual-machine"\nsecure_boot = true\n'
    )
    assert config.url == "https://10.0.0.1:8443"
    assert config.instance_type == "virtual-machine"
    assert config.secure_boot is True


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (b"", "one of unix_socket_path or url must be set"),
        (
            b'url = "http://x:8443"\nclient_certificate="/c"\nclient_key="/k"',
            "url: must be an https",
        ),
        (b'url = "https://x:8443"', "client_certificate and client_key are required"),
        (b'unix_socket_path = "/s"\ninstance_type = "vm"', "instance_type: must be one of"),
        (b"unix_socket_path = 3", "unix_socket_path: must be a string"),
        (b'unix_socket_path = "/s"\nsecure_boot = "yes"', "secure_boot: must be a boolean"),
        (b'unix_socket_path = "/s"\naddress_wait_seconds = -1', "address_wait_seconds"),
        (
            b'unix_socket_path = "/s"\n[image_remotes.x]\naddr = "https://a"\nprotocol = "lxd"',
            "image_remotes.x.protocol",
        ),
        (b'unix_socket_path = "/s"\n[image_remotes.x]\naddr = "ftp://a"', "image_remotes.x.addr"),
        (b"unix_socket_path = ", "invalid TOML"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_invalid_config_names_the_problem(toml: bytes, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")) as info:
        parse_config(toml, source="p.toml")
    assert "\n" not in str(info.value).strip()


@pytest.mark.parametrize(
    "addr", ["https", "https://", "https:///streams", "https://h p", "https://h/a\tb", "ftp://h"]
)
def test_image_remote_addr_is_an_http_url_with_a_host(addr: str) -> None:
    # The same rule as a pool's image_remote (config.parse_image_remote); the first five were
    # accepted by both before.
    toml = f'unix_socket_path = "/s"\n[image_remotes.x]\naddr = "{addr}"\n'.encode()
    with pytest.raises(ConfigError, match=r"image_remotes\.x\.addr: expected an http\(s\) URL"):
        parse_config(toml)
    with pytest.raises(InputError, match=r"image_remote\.addr: expected an http\(s\) URL"):
        parse_extra_specs({"image_remote": {"addr": addr}})


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(str(tmp_path / "absent.toml"))


def test_published_schema_has_every_config_field() -> None:
    schema = config_schema()
    properties = dict(schema["properties"])
    diagnostics = properties.pop("diagnostics")["properties"]
    assert set(properties) | set(diagnostics) == set(Config._fields)
    assert schema["properties"]["instance_type"]["enum"] == ["container", "virtual-machine"]
    policy = schema["properties"]["pool_policy"]["properties"]
    assert set(policy) == set(PoolPolicy._fields)
    diagnostics = schema["properties"]["diagnostics"]["properties"]
    assert diagnostics["command_log_keep"]["maximum"] == 1000
    assert diagnostics["postmortem_keep"]["maximum"] == 1 << 40


def test_diagnostics_table_is_read_and_checked() -> None:
    base = b'unix_socket_path = "/s"\n[diagnostics]\n'
    config = parse_config(
        base + b'command_log = "/var/log/garm/commands.log"\npostmortem_keep = 7\n'
    )
    assert (config.command_log, config.postmortem_keep) == ("/var/log/garm/commands.log", 7)
    assert (config.postmortem_dir, config.command_log_max_bytes) == ("", 16 << 20)
    for bad, message in [
        (b'command_log = "relative.log"', "diagnostics.command_log: must be an absolute path"),
        (b"postmortem_keep = -1", "diagnostics.postmortem_keep: must be between 0"),
        (b"postmortem_keep = true", "diagnostics.postmortem_keep: must be a whole number"),
        # The process that rotates renames every kept copy while it holds the lock.
        (b"command_log_keep = 1001", "diagnostics.command_log_keep: must be between 0 and 1000"),
        (b'command_logs = "/x"', "diagnostics: unknown key 'command_logs'"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_config(base + bad + b"\n")
