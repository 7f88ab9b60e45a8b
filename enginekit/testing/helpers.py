"""Small tools for the contract suite's tests: polling with deadlines, a
thread-bounded call (no plugin needed for timeouts), ports and one HTTP GET.

Nothing here sleeps for a fixed time: everything polls until a deadline.

The engine under test need not run on this machine: a port it publishes is
reached at :func:`published_address` (127.0.0.1 for an engine here, the
engine host's address for a remote one), and a free host port is one free
there (:func:`free_host_port`). Traffic only ever goes to loopback or to
that address.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import ipaddress
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from enginekit import hostfacts, timeutil
from enginekit.errors import EngineError

if TYPE_CHECKING:
    from enginekit import Container, ContainerState, Engine

__all__ = [
    "RFC3339",
    "assert_utc",
    "call_within",
    "free_host_port",
    "free_port",
    "hold_port",
    "http_get",
    "parse_env",
    "parse_rfc3339",
    "poll",
    "published_address",
    "wait_state",
]

T = TypeVar("T")

#: An RFC 3339 timestamp as engines prefix log lines with (``timestamps=True``).
RFC3339 = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d) ")


def poll(
    check: Callable[[], T | None],
    *,
    timeout: float = 15.0,
    interval: float = 0.05,
    message: str = "condition",
) -> T:
    """Call ``check`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{message}: not met within {timeout}s (last: {value!r})")
        time.sleep(interval)


def wait_state(
    engine: Engine, ref: Container | str, state: ContainerState, *, timeout: float = 15.0
) -> Container:
    """Poll ``get(ref)`` until the container is in ``state``; return that snapshot."""
    last: list[Container] = []

    def check() -> Container | None:
        c = engine.containers.get(ref)
        last[:] = [c]
        return c if c.state is state else None

    try:
        return poll(check, timeout=timeout, message=f"container to be {state.name}")
    except pytest.fail.Exception:
        pytest.fail(f"container never reached {state.name}; last seen: {last!r}")


def call_within(seconds: float, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn(*args, **kwargs)`` in a daemon thread; fail the test if it has
    not returned after ``seconds`` (a hang becomes a failure, not a stuck run).
    Exceptions of ``fn`` are re-raised here."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(fn(*args, **kwargs))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name=f"call_within:{fn!r}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"{getattr(fn, '__qualname__', fn)!s} did not return within {seconds}s")
    if error:
        raise error[0]
    return result[0]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def published_address(engine: Engine) -> str:
    """The address a client reaches the ports ``engine`` publishes at (and where a
    port without a host side is published): ``127.0.0.1`` for an engine on this
    machine, the engine host's address for a remote one (its driver says)."""
    return hostfacts.published_address(engine.driver)


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


@contextlib.contextmanager
def hold_port(address: str) -> Iterator[int | None]:
    """A TCP port held by a listening socket of this machine on ``address`` for the
    block, or None when ``address`` is not this machine's (an engine on another host)."""
    with socket.socket(_family(address), socket.SOCK_STREAM) as busy:
        try:
            busy.bind((address, 0))
        except OSError:
            yield None
            return
        busy.listen(1)
        yield int(busy.getsockname()[1])


@contextlib.contextmanager
def busy_host_port(engine: Engine, image: str, labels: dict[str, str]) -> Iterator[int]:
    """A port of the engine's host, at its published address, held for the block: by
    a listening socket where that address is this machine's, else by a container
    of the engine publishing it (what another user of that host would hold)."""
    with hold_port(published_address(engine)) as port:
        if port is not None:
            yield port
            return
    holder = engine.containers.run(image, ["sleep", "300"], ports={9: None}, labels=labels)
    try:
        port = next(b.host_port for b in holder.ports if b.container_port == 9)
        assert port, holder.ports
        yield port
    finally:
        with contextlib.suppress(EngineError):
            engine.containers.remove(holder, force=True)


def free_host_port(engine: Engine, image: str, labels: dict[str, str] | None = None) -> int:
    """A TCP port nothing holds right now on the engine's host at its published address.

    Where that address is this machine's (an engine here, or the test host
    reaching its own engine over ssh) a socket bound there finds one. Elsewhere
    no socket here can: the engine picks one for a container of ``image``
    (labelled ``labels``) published there, it is read back and freed by
    removing the container.
    """
    address = published_address(engine)
    with hold_port(address) as port:
        if port is not None:
            return port
    c = engine.containers.run(image, ["sleep", "60"], ports={9: None}, labels=labels)
    try:
        bound = [b.host_port for b in engine.containers.get(c).ports if b.container_port == 9]
    finally:
        engine.containers.remove(c, force=True)
    assert bound and bound[0], f"the engine published no port: {bound}"
    return int(bound[0])


def http_get(
    port: int,
    path: str = "/",
    *,
    host: str = "127.0.0.1",
    within: float = 10.0,
    interval: float = 0.1,
) -> bytes:
    """One successful HTTP GET of ``path`` on ``host:port`` (only there).

    ``host`` is an IP address: loopback, or the engine host's
    :func:`published_address` (no name is looked up). A failed attempt (the
    server may still be starting) is retried every ``interval`` seconds until
    ``within`` seconds have passed since the first one: a published port must
    answer within that time of ``run`` returning. Returns the body of a 200.
    """
    ip = ipaddress.ip_address(host)  # an address, never a name to look up
    shown = f"[{ip}]" if ip.version == 6 else str(ip)
    deadline = time.monotonic() + within
    attempts = 0
    last: Exception | None = None
    while True:
        attempts += 1
        remaining = deadline - time.monotonic()
        conn = http.client.HTTPConnection(str(ip), port, timeout=max(0.2, min(2.0, remaining)))
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status == 200:
                return body
            last = RuntimeError(f"HTTP {resp.status}: {body[:200]!r}")
        except (OSError, http.client.HTTPException) as exc:
            last = exc
        finally:
            conn.close()
        if time.monotonic() + interval > deadline:
            break
        time.sleep(interval)
    pytest.fail(
        f"GET http://{shown}:{port}{path}: no answer within {within}s "
        f"({attempts} attempts; last: {last!r})"
    )


def parse_rfc3339(text: str | bytes) -> dt.datetime:
    """An RFC 3339 timestamp (any number of fractional digits) as an aware UTC datetime."""
    try:
        parsed = timeutil.parse_rfc3339(text)
    except ValueError:
        parsed = None
    assert parsed is not None, f"not an RFC 3339 timestamp: {text!r}"
    return parsed


def parse_env(output: bytes) -> dict[str, str]:
    """The variables printed by ``env`` (one ``NAME=value`` a line)."""
    out: dict[str, str] = {}
    for line in output.decode("utf-8", "replace").splitlines():
        name, sep, value = line.partition("=")
        if sep:
            out[name] = value
    return out


def assert_utc(value: dt.datetime | None, what: str = "timestamp") -> dt.datetime:
    """``value`` is an aware datetime in UTC; return it."""
    assert isinstance(value, dt.datetime), f"{what} is {value!r}, not a datetime"
    assert value.tzinfo is not None, f"{what} is naive: {value!r}"
    assert value.utcoffset() == dt.timedelta(0), f"{what} is not UTC: {value!r}"
    return value
