"""The host an engine runs on, which need not be this machine (``enginekit.hostfacts``).

- :class:`RemoteHostFacts`: the mixin of a driver whose engine is on another
  host (``published_address``, ``host_cpus()``, ``host_path_exists()``, see
  the Driver contract); :func:`address_of`, :func:`remote_path_exists` its parts.
- :func:`published_address`, :func:`host_cpus`, :func:`host_path_exists`: a
  driver's answer to each, or this machine's where the driver gives none.
"""

from __future__ import annotations

from enginekit.hostfacts import *  # noqa: F403
from enginekit.hostfacts import __all__ as _names

__all__ = list(_names)
