"""Parse, dispatch, and turn every error into one line and an exit code."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from . import EXIT_CODES, EXIT_INTERRUPTED, EXIT_USAGE

__all__ = ["UsageError", "each", "exit_code_for", "run"]


class UsageError(Exception):
    """Bad command-line input found after parsing (exit code 2)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an interrupt so that cleanup (``run --rm``, ``compare``) runs."""


_interrupted = False
# The exception the last signal raised (KeyboardInterrupt or Terminated), for
# code that must end as that signal asked even where another error took its place.
interrupt: KeyboardInterrupt | None = None


def _quiet(unraisable: object) -> None:
    """An interrupted command's finalisers: nothing to say."""


def _on_signal(signum: int, frame: object) -> None:
    import signal

    global _interrupted, interrupt
    _interrupted = True
    interrupt = Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
    raise interrupt


def _handle_signals() -> Callable[[], None]:
    """Ctrl-C and SIGTERM as interrupts that cannot be lost; return the undo.

    Python raises a signal's exception in whatever code runs when it arrives.
    If that is a finaliser (an HTTP response collected while a follow reads),
    the exception is reported as "ignored" and the command would go on reading
    until the container ends. Such an interrupt is sent again, to be raised in
    the code that runs next (a blocked read is woken by the signal). Installed
    in the main thread only: SIGTERM if at its default, SIGINT if at Python's,
    never one a caller or the shell set or ignored.
    """
    import signal
    import threading

    global interrupt
    interrupt = None
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    installed: list[tuple[int, object]] = []
    for signum, default in (
        (signal.SIGTERM, signal.SIG_DFL),
        (signal.SIGINT, signal.default_int_handler),
    ):
        previous = signal.getsignal(signum)
        if previous is default:
            signal.signal(signum, _on_signal)
            installed.append((signum, previous))
    if not installed:
        return lambda: None
    ours = {signum for signum, _ in installed}
    main = threading.main_thread().ident
    previous_hook = sys.unraisablehook

    def hook(unraisable: object) -> None:
        exc = getattr(unraisable, "exc_value", None)
        if isinstance(exc, KeyboardInterrupt):
            signum = signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT
            if signum in ours and main is not None:
                # Sent from another thread a moment later: raised here, the
                # exception would be lost in this hook in its turn.
                resend = threading.Timer(0.05, signal.pthread_kill, (main, signum))
                resend.daemon = True
                resend.start()
                return
        if _interrupted:
            # Once interrupted, an object the interrupt left half-closed (an HTTP
            # response, a socket) may fail in its finaliser: the command is
            # ending as asked, and a traceback would only alarm.
            return
        previous_hook(unraisable)  # type: ignore[arg-type]

    sys.unraisablehook = hook

    def undo() -> None:
        # After an interrupt the process ends: what is finalised on the way out
        # stays quiet too. Otherwise the hook is given back.
        sys.unraisablehook = _quiet if _interrupted else previous_hook
        for signum, previous in installed:
            signal.signal(signum, previous)  # type: ignore[arg-type]

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


def each(refs: Sequence[str], action: Callable[[str], object], *, done: str = "{}") -> int:
    """Apply ``action`` to every ref (as docker does: go on after a failure);
    the exit code is the first failure's."""
    from enginekit.errors import EngineError

    code = 0
    for ref in refs:
        try:
            action(ref)
        except EngineError as exc:
            _error(f"{type(exc).__name__}: {' '.join(str(exc).split())}")
            code = code or exit_code_for(exc)
        else:
            print(done.format(ref))
    return code


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

    undo = _handle_signals()
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
