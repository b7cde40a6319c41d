"""Transports hand a built message to the outside world.

Each backend lives in its own module (``file``, ``smtp``, ``ses``, ``gmail``)
with what it needs to know about itself: its name, the settings it requires,
their extra checks, the hint shown when sending through it fails, its tuning
constants and its construction from settings.  ``registry`` lists them.  Each
raises only ``TransientError``, ``PermanentError`` or ``TransportConfigError``
from ``domain.errors``, so retries, failover and dead letters are decided in
one place whatever the backend.  ``make_transport`` returns a ``Chain`` of the
configured backends.

Imports run one way: this package and ``registry`` import the backends, the
backends import ``base``, never the other way round.
"""

from workers.transports.base import Receipt, Transport
from workers.transports.registry import BACKENDS, make_backend, make_transport

__all__ = ["BACKENDS", "Receipt", "Transport", "make_backend", "make_transport"]
