"""JSON schema of the provider config file (GetConfigJSONSchema)."""

from __future__ import annotations

from typing import Any

_STRING: dict[str, Any] = {"type": "string"}
_BOOL: dict[str, Any] = {"type": "boolean"}
_SECONDS: dict[str, Any] = {"type": "number", "minimum": 0, "maximum": 86400}

CONFIG_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "garm-provider-lxd config",
    "type": "object",
    "properties": {
        "unix_socket_path": {**_STRING, "description": "Path of the LXD unix socket."},
        "url": {**_STRING, "description": "https:// URL of a remote LXD server."},
        "client_certificate": {**_STRING, "description": "PEM client certificate file."},
        "client_key": {**_STRING, "description": "PEM client key file."},
        "tls_server_certificate": {**_STRING, "description": "Pinned PEM server certificate."},
        "tls_ca": {**_STRING, "description": "PEM CA that signed the server certificate."},
        "project_name": {**_STRING, "description": "LXD project for runner instances."},
        "include_default_profile": {**_BOOL, "description": "Prepend the default profile."},
        "instance_type": {"type": "string", "enum": ["container", "virtual-machine"]},
        "secure_boot": {**_BOOL, "description": "UEFI secure boot for virtual machines."},
        "image_remotes": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "addr": _STRING,
                    "public": _BOOL,
                    "protocol": {"type": "string", "enum": ["simplestreams"]},
                    "skip_verify": _BOOL,
                },
                "required": ["addr"],
            },
        },
        "pool_policy": {
            "type": "object",
            "description": "What pool extra specs may do beyond the safe defaults.",
            "properties": {
                "allow_config": {
                    "type": "array",
                    "items": _STRING,
                    "description": "Glob patterns of instance config keys pools may set.",
                },
                "allow_device_types": {
                    "type": "array",
                    "items": _STRING,
                    "description": "Device types pools may add (e.g. gpu, unix-char).",
                },
                "allow_projects": {
                    "type": "array",
                    "items": _STRING,
                    "description": "LXD projects pools may use besides project_name.",
                },
            },
            "additionalProperties": False,
        },
        "address_wait_seconds": {
            **_SECONDS,
            "description": "How long CreateInstance waits for an IPv4 address (default 10).",
        },
        "request_timeout_seconds": {
            **_SECONDS,
            "description": "Deadline of one LXD request (default 30).",
        },
        "operation_timeout_seconds": {
            **_SECONDS,
            "description": "Deadline of one LXD operation such as an image pull (default 600).",
        },
    },
    "anyOf": [{"required": ["unix_socket_path"]}, {"required": ["url"]}],
}
