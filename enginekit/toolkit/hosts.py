"""Where an engine runs: the endpoints an adapter lists, TLS to a TCP address,
and the host facts of an engine on another machine.

- :class:`Endpoint`, :func:`redact`: what ``enginekit engines`` shows of an
  adapter's known addresses (no secrets).
- :class:`TLSConfig`, :func:`check_plain_tcp`, :func:`is_loopback`: TLS for
  ``tcp://``; plain TCP only to loopback unless the user insists.
- :class:`RemoteHostFacts`: the mixin of a driver whose engine is on another
  host (``published_address``, ``host_cpus()``, ``host_path_exists()``, see
  the Driver contract); :func:`address_of`, :func:`remote_path_exists` its parts.
- :func:`published_address`, :func:`host_cpus`, :func:`host_path_exists`: a
  driver's answer to each, or this machine's where the driver gives none.
"""

from __future__ import annotations

from enginekit.endpoints import Endpoint, redact
from enginekit.hostfacts import (
    LOCAL_ADDRESS,
    RemoteHostFacts,
    address_of,
    host_cpus,
    host_path_exists,
    published_address,
    remote_path_exists,
)
from enginekit.tls import TLSConfig, check_plain_tcp, is_loopback

__all__ = [
    "LOCAL_ADDRESS",
    "Endpoint",
    "RemoteHostFacts",
    "TLSConfig",
    "address_of",
    "check_plain_tcp",
    "host_cpus",
    "host_path_exists",
    "is_loopback",
    "published_address",
    "redact",
    "remote_path_exists",
]
