"""The argument parser of the ``enginekit`` command (argparse only; a command's own
parser is made only when that command runs)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

# Not typing.TYPE_CHECKING: --help and --version need no typing (attrs needs it later).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["build_parser"]

DESCRIPTION = """\
Docker's everyday commands on any installed enginekit engine (Docker, Podman, LXC, ...).
The engine is --engine NAME|URL, else $ENGINEKIT_ENGINE / $ENGINEKIT_URL, else the nearest
enginekit.toml or [tool.enginekit] in pyproject.toml, else the first reachable engine.
"""

EPILOG = """\
exit codes: 0 ok; 1 compare found differences; 2 usage; 118 Unsupported; 119 BuildFailed;
120 InvalidSpec; 121 Conflict; 122 NotFound; 123 EngineUnavailable; 124 EngineTimeout;
125 other engine error; 130 interrupted; 143 terminated.
`run`, `start -a` and `exec` exit with the container's (command's) own exit code.
"""


def _engine_option(parser: argparse.ArgumentParser, *, top: bool) -> None:
    parser.add_argument(
        "--engine",
        metavar="NAME|URL",
        # On subcommands the default is suppressed so a global --engine survives.
        default=None if top else argparse.SUPPRESS,
        help="engine to use: adapter name (docker, podman, lxc) or URL",
    )


def _json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON (for scripts)")


def _container_options(parser: argparse.ArgumentParser) -> None:
    """The container spec flags shared by ``run`` and ``create``."""
    add = parser.add_argument
    add("--name", help="container name")
    add(
        "-e",
        "--env",
        action="append",
        default=[],
        metavar="KEY[=VALUE]",
        help="set an environment variable (KEY alone takes ours)",
    )
    add("-l", "--label", action="append", default=[], metavar="KEY[=VALUE]", help="set a label")
    add("-w", "--workdir", help="working directory inside the container")
    add("-u", "--user", help="user[:group] (name or id)")
    add("--hostname", help="container host name")
    add("--entrypoint", help="override the image's entrypoint (one program)")
    add(
        "-p",
        "--publish",
        action="append",
        default=[],
        metavar="[IP:][HOSTPORT:]PORT[/PROTO]",
        help=(
            "publish a container port (host side defaults to the engine's address, "
            "127.0.0.1 on this machine; host port to any free one)"
        ),
    )
    add(
        "-v",
        "--volume",
        action="append",
        default=[],
        metavar="SRC:DST[:ro]",
        help="bind-mount a host path",
    )
    add("--memory", "-m", metavar="BYTES", help="memory limit, e.g. 64m")
    add("--cpus", type=float, help="CPU limit, e.g. 0.5")
    add("--pids-limit", type=int, help="maximum number of tasks")
    add("--network", choices=("bridge", "none", "host"), help="network mode (default bridge)")
    add("--stop-signal", help="signal that stops the container (default SIGTERM)")
    add("image", help="image reference")
    add("command", nargs=argparse.REMAINDER, help="command and arguments")


def _filter_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"filter ({what}); repeatable, all must match",
    )


class _Deferred(argparse.ArgumentParser):
    """A subcommand's parser, made with its arguments the first time it is used.

    argparse asks only the parser of the command given for its arguments, so
    one of the thirty is made per run: making them all took longer than the
    rest of a command's start-up. ``add_parser(NAME, fill=FUNCTION, ...)``
    gives ``fill`` (which adds the arguments) and the parser's own settings.
    """

    def __init__(self, *, fill: Callable[[argparse.ArgumentParser], None], **kwargs: Any) -> None:
        # ArgumentParser.__init__ runs in _make(), when the parser is first used.
        self.__dict__["_deferred"] = (fill, kwargs)

    def _make(self) -> None:
        deferred = self.__dict__.pop("_deferred", None)
        if deferred is not None:
            fill, kwargs = deferred
            super().__init__(**kwargs)
            fill(self)

    def parse_known_args(self, *args: Any, **kwargs: Any) -> Any:
        self._make()
        return super().parse_known_args(*args, **kwargs)

    def _check_help(self, action: Any) -> None:
        # Python 3.14's add_parser checks the command's help text on the new
        # parser, which would make every parser: our help texts are fixed, and
        # a parser once made checks as argparse does.
        if "_deferred" in self.__dict__:
            return
        check = getattr(super(), "_check_help", None)
        if check is not None:
            check(action)

    def __getattr__(self, name: str) -> Any:
        # Reached only for an attribute not set yet: any other use makes the parser.
        if "_deferred" not in self.__dict__:
            raise AttributeError(name)
        self._make()
        return getattr(self, name)


Fill = Callable[[argparse.ArgumentParser], None]


def _command(name: str, fill: Fill, *, dest: str = "command_name") -> Fill:
    """``fill`` and what every command takes: ``--engine``, and its name in the result."""

    def full(parser: argparse.ArgumentParser) -> None:
        _engine_option(parser, top=False)
        parser.set_defaults(**{dest: name})
        fill(parser)

    return full


def _engines(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "targets", nargs="*", metavar="ENGINE", help="adapter names or URLs (default: every one)"
    )
    _json_option(p)


def _build(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-t",
        "--tag",
        action="append",
        default=[],
        metavar="NAME:TAG",
        help="tag the image (repeatable)",
    )
    p.add_argument(
        "-f",
        "--file",
        default="Dockerfile",
        metavar="PATH",
        help="Dockerfile, relative to the context (default Dockerfile)",
    )
    p.add_argument(
        "--build-arg", action="append", default=[], metavar="KEY=VALUE", help="set a build argument"
    )
    p.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="KEY[=VALUE]",
        help="set a label on the image",
    )
    p.add_argument("--target", help="build up to this stage")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image id")
    _json_option(p)
    p.add_argument("context", help="build context directory")


def _images(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="print only image ids")
    _filter_option(p, "label=KEY or label=KEY=VALUE")
    _json_option(p)
    p.add_argument("name", nargs="?", help="only images of this repository (or name:tag)")


def _image_rm(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="remove even if a container uses it")
    p.add_argument("images", nargs="+", metavar="IMAGE")


def _image_save(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", required=True, metavar="PATH", help="archive file to write")
    p.add_argument("image")


def _image_load(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--input", required=True, metavar="PATH", help="archive file to read")
    _json_option(p)


def _image_tag(p: argparse.ArgumentParser) -> None:
    p.add_argument("source")
    p.add_argument("target")


def _image_inspect(p: argparse.ArgumentParser) -> None:
    _json_option(p)
    p.add_argument("images", nargs="+", metavar="IMAGE")


def _image(p: argparse.ArgumentParser) -> None:
    isub = p.add_subparsers(
        dest="image_command", metavar="SUBCOMMAND", required=True, parser_class=_Deferred
    )
    for name, help, aliases, fill in (
        ("rm", "remove images", ("remove",), _image_rm),
        ("save", "write an image as an OCI archive", (), _image_save),
        ("load", "load images from an archive", (), _image_load),
        ("tag", "add a tag to an image", (), _image_tag),
        ("inspect", "show an image", (), _image_inspect),
        ("ls", "list images (as `enginekit images`)", ("list",), _images),
    ):
        isub.add_parser(
            name,
            help=help,
            description=help,
            aliases=list(aliases),
            fill=_command(name, fill, dest="image_command"),
        )


def _one_image(p: argparse.ArgumentParser) -> None:
    p.add_argument("image")


def _run(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--detach", action="store_true", help="print the id and return at once")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    _container_options(p)


def _start(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-a",
        "--attach",
        action="store_true",
        help="(one container) follow its output and exit with its code",
    )
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def _ps(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="all containers, not only running")
    p.add_argument("-q", "--quiet", action="store_true", help="print only container ids")
    p.add_argument("--no-trunc", action="store_true", help="full ids")
    _filter_option(p, "label=KEY[=VALUE], name=NAME, status=created|running|paused|exited")
    _json_option(p)


def _inspect(p: argparse.ArgumentParser) -> None:
    p.add_argument("--type", choices=("container", "image"), help="only look for this kind")
    p.add_argument(
        "--show-env",
        action="store_true",
        help="show environment values (hidden by default: they may be secrets)",
    )
    _json_option(p)
    p.add_argument("refs", nargs="+", metavar="REF")


def _logs(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--follow", action="store_true", help="follow until the container exits")
    p.add_argument("-t", "--timestamps", action="store_true", help="prefix each line with its time")
    p.add_argument("--tail", type=int, metavar="N", help="only the last N lines")
    p.add_argument("container")


def _exec(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-e",
        "--env",
        action="append",
        default=[],
        metavar="KEY[=VALUE]",
        help="set an environment variable",
    )
    p.add_argument("-w", "--workdir", help="working directory")
    p.add_argument("-u", "--user", help="user[:group]")
    p.add_argument("container")
    p.add_argument("command", nargs=argparse.REMAINDER, help="command and arguments")


def _containers(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def _stop(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-t",
        "--time",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="seconds to wait before SIGKILL (default 10)",
    )
    _containers(p)


def _kill(p: argparse.ArgumentParser) -> None:
    p.add_argument("-s", "--signal", default="SIGKILL", help="signal name or number")
    _containers(p)


def _rm(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="remove running containers too")
    _containers(p)


def _wait(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="give up after this long")
    _containers(p)


def _cp(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SRC")
    p.add_argument("dest", metavar="DEST")


def _stats(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-stream", action="store_true", help="accepted for docker compatibility")
    _json_option(p)
    _containers(p)


def _prune(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    _filter_option(p, "label=KEY or label=KEY=VALUE")
    _json_option(p)


def _compare(p: argparse.ArgumentParser) -> None:
    p.set_defaults(command_name="compare")
    p.add_argument(
        "--engine",
        action="append",
        dest="compare_engines",
        default=[],
        metavar="NAME|URL",
        help="an engine to compare (repeatable)",
    )
    p.add_argument(
        "--build",
        metavar="CONTEXT",
        help="build CONTEXT as IMAGE on each engine first (removed afterwards)",
    )
    p.add_argument(
        "-f",
        "--file",
        default="Dockerfile",
        metavar="PATH",
        help="with --build: the Dockerfile, relative to the context",
    )
    p.add_argument(
        "-e",
        "--env",
        action="append",
        default=[],
        metavar="KEY[=VALUE]",
        help="set an environment variable",
    )
    p.add_argument("-w", "--workdir", help="working directory inside the container")
    p.add_argument("-u", "--user", help="user[:group]")
    p.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="longest wait for each container (default 120)",
    )
    _json_option(p)
    p.add_argument("image", help="image to run (with --build: the tag to build)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="command and arguments")


#: The commands in the order ``--help`` lists them: name, help, arguments.
COMMANDS: tuple[tuple[str, str, Fill], ...] = (
    (
        "engines",
        "list installed engines (or the ENGINEs named): reachable or not (and why), versions, "
        "cgroup layout, rootless, image store, and what each instance can and cannot do (and why); "
        "then the engines Docker contexts and Podman connections name, where they point, which "
        "one is current and whether it answers",
        _engines,
    ),
    ("version", "print the enginekit version and the engine's", _json_option),
    # -- images
    ("build", "build an image from a Dockerfile", _build),
    ("images", "list images", _images),
    ("image", "manage images (rm, save, load, tag, inspect, ls)", _image),
    ("pull", "pull an image from a registry", _one_image),
    ("push", "push an image to a registry", _one_image),
    ("rmi", "remove images (as `enginekit image rm`)", _image_rm),
    # -- containers
    ("run", "create and start a container; without -d, wait and exit with its code", _run),
    ("create", "create a container (not started); print its id", _container_options),
    ("start", "start containers", _start),
    ("ps", "list containers (running and paused; -a: all)", _ps),
    ("inspect", "show containers or images", _inspect),
    ("logs", "print a container's output (stdout and stderr kept apart)", _logs),
    ("exec", "run a command in a running container; exit with its code", _exec),
    ("pause", "pause containers", _containers),
    ("unpause", "unpause containers", _containers),
    ("stop", "stop containers (stop signal, then SIGKILL after --time)", _stop),
    ("restart", "restart containers", _stop),
    ("kill", "send a signal to containers (default SIGKILL)", _kill),
    ("rm", "remove containers", _rm),
    ("wait", "wait for containers to exit; print their exit codes", _wait),
    ("cp", "copy files between a container and the host (CONTAINER:PATH on one side)", _cp),
    ("stats", "one sample of CPU time, memory and pids per container", _stats),
    ("prune", "remove exited containers", _prune),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="enginekit",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _engine_option(parser, top=True)
    parser.add_argument("--version", action="store_true", help="print the enginekit version")
    sub = parser.add_subparsers(dest="command_name", metavar="COMMAND", parser_class=_Deferred)
    for name, help, fill in COMMANDS:
        sub.add_parser(name, help=help, description=help, fill=_command(name, fill))
    sub.add_parser(
        "compare",
        help="run the same container on several engines and show what each saw",
        description=(
            "Run IMAGE [CMD...] on every chosen engine (default: every reachable one) and "
            "print state, exit code, stdout, stderr and timings side by side. Exit 0 when "
            "all agree, 1 when they differ. Everything it creates is labelled and removed."
        ),
        fill=_compare,
    )
    return parser
