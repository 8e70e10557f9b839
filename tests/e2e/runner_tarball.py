"""A stand-in for the actions-runner release tarball, for end-to-end tests.

It has the entry points GARM's install scripts call (``config.sh``, ``svc.sh``,
``run.sh``, ``env.sh``, ``bin/installdependencies.sh``, ``bin/runsvc.sh``) and
behaves like them where the scripts can tell: ``config.sh`` writes ``.runner``
with an ``agentId``, ``svc.sh install/start`` creates and starts a real systemd
unit, and the unit runs ``run.sh``, which stays up like a listening runner.
Registration tokens handed out by the fake GARM end in ``-<agentId>``.
"""

from __future__ import annotations

import functools
import gzip
import io
import random
import tarfile
from pathlib import PurePosixPath

FILENAME = "actions-runner-linux-x64-2.321.0.tar.gz"
# What the upstream README's install template downloads through ExtraContext.
GO_FILENAME = "go1.22.4.linux-amd64.tar.gz"

CONFIG_SH = r"""#!/bin/bash
# Registers nothing: writes the files the real config.sh leaves behind.
set -e
cd "$(dirname "$0")"
if [ "$1" = "remove" ]; then
	rm -f .runner .credentials .credentials_rsaparams
	exit 0
fi
if [ "$(id -u)" = 0 ]; then
	echo "Must not run with sudo" >&2
	exit 1
fi
url="" token="" name="" labels="" group=""
while [ $# -gt 0 ]; do
	case "$1" in
	--url) url="$2"; shift ;;
	--token) token="$2"; shift ;;
	--name) name="$2"; shift ;;
	--labels) labels="$2"; shift ;;
	--runnergroup) group="$2"; shift ;;
	--unattended | --ephemeral | --no-default-labels | --replace | --disableupdate) ;;
	*) echo "config.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
if [ -z "$url" ] || [ -z "$token" ] || [ -z "$name" ]; then
	echo "config.sh: --url, --token and --name are required" >&2
	exit 1
fi
agent_id="${token##*-}"
case "$agent_id" in
'' | *[!0-9]*) echo "config.sh: registration token rejected" >&2; exit 1 ;;
esac
cat >.runner <<EOF
{
  "agentId": $agent_id,
  "agentName": "$name",
  "poolId": 1,
  "poolName": "${group:-Default}",
  "gitHubUrl": "$url",
  "workFolder": "_work"
}
EOF
echo '{"scheme": "OAuth"}' >.credentials
printf '%s\n' "$labels" >.labels
echo "Runner successfully added"
"""

SVC_SH = r"""#!/bin/bash
# Installs and drives the runner's systemd unit like the real svc.sh.
set -e
cd "$(dirname "$(readlink -f "$0")")"
RUNNER_ROOT="$(pwd)"
if [ "$(id -u)" != 0 ]; then
	echo "Must run as sudo" >&2
	exit 1
fi
unit_name() {
	if [ -s .service ]; then
		cat .service
		return
	fi
	local url name scope
	url="$(sed -n 's/.*"gitHubUrl": *"\([^"]*\)".*/\1/p' .runner)"
	name="$(sed -n 's/.*"agentName": *"\([^"]*\)".*/\1/p' .runner)"
	scope="${url#*://*/}"
	echo "actions.runner.${scope//\//-}.${name}.service"
}
SVC="$(unit_name)"
case "$1" in
install)
	user="${2:-${SUDO_USER:-root}}"
	cat >"/etc/systemd/system/$SVC" <<EOF
[Unit]
Description=GitHub Actions Runner ($SVC)
After=network.target

[Service]
ExecStart=$RUNNER_ROOT/runsvc.sh
User=$user
WorkingDirectory=$RUNNER_ROOT
KillMode=process
KillSignal=SIGTERM
TimeoutStopSec=5min

[Install]
WantedBy=multi-user.target
EOF
	cp bin/runsvc.sh ./runsvc.sh
	chown "$user" ./runsvc.sh
	echo "$SVC" >.service
	systemctl daemon-reload
	systemctl enable "$SVC"
	;;
start) systemctl start "$SVC" && systemctl is-active "$SVC" ;;
stop) systemctl stop "$SVC" ;;
status) systemctl --no-pager status "$SVC" ;;
uninstall)
	systemctl disable --now "$SVC" || true
	rm -f "/etc/systemd/system/$SVC" .service
	systemctl daemon-reload
	;;
*) echo "usage: svc.sh install [user] | start | stop | status | uninstall" >&2; exit 2 ;;
esac
"""

