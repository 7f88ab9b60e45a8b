"""Parse, dispatch, and turn every error into one line and an exit code."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from . import EXIT_CODES, EXIT_INTERRUPTED, EXIT_USAGE

__all__ = ["UsageError", "exit_code_for", "run"]


class UsageError(Exception):
    """Bad command-line input found after parsing (exit code 2)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an interrupt so that cleanup (``run --rm``, ``compare``) runs."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def _handle_sigterm() -> Callable[[], None]:
    """Install the SIGTERM handler (main thread, default handler only); return its undo."""
    import signal
    import threading

    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return lambda: None
    signal.signal(signal.SIGTERM, _on_sigterm)

    def undo() -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    return undo


def exit_code_for(exc: BaseException) -> int:
    """The documented exit code of an ``EngineError`` (most specific class wins)."""
    for cls in type(exc).__mro__:
        code = EXIT_CODES.get(cls.__name__)
        if code is not None and cls.__module__ == "enginekit.errors":
            return code
    return EXIT_CODES["EngineError"]


def _error(message: str) -> None:
    sys.stdout.flush()
    sys.stderr.write(f"enginekit: {message}\n")
    sys.stderr.flush()


def run(argv: Sequence[str] | None = None) -> int:
    from ._parser import build_parser

    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.version:
        from enginekit import __version__

        print(f"enginekit {__version__}")
        return 0
    if args.command_name is None:
        parser.print_help()
        return EXIT_USAGE

    from enginekit.errors import BuildFailed, EngineError

    from . import _commands

    undo = _handle_sigterm()
    try:
        return _commands.dispatch(args)
    except UsageError as exc:
        _error(f"error: {exc}")
        return EXIT_USAGE
    except BuildFailed as exc:
        lines = str(exc).splitlines() or ["build failed"]
        _error(f"BuildFailed: {lines[0]}")
        for line in lines[1:]:
            sys.stderr.write(f"  {line}\n")
        return exit_code_for(exc)
    except EngineError as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        _error(f"{type(exc).__name__}: {text}")
        return exit_code_for(exc)
    except Terminated:
        _error("terminated")
        return 128 + 15
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, as other tools do.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as exc:
        _error(f"error: {exc.strerror or exc}")
        return EXIT_CODES["EngineError"]
    finally:
        undo()
