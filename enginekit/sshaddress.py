"""``ssh://[user@]host[:port][/path]`` addresses, checked so that ssh reads them as
a destination and nothing else (see :mod:`enginekit.sshtunnel`)."""

from __future__ import annotations

import re
import urllib.parse

import attrs

from .errors import InvalidSpec

__all__ = ["SshAddress"]

#: A host or user name ssh will not take as an option or a second argument.
_NAME = re.compile(r"[A-Za-z0-9_.:%\[\]-]+")
_USER = re.compile(r"[A-Za-z0-9_.$-]+")


@attrs.frozen
class SshAddress:
    """``ssh://[user@]host[:port][/path]`` taken apart.

    ``path`` is what follows the host (a remote socket or directory; ``""``
    when none is given). ``identity`` is a key file for ``-i``; it is never
    shown (not in :attr:`url`, not in a repr).
    """

    host: str
    user: str | None = None
    port: int | None = None
    path: str = ""
    identity: str | None = attrs.field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str, *, identity: str | None = None, what: str = "ssh") -> SshAddress:
        """Read an ``ssh://`` URL (a scheme such as ``docker+ssh://`` is taken too).

        Anything ssh could read as an option, or that is not a host name, is
        :class:`InvalidSpec`; so is a password in the URL.
        """
        if not isinstance(url, str) or "://" not in url:
            raise InvalidSpec(f"{what}: an ssh address is ssh://[user@]host[:port][/path]")
        rest = url.split("://", 1)[1]
        try:
            parts = urllib.parse.urlsplit("ssh://" + rest)
            port = parts.port
        except ValueError as exc:
            raise InvalidSpec(f"{what}: not an ssh address ({exc})") from None
        if parts.password is not None:
            raise InvalidSpec(
                f"{what}: an ssh address must not hold a password (user:password@): "
                "enginekit sends none; use keys or the ssh agent"
            )
        if parts.query or parts.fragment:
            raise InvalidSpec(f"{what}: an ssh address takes no query or fragment")
        host = parts.hostname or ""
        if not host or host.startswith("-") or not _NAME.fullmatch(host):
            raise InvalidSpec(f"{what}: the ssh address needs a host name (ssh://[user@]host)")
        user = urllib.parse.unquote(parts.username) if parts.username else None
        if user is not None and (user.startswith("-") or not _USER.fullmatch(user)):
            raise InvalidSpec(f"{what}: {user!r} is not a user name ssh takes")
        if port is not None and not 0 < port < 65536:
            raise InvalidSpec(f"{what}: ssh port {port} is out of range")
        path = urllib.parse.unquote(parts.path)
        if path in ("", "/"):
            path = ""
        elif "\x00" in path or "\n" in path:
            raise InvalidSpec(f"{what}: the path of an ssh address holds a control character")
        if identity is not None and (not isinstance(identity, str) or not identity):
            raise InvalidSpec(f"{what}: identity must be the path of a key file")
        return cls(host=host, user=user, port=port, path=path, identity=identity)

    @property
    def url(self) -> str:
        """``ssh://user@host:port/path``, as messages show it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"ssh://{user}{host}{port}{self.path}"

    def options(self) -> list[str]:
        """ssh's options naming the user, port and identity (the host comes after ``--``)."""
        out: list[str] = []
        if self.user:
            out += ["-l", self.user]
        if self.port:
            out += ["-p", str(self.port)]
        if self.identity:
            out += ["-i", self.identity]
        return out

    def command(self) -> str:
        """How a user would reach the host by hand (for hints), without the identity."""
        port = f"-p {self.port} " if self.port else ""
        user = f"{self.user}@" if self.user else ""
        return f"ssh {port}{user}{self.host}"
