"""TLS for an engine reached over TCP, and the rule for plain TCP.

:class:`TLSConfig` is what a ``tls=`` connect option, Docker's
``DOCKER_TLS_VERIFY``/``DOCKER_TLS``/``DOCKER_CERT_PATH`` or a Docker
context's TLS material says: a CA to verify the engine's certificate
against (else the system's), a client certificate and key to show, and
whether to verify at all. :meth:`TLSConfig.context` makes the
:class:`ssl.SSLContext`, reading the files at once: a file that is missing or
is not what it should be is :class:`~enginekit.errors.InvalidSpec` before
anything is sent.

Plain TCP (no TLS) to an engine hands anyone who can reach that port the
engine, and with it root on its host: :func:`check_plain_tcp` refuses it for
any address but loopback unless the caller says ``insecure=True``.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from .errors import InvalidSpec

__all__ = ["ClientContext", "TLSConfig", "check_plain_tcp", "is_loopback"]

_KEYS = {"ca", "cert", "key", "verify"}


class ClientContext(ssl.SSLContext):
    """A client :class:`ssl.SSLContext` that says whether it shows a client
    certificate, so that a session the engine ends without a word can be said
    as what it most likely is (an engine that wants one, under TLS 1.3, may
    close or reset the connection rather than send its alert)."""

    shows_certificate: bool = False


@attrs.frozen
class TLSConfig:
    """Files are paths (None: not given); ``shown`` says where they came from in messages."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    verify: bool = True
    shown: str = attrs.field(default="the tls option", eq=False)

    @classmethod
    def from_option(cls, value: Any, *, what: str = "tls") -> TLSConfig | None:
        """The ``tls=`` option: None/False (no TLS), True (TLS, verified against the
        system's CAs), a mapping with ``ca``, ``cert``, ``key`` (paths) and ``verify``
        (default True), or a :class:`TLSConfig`."""
        if value is None or value is False:
            return None
        if value is True:
            return cls(shown=what)
        if isinstance(value, TLSConfig):
            return value
        if not isinstance(value, Mapping):
            raise InvalidSpec(
                f"{what} must be True, False, or a mapping with ca, cert, key and verify"
            )
        unknown = set(value) - _KEYS
        if unknown:
            raise InvalidSpec(
                f"{what}: unknown keys {sorted(map(str, unknown))} (use {sorted(_KEYS)})"
            )
        files: dict[str, str | None] = {}
        for name in ("ca", "cert", "key"):
            path = value.get(name)
            if path is not None and (not isinstance(path, str | os.PathLike) or not str(path)):
                raise InvalidSpec(f"{what}: {name} must be the path of a PEM file")
            files[name] = os.fspath(path) if path is not None else None
        verify = value.get("verify", True)
        if not isinstance(verify, bool):
            raise InvalidSpec(f"{what}: verify must be True or False")
        return cls(**files, verify=verify, shown=what)

    @classmethod
    def from_docker_env(cls, env: Mapping[str, str] | None = None) -> TLSConfig | None:
        """What the docker CLI makes of its environment: ``DOCKER_TLS_VERIFY`` (set
        and not empty: TLS, verified) or ``DOCKER_TLS`` (TLS, not verified), with
        ``ca.pem``, ``cert.pem`` and ``key.pem`` of ``DOCKER_CERT_PATH`` (else
        ``~/.docker``) where they exist; None when neither is set."""
        e = os.environ if env is None else env
        verify = bool(e.get("DOCKER_TLS_VERIFY"))
        if not verify and not e.get("DOCKER_TLS"):
            return None
        if e.get("DOCKER_CERT_PATH"):
            folder, shown = Path(e["DOCKER_CERT_PATH"]), "$DOCKER_CERT_PATH"
        else:
            home = e.get("HOME")
            folder, shown = (Path(home) if home else Path.home()) / ".docker", "~/.docker"
        files = {
            name: str(folder / f"{name}.pem")
            for name in ("ca", "cert", "key")
            if (folder / f"{name}.pem").is_file()
        }
        if verify and "ca" not in files:
            raise InvalidSpec(
                f"docker: DOCKER_TLS_VERIFY is set but {shown}/ca.pem does not exist "
                "(the CA the engine's certificate is checked against)"
            )
        which = "DOCKER_TLS_VERIFY" if verify else "DOCKER_TLS"
        return cls(**files, verify=verify, shown=f"{which} ({shown})")

    def context(self) -> ClientContext:
        """The client context: TLS 1.2 or newer; the CA (or the system's) and the
        host name checked when ``verify``; the client certificate shown when given."""
        if (self.cert is None) != (self.key is None) and self.key is not None:
            raise InvalidSpec(f"{self.shown}: a client key needs its certificate (cert)")
        ctx = ClientContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.verify:
            ctx.check_hostname = True
            ctx.verify_mode = ssl.CERT_REQUIRED
            if self.ca is not None:
                self._load(ctx.load_verify_locations, "ca", self.ca)
            else:
                ctx.load_default_certs()
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.cert is not None:
            self._load(lambda path: ctx.load_cert_chain(path, self.key), "cert/key", self.cert)
            ctx.shows_certificate = True
        return ctx

    def _load(self, load: Any, name: str, path: str) -> None:
        shown = f"{self.shown}: {name}"
        if not os.path.isfile(path):
            raise InvalidSpec(f"{shown}: no such file {_show(path, self.shown)}")
        try:
            load(path)
        except ssl.SSLError as exc:
            raise InvalidSpec(
                f"{shown}: {_show(path, self.shown)} is not usable PEM ({exc.reason or exc})"
            ) from exc
        except OSError as exc:
            detail = f"cannot read {_show(path, self.shown)}: {exc.strerror}"
            raise InvalidSpec(f"{shown}: {detail}") from exc


def _show(path: str, shown: str) -> str:
    """A path as a message shows it: its file name alone when it came from the environment."""
    return f".../{os.path.basename(path)}" if "$" in shown or "~" in shown else path


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1); names are not resolved."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def check_plain_tcp(engine: str, host: str, *, insecure: bool, where: str = "") -> None:
    """Refuse plain TCP to ``host`` unless it is loopback or ``insecure`` is True."""
    if insecure is True or is_loopback(host):
        return
    raise InvalidSpec(
        f"{engine}: plain tcp:// to {host} (not loopback) needs insecure=True: whoever can "
        f"reach that port drives {engine} without a password, which is root on its host; "
        f"{where}use TLS (tls=, DOCKER_TLS_VERIFY) or ssh:// instead"
    )
