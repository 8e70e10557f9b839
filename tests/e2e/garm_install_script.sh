#!/bin/bash
# What the fake GARM serves at {metadata}/install-script/: the shape of GARM's
# own Linux install script (garm-provider-common's classic template), with
# the instance's values filled in by the server (names between double @).
set -e
set -o pipefail
if [ "@@ENABLE_BOOT_DEBUG@@" = "true" ]; then
	set -x
fi

CALLBACK_URL="@@CALLBACK_URL@@"
METADATA_URL="@@METADATA_URL@@"
BEARER_TOKEN="@@CALLBACK_TOKEN@@"
RUNNER_USER="@@RUNNER_USERNAME@@"
RUN_HOME="/home/$RUNNER_USER/actions-runner"

function call() {
	PAYLOAD="$1"
	[[ $CALLBACK_URL =~ ^(.*)/status(/)?$ ]] || CALLBACK_URL="${CALLBACK_URL}/status"
	curl --retry 5 --retry-delay 5 --retry-connrefused --fail -s -X POST -d "${PAYLOAD}" \
		-H 'Accept: application/json' -H "Authorization: Bearer ${BEARER_TOKEN}" \
		"${CALLBACK_URL}" || echo "failed to call home: exit code ($?)"
}

function systemInfo() {
	if [ -f "/etc/os-release" ]; then
		. /etc/os-release
	fi
	AGENT_ID=${1:-null}
	local base="$CALLBACK_URL"
	[[ $base =~ ^(.*)/status(/)?$ ]] && base="${BASH_REMATCH[1]}" || true
	PAYLOAD="{\"os_name\": \"${NAME:-}\", \"os_version\": \"${VERSION_ID:-}\", \"agent_id\": $AGENT_ID}"
	curl --retry 5 --retry-delay 5 --retry-connrefused --fail -s -X POST -d "${PAYLOAD}" \
		-H 'Accept: application/json' -H "Authorization: Bearer ${BEARER_TOKEN}" \
		"${base}/system-info/" || true
}

function sendStatus() {
	call "{\"status\": \"installing\", \"message\": \"$1\"}"
}

function success() {
	call "{\"status\": \"idle\", \"message\": \"$1\", \"agent_id\": ${2:-null}}"
}

function fail() {
	call "{\"status\": \"failed\", \"message\": \"$1\"}"
	exit 1
}

function getRunnerFile() {
	curl --retry 5 --retry-delay 5 --retry-connrefused --fail -s -X GET \
		-H 'Accept: application/json' -H "Authorization: Bearer ${BEARER_TOKEN}" \
		"${METADATA_URL}/$1" -o "$2"
}

sendStatus "downloading tools from @@DOWNLOAD_URL@@"
TEMP_TOKEN=""
if [ -n "@@TEMP_DOWNLOAD_TOKEN@@" ]; then
	TEMP_TOKEN="Authorization: Bearer @@TEMP_DOWNLOAD_TOKEN@@"
fi
curl --retry 5 --retry-delay 5 --retry-connrefused --fail -L -H "${TEMP_TOKEN}" \
	-o "/home/$RUNNER_USER/@@FILE_NAME@@" "@@DOWNLOAD_URL@@" || fail "failed to download tools"
mkdir -p "$RUN_HOME" || fail "failed to create actions-runner folder"
sendStatus "extracting runner"
tar xf "/home/$RUNNER_USER/@@FILE_NAME@@" -C "$RUN_HOME" || fail "failed to extract runner"
sendStatus "installing dependencies"
cd "$RUN_HOME"
sudo ./bin/installdependencies.sh || fail "failed to install dependencies"

sendStatus "configuring runner"
AGENT_ID=""
if [ "@@USE_JIT_CONFIG@@" = "true" ]; then
	sendStatus "downloading JIT credentials"
	getRunnerFile "credentials/runner" "$RUN_HOME/.runner" || fail "failed to get runner file"
	getRunnerFile "credentials/credentials" "$RUN_HOME/.credentials" || fail "failed to get credentials file"
	getRunnerFile "credentials/credentials_rsaparams" "$RUN_HOME/.credentials_rsaparams" ||
		fail "failed to get credentials_rsaparams file"
	getRunnerFile "system/service-name" "$RUN_HOME/.service" || fail "failed to get service name file"
	sed -i 's/$/\.service/' "$RUN_HOME/.service"
	SVC_NAME=$(cat "$RUN_HOME/.service")
	sendStatus "generating systemd unit file"
	getRunnerFile "systemd/unit-file?runAsUser=$RUNNER_USER" "$SVC_NAME" || fail "failed to get service file"
	sudo mv "$SVC_NAME" /etc/systemd/system/ || fail "failed to move service file"
	sudo chown root:root "/etc/systemd/system/$SVC_NAME" || fail "failed to change owner"
	sendStatus "enabling runner service"
	cp "$RUN_HOME/bin/runsvc.sh" "$RUN_HOME/" || fail "failed to copy runsvc.sh"
	sudo chown "$RUNNER_USER:@@RUNNER_GROUP@@" -R "/home/$RUNNER_USER" || fail "failed to change owner"
	sudo systemctl daemon-reload || fail "failed to reload systemd"
	sudo systemctl enable "$SVC_NAME"
	sudo systemctl start "$SVC_NAME" || fail "failed to start service"
else
	GITHUB_TOKEN=$(curl --retry 5 --retry-delay 5 --retry-connrefused --fail -s -X GET \
		-H 'Accept: application/json' -H "Authorization: Bearer ${BEARER_TOKEN}" \
		"${METADATA_URL}/runner-registration-token/") || fail "failed to get registration token"
	./config.sh --unattended --url "@@REPO_URL@@" --token "$GITHUB_TOKEN" --name "@@RUNNER_NAME@@" \
		--labels "@@RUNNER_LABELS@@" --no-default-labels --ephemeral || fail "failed to configure runner"
	sendStatus "installing runner service"
	sudo ./svc.sh install "$RUNNER_USER" || fail "failed to install service"
	sendStatus "starting service"
	sudo ./svc.sh start || fail "failed to start service"
	AGENT_ID=$(grep "agentId" "$RUN_HOME/.runner" | tr -d -c 0-9)
fi
systemInfo "$AGENT_ID"
success "runner successfully installed" "$AGENT_ID"