RUN_SH = r"""#!/bin/bash
# Stays up like a runner listening for jobs, once configured.
cd "$(dirname "$0")"
if [ ! -s .runner ] || [ ! -s .credentials ]; then
	echo "Not configured. Run config.sh to configure the runner." >&2
	exit 1
fi
mkdir -p _diag
echo "$(date -u +%FT%TZ) Listening for Jobs" >>_diag/Runner.log
echo "$$" >.running
exec sleep infinity
"""

RUNSVC_SH = r"""#!/bin/bash
# Service entry point: the environment env.sh recorded, then run.sh.
cd "$(dirname "$0")"
if [ -f .path ]; then
	PATH="$(cat .path)"
	export PATH
fi
exec ./run.sh
"""

ENV_SH = r"""#!/bin/bash
# Records the environment the runner service will use.
cd "$(dirname "$0")"
printf 'LANG=%s\n' "${LANG:-C.UTF-8}" >.env
printf '%s\n' "$PATH" >.path
"""

INSTALLDEPENDENCIES_SH = r"""#!/bin/bash
# Nothing to install in the test image; keeps the real script's root check.
if [ "$(id -u)" != 0 ]; then
	echo "Need to run with sudo privilege" >&2
	exit 1
fi
echo "Finish Install Dependencies"
"""

FILES = {
    "config.sh": CONFIG_SH,
    "svc.sh": SVC_SH,
    "run.sh": RUN_SH,
    "env.sh": ENV_SH,
    "bin/runsvc.sh": RUNSVC_SH,
    "bin/installdependencies.sh": INSTALLDEPENDENCIES_SH,
}


GO_FILES = {"go/bin/go": '#!/bin/sh\necho "go version go1.22.4 linux/amd64"\n'}


# Where the padding goes: a file no script reads, like the real release's bulky externals/.
PADDING_PATH = "externals/padding.bin"


def _tarball(files: dict[str, str], padding: int = 0) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({str(p) for path in files for p in PurePosixPath(path).parents} - {"."})
        for directory in dirs:
            dir_info = tarfile.TarInfo(f"./{directory}")
            dir_info.type = tarfile.DIRTYPE
            dir_info.mode = 0o755
            tar.addfile(dir_info)
        for path, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"./{path}")
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
        if padding:
            # Seeded, so the same size always gives the same tarball (and checksum); random,
            # so gzip cannot shrink it and the download is as big as asked.
            data = random.Random(padding).randbytes(padding)
            for parent in PurePosixPath(PADDING_PATH).parents:
                if str(parent) != "." and str(parent) not in dirs:
                    dir_info = tarfile.TarInfo(f"./{parent}")
                    dir_info.type = tarfile.DIRTYPE
                    dir_info.mode = 0o755
                    tar.addfile(dir_info)
            info = tarfile.TarInfo(f"./{PADDING_PATH}")
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=1 if padding else 9, mtime=0)


@functools.lru_cache(maxsize=2)
def build_runner_tarball(padding: int = 0) -> bytes:
    """Return the fake actions-runner release as gzip'd tar bytes (reproducible).

    `padding` adds that many incompressible bytes, for a download the size of the real one.
    """
    return _tarball(FILES, padding)


def build_go_tarball() -> bytes:
    """Return a stand-in Go toolchain tarball (``go/bin/go``) as gzip'd tar bytes."""
    return _tarball(GO_FILES)
