"""The CLI's interrupts cannot be lost: Ctrl-C or SIGTERM arriving while a
finaliser runs (where Python reports the exception as ignored) is raised again
in the code that runs next, waking a blocked read."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    from enginekit.cli import _app

    undo = _app._handle_signals()

    class Finalised:
        def __del__(self):
            # The signal arrives here, in a finaliser: its exception is "ignored".
            os.kill(os.getpid(), int(sys.argv[1]))
            time.sleep(5)  # (not reached: the signal's exception ends the finaliser)

    try:
        obj = Finalised()
        del obj
        r, w = os.pipe()
        os.read(r, 1)  # blocks for ever unless the interrupt is raised again
        print("not interrupted")
    except _app.Terminated:
        print("terminated")
    except KeyboardInterrupt:
        print("interrupted")
    finally:
        undo()
    """
)


def _defaults() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _python(script: str, arg: str) -> subprocess.CompletedProcess[str]:
    """``script`` in a new interpreter, Ctrl-C and SIGTERM at their defaults."""
    return subprocess.run(
        [sys.executable, "-c", script, arg],
        capture_output=True,
        text=True,
        timeout=30,
        preexec_fn=_defaults,
    )


@pytest.mark.parametrize(
    ("signum", "said"), [(signal.SIGINT, "interrupted"), (signal.SIGTERM, "terminated")]
)
def test_an_interrupt_lost_in_a_finaliser_is_raised_again(signum: int, said: str) -> None:
    proc = _python(SCRIPT, str(int(signum)))
    assert proc.stdout.strip() == said, proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_ignored_sigint_stays_ignored() -> None:
    script = (
        "import signal; from enginekit.cli import _app; undo = _app._handle_signals(); "
        "print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN); undo()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    assert proc.stdout.strip() == "True", proc.stderr


QUIET = textwrap.dedent(
    """
    import os, signal, sys
    from enginekit.cli import _app

    class Broken:
        def __del__(self):
            raise ValueError("half-closed")

    undo = _app._handle_signals()
    if sys.argv[1] == "interrupted":
        try:
            os.kill(os.getpid(), signal.SIGINT)
            signal.pause()  # the interrupt is raised here
        except KeyboardInterrupt:
            pass
    obj = Broken()
    del obj
    undo()
    obj = Broken()  # on the way out too
    """
)


@pytest.mark.parametrize("when", ["interrupted", "running"])
def test_finaliser_noise_is_quiet_only_after_an_interrupt(when: str) -> None:
    proc = _python(QUIET, when)
    assert proc.returncode == 0, proc.stderr
    if when == "interrupted":
        assert proc.stderr == ""
    else:
        assert proc.stderr.count("ValueError: half-closed") == 2, proc.stderr


class _BrokenStream:
    """A follow that an interrupt broke off: its next read fails (as an engine
    error), as a stream may on its way out."""

    def __init__(self) -> None:
        self.closed = False

    def __iter__(self) -> _BrokenStream:
        return self

    def __next__(self) -> object:
        from enginekit.errors import EngineError

        raise EngineError("unexpected RuntimeError in containers.stream_logs")

    def close(self) -> None:
        self.closed = True


class _Containers:
    def __init__(self) -> None:
        self.stream = _BrokenStream()
        self.removed: list[str] = []

    def stream_logs(self, ref: str, *, follow: bool) -> _BrokenStream:
        return self.stream

    def remove(self, ref: str, *, force: bool) -> None:
        self.removed.append(ref)


class _Engine:
    def __init__(self) -> None:
        self.containers = _Containers()


@pytest.mark.parametrize("signalled", [KeyboardInterrupt, "Terminated", None])
def test_a_stream_error_after_an_interrupt_ends_as_the_signal_asked(
    signalled: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from enginekit.cli import _app, _containers
    from enginekit.errors import EngineError

    kind = _app.Terminated if signalled == "Terminated" else signalled
    monkeypatch.setattr(_app, "interrupt", kind() if isinstance(kind, type) else None)
    engine = _Engine()
    expected = kind if isinstance(kind, type) else EngineError
    with pytest.raises(expected) as info:  # type: ignore[call-overload]
        _containers._attach(engine, "c1", remove=True)  # type: ignore[arg-type]
    # The interrupt's own class (130 or 143), not the stream's error (125);
    # without an interrupt the error is the command's.
    assert type(info.value) is expected
    assert engine.containers.stream.closed and engine.containers.removed == ["c1"]
