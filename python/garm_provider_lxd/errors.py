"""One error hierarchy; each class carries the exit code GARM expects for it."""

from __future__ import annotations

# Exit codes of the GARM external-provider contract
# (garm-provider-common execution/common.go: ExitCodeNotFound, ExitCodeDuplicate).
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_NOT_FOUND = 30
EXIT_DUPLICATE = 31


class ProviderError(Exception):
    """Any failure the provider reports to GARM as one line on stderr."""

    exit_code = EXIT_ERROR


class NotFoundError(ProviderError):
    """The instance (or another named object) does not exist."""

    exit_code = EXIT_NOT_FOUND


class DuplicateError(ProviderError):
    """An instance with that name already exists."""

    exit_code = EXIT_DUPLICATE


class ConfigError(ProviderError):
    """The provider config file is missing, unreadable or invalid."""


class InputError(ProviderError):
    """The environment, stdin or extra specs GARM passed are invalid."""


class TemplateError(ProviderError):
    """A runner install template failed to parse or render."""


class LxdError(ProviderError):
    """The LXD server answered with an error."""


class LxdConnectionError(LxdError):
    """The LXD server could not be reached (socket missing, refused, TLS failure)."""


class LxdTimeoutError(LxdError):
    """An LXD request or operation did not finish before its deadline."""
