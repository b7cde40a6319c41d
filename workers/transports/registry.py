"""Every transport backend by name, and building them from settings.

This module imports the backends; they import only ``base`` (and ``smtp``, for
``gmail``), never this module or the package, so there is no cycle.  It is cheap
to import (a backend loads its client library only when built), so the settings
check uses it as well as the workers.
"""

from collections.abc import Mapping
from types import MappingProxyType

import workers.transports.file as file
import workers.transports.gmail as gmail
import workers.transports.ses as ses
import workers.transports.smtp as smtp
from domain.errors import ConfigError
from workers.transports.base import Backend, Transport

#: Every backend by its name in MAILROOM_TRANSPORT, in the order the docs list them.
BACKENDS: Mapping[str, Backend] = MappingProxyType(
    {backend.NAME: backend for backend in (file, smtp, ses, gmail)}
)


def choices() -> str:
    """The backends' names as a sentence: "file, smtp, ses or gmail"."""
    *first, last = BACKENDS
    return f"{', '.join(first)} or {last}"


def backend(name: str) -> Backend:
    """The backend called ``name``; an unknown name is a configuration error."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise ConfigError(
            "MAILROOM_TRANSPORT", f"unknown transport {name!r}: must be {choices()}"
        ) from None


def make_backend(name: str, settings) -> Transport:
    return backend(name).from_settings(settings)


def make_transport(settings, health=None):
    """A ``Chain`` of the configured backends, in failover order."""
    # Imported here, not above: the chain logs, and structlog would add ~25 ms to
    # every import of the settings (which check names against BACKENDS).  The
    # chain imports nothing from this module, so this is no hidden cycle.
    from workers.transports.chain import Chain

    return Chain([make_backend(name, settings) for name in settings.transports], health=health)
