"""The argument parser of the ``enginekit`` command (argparse only: cheap to build)."""

from __future__ import annotations

import argparse

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="enginekit",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _engine_option(parser, top=True)
    parser.add_argument("--version", action="store_true", help="print the enginekit version")
    sub = parser.add_subparsers(dest="command_name", metavar="COMMAND")

    def cmd(name: str, help: str, *, aliases: tuple[str, ...] = ()) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, aliases=list(aliases))
        _engine_option(p, top=False)
        p.set_defaults(command_name=name)
        return p

    p = cmd(
        "engines",
        "list installed engines (or the ENGINEs named): reachable or not (and why), versions, "
        "cgroup layout, rootless, image store, and what each instance can and cannot do (and why); "
        "then the engines Docker contexts and Podman connections name, where they point, which "
        "one is current and whether it answers",
    )
    p.add_argument(
        "targets", nargs="*", metavar="ENGINE", help="adapter names or URLs (default: every one)"
    )
    _json_option(p)

    p = cmd("version", "print the enginekit version and the engine's")
    _json_option(p)

    # -- images ---------------------------------------------------------------
    p = cmd("build", "build an image from a Dockerfile")
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

    p = cmd("images", "list images")
    p.add_argument("-q", "--quiet", action="store_true", help="print only image ids")
    _filter_option(p, "label=KEY or label=KEY=VALUE")
    _json_option(p)
    p.add_argument("name", nargs="?", help="only images of this repository (or name:tag)")

    p = cmd("image", "manage images (rm, save, load, tag, inspect, ls)")
    isub = p.add_subparsers(dest="image_command", metavar="SUBCOMMAND", required=True)

    def icmd(name: str, help: str, *, aliases: tuple[str, ...] = ()) -> argparse.ArgumentParser:
        q = isub.add_parser(name, help=help, description=help, aliases=list(aliases))
        _engine_option(q, top=False)
        q.set_defaults(image_command=name)
        return q

    q = icmd("rm", "remove images", aliases=("remove",))
    q.add_argument("-f", "--force", action="store_true", help="remove even if a container uses it")
    q.add_argument("images", nargs="+", metavar="IMAGE")
    q = icmd("save", "write an image as an OCI archive")
    q.add_argument("-o", "--output", required=True, metavar="PATH", help="archive file to write")
    q.add_argument("image")
    q = icmd("load", "load images from an archive")
    q.add_argument("-i", "--input", required=True, metavar="PATH", help="archive file to read")
    _json_option(q)
    q = icmd("tag", "add a tag to an image")
    q.add_argument("source")
    q.add_argument("target")
    q = icmd("inspect", "show an image")
    _json_option(q)
    q.add_argument("images", nargs="+", metavar="IMAGE")
    q = icmd("ls", "list images (as `enginekit images`)", aliases=("list",))
    q.add_argument("-q", "--quiet", action="store_true", help="print only image ids")
    _filter_option(q, "label=KEY or label=KEY=VALUE")
    _json_option(q)
    q.add_argument("name", nargs="?", help="only images of this repository (or name:tag)")

    p = cmd("pull", "pull an image from a registry")
    p.add_argument("image")
    p = cmd("push", "push an image to a registry")
    p.add_argument("image")

    p = cmd("rmi", "remove images (as `enginekit image rm`)")
    p.add_argument("-f", "--force", action="store_true", help="remove even if a container uses it")
    p.add_argument("images", nargs="+", metavar="IMAGE")

    # -- containers -----------------------------------------------------------
    p = cmd("run", "create and start a container; without -d, wait and exit with its code")
    p.add_argument("-d", "--detach", action="store_true", help="print the id and return at once")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    _container_options(p)

    p = cmd("create", "create a container (not started); print its id")
    _container_options(p)

    p = cmd("start", "start containers")
    p.add_argument(
        "-a",
        "--attach",
        action="store_true",
        help="(one container) follow its output and exit with its code",
    )
    p.add_argument("containers", nargs="+", metavar="CONTAINER")

    p = cmd("ps", "list containers (running and paused; -a: all)")
    p.add_argument("-a", "--all", action="store_true", help="all containers, not only running")
    p.add_argument("-q", "--quiet", action="store_true", help="print only container ids")
    p.add_argument("--no-trunc", action="store_true", help="full ids and commands")
    _filter_option(p, "label=KEY[=VALUE], name=NAME, status=created|running|paused|exited")
    _json_option(p)

    p = cmd("inspect", "show containers or images")
    p.add_argument("--type", choices=("container", "image"), help="only look for this kind")
    p.add_argument(
        "--show-env",
        action="store_true",
        help="show environment values (hidden by default: they may be secrets)",
    )
    _json_option(p)
    p.add_argument("refs", nargs="+", metavar="REF")

    p = cmd("logs", "print a container's output (stdout and stderr kept apart)")
    p.add_argument("-f", "--follow", action="store_true", help="follow until the container exits")
    p.add_argument("-t", "--timestamps", action="store_true", help="prefix each line with its time")
    p.add_argument("--tail", type=int, metavar="N", help="only the last N lines")
    p.add_argument("container")

    p = cmd("exec", "run a command in a running container; exit with its code")
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

    for name, help_ in (("pause", "pause containers"), ("unpause", "unpause containers")):
        p = cmd(name, help_)
        p.add_argument("containers", nargs="+", metavar="CONTAINER")

    p = cmd("stop", "stop containers (stop signal, then SIGKILL after --time)")
    p.add_argument(
        "-t",
        "--time",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="seconds to wait before SIGKILL (default 10)",
    )
    p.add_argument("containers", nargs="+", metavar="CONTAINER")

    p = cmd("restart", "restart containers")
    p.add_argument(
        "-t",
        "--time",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="seconds to wait before SIGKILL (default 10)",
    )
    p.add_argument("containers", nargs="+", metavar="CONTAINER")

    p = cmd("kill", "send a signal to containers (default SIGKILL)")
    p.add_argument("-s", "--signal", default="SIGKILL", help="signal name or number")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")

    p = cmd("rm", "remove containers")
    p.add_argument("-f", "--force", action="store_true", help="remove running containers too")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")

    p = cmd("wait", "wait for containers to exit; print their exit codes")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="give up after this long")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")

    p = cmd("cp", "copy files between a container and the host (CONTAINER:PATH on one side)")
    p.add_argument("source", metavar="SRC")
    p.add_argument("dest", metavar="DEST")

    p = cmd("stats", "one sample of CPU time, memory and pids per container")
    p.add_argument("--no-stream", action="store_true", help="accepted for docker compatibility")
    _json_option(p)
    p.add_argument("containers", nargs="+", metavar="CONTAINER")

    p = cmd("prune", "remove exited containers")
    p.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    _filter_option(p, "label=KEY or label=KEY=VALUE")
    _json_option(p)

    # -- compare --------------------------------------------------------------
    p = sub.add_parser(
        "compare",
        help="run the same container on several engines and show what each saw",
        description=(
            "Run IMAGE [CMD...] on every chosen engine (default: every reachable one) and "
            "print state, exit code, stdout, stderr and timings side by side. Exit 0 when "
            "all agree, 1 when they differ. Everything it creates is labelled and removed."
        ),
    )
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
    return parser
