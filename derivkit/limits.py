"""Wall-clock limits: the command's budget (`--timeout`) and per-call limits on SymPy, on one
SIGALRM interval timer.

Two kinds of limit, nesting in any order:

- `time_limit(s)`: raises `_TimeUp` inside the block after `s` seconds. Callers catch it and fall
  back (a less simplified form, a numeric test instead of an exact one).
- `budget(s, command)` (or `start_budget` inside `command_scope`, as the CLI does): the whole
  command's budget. Past it, `BudgetExceeded` is raised: a `DerivkitError` (exit 2, one line)
  that says what was running and how to proceed. It is never `_TimeUp`, so code that falls back
  on `_TimeUp` cannot swallow it.

An exception raised by the handler can be lost: Python ignores one raised inside a gc callback,
and code may catch it anyway (a broad `except Exception`). So while a limit's block is still
running after it fired, the timer fires again every `REPEAT_S` seconds.

The timer is always set to the earliest deadline of the active limits, so an inner limit never
cancels or postpones an outer one, and an outer deadline that falls inside an inner limit's
block surfaces as its own exception. A timer set by someone else (pytest-timeout, say) is kept:
its handler runs when its deadline passes, and it is re-armed when the last limit ends.

SIGALRM exists only on POSIX and only the main thread can receive it: elsewhere (Windows, a
worker thread) every limit here is a no-op and derivkit runs without a wall-clock budget.

This module is imported by the CLI at start-up: it imports nothing heavy.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any, TypeVar, cast

from .errors import BudgetExceeded

DEFAULT_TIMEOUT_S = 60.0
MAX_TIMEOUT_S = 1e6   # 11.6 days; the OS timer overflows far beyond it
REPEAT_S = 0.05       # a limit that fired while its block still runs fires again this long after
_EARLY_S = 1e-3       # a timer that fires this close before a deadline counts as on time

_SIGALRM: signal.Signals | None = getattr(signal, "SIGALRM", None)
_R = TypeVar("_R")


class _TimeUp(Exception):
    """A per-call `time_limit` ran out (caught by its caller, which falls back)."""


@dataclass(eq=False)
class _Limit:
    deadline: float
    kind: str                     # "call", "budget" or "foreign" (a timer set outside derivkit)
    seconds: float = 0.0
    command: str = ""
    fired_at: float | None = None
    handler: object = None        # "foreign": the handler to call at its deadline
    error: BudgetExceeded | None = None   # "budget": what it raised when it fired


_active: list[_Limit] = []        # outermost first; main thread only
_phases: list[str] = []           # what is running, innermost last (see `phase`)
_scopes: list[int] = []           # len(_active) when each command_scope began
_saved_handler: object = None
_exit_registered = False


def _sigalrm() -> signal.Signals:
    """SIGALRM (only asked for where `usable()` is true, so it exists)."""
    assert _SIGALRM is not None
    return _SIGALRM


def usable() -> bool:
    """Can limits be enforced here (SIGALRM and setitimer exist; this is the main thread)?"""
    return (_SIGALRM is not None and hasattr(signal, "setitimer")
            and threading.current_thread() is threading.main_thread())


_busy = 0                         # inside a critical section: the handler defers
_deferred = False


@contextmanager
def _critical() -> Iterator[None]:
    """The stack of limits and the timer change together: SIGALRM is held back meanwhile, and a
    tick whose Python handler runs inside anyway is deferred to just after."""
    global _busy, _deferred
    _busy += 1
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {_sigalrm()}) if hasattr(
        signal, "pthread_sigmask") else None
    try:
        yield
    finally:
        if old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        _busy -= 1
        if _deferred and not _busy:
            _deferred = False
            if _active:
                signal.setitimer(signal.ITIMER_REAL, 1e-4)


def _next_fire(limit: _Limit) -> float | None:
    if limit.fired_at is None:
        return limit.deadline
    if limit.kind == "foreign":
        return None
    # Fired, and its block is still running: the exception was lost (raised inside a gc
    # callback, which Python ignores) or swallowed: raise it again a little later.
    return limit.fired_at + REPEAT_S


def _arm() -> None:
    """Set the timer to the earliest pending deadline (or stop it)."""
    times = [t for t in map(_next_fire, _active) if t is not None]
    if not times:
        signal.setitimer(signal.ITIMER_REAL, 0)
        return
    signal.setitimer(signal.ITIMER_REAL, max(min(times) - time.monotonic(), 1e-4))


def _in_gc_callback(frame: FrameType | None) -> bool:
    """Is `frame` running inside a gc callback (where Python ignores a raised exception)?"""
    import gc

    codes = {getattr(cb, "__code__", None) for cb in gc.callbacks} - {None}
    depth = 0
    while codes and frame is not None and depth < 64:
        if frame.f_code in codes:
            return True
        frame, depth = frame.f_back, depth + 1
    return False


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    global _deferred
    if _busy:
        _deferred = True
        return
    if _in_gc_callback(frame):   # an exception raised here would be lost: try again just after
        if _active:              # (a tick delivered after the last limit ended arms nothing)
            signal.setitimer(signal.ITIMER_REAL, 1e-3)
        return
    now = time.monotonic()
    for limit in _active:                      # outermost first: the budget beats inner limits
        if limit.kind == "budget" and now >= (_next_fire(limit) or now) - _EARLY_S:
            limit.fired_at = now
            _arm()
            limit.error = limit.error or _exceeded(limit, frame)
            raise limit.error
    for limit in reversed(_active):            # innermost first
        if limit.kind == "call" and now >= (_next_fire(limit) or now) - _EARLY_S:
            limit.fired_at = now
            _arm()
            raise _TimeUp()
    for limit in _active:
        if limit.kind == "foreign" and limit.fired_at is None and now >= limit.deadline - _EARLY_S:
            limit.fired_at = now
            _arm()
            if callable(limit.handler):
                limit.handler(signum, frame)
            return
    _arm()                                     # early or stale: wait for the next deadline


def _disarm_at_exit() -> None:
    """At interpreter exit, before Python restores SIGALRM's default action (which kills the
    process), no timer of ours may be pending."""
    if not any(x.kind == "foreign" for x in _active) and usable():
        signal.setitimer(signal.ITIMER_REAL, 0)


def _discard_pending() -> None:
    """Take a SIGALRM pending on this thread (blocked by `_critical`) without waiting: another
    thread (a BLAS worker) may have taken a process-wide one since `sigpending` saw it, and a
    blocking `sigwait` would then wait forever."""
    if hasattr(signal, "sigtimedwait"):
        signal.sigtimedwait({_sigalrm()}, 0)
    elif hasattr(signal, "sigpending") and _SIGALRM in signal.sigpending():   # pragma: no cover
        signal.sigwait({_sigalrm()})   # (macOS: no sigtimedwait)


def _push(limit: _Limit) -> None:
    global _saved_handler, _exit_registered
    if not _exit_registered:
        import atexit

        atexit.register(_disarm_at_exit)
        _exit_registered = True
    with _critical():
        if not _active:
            remaining, _ = signal.getitimer(signal.ITIMER_REAL)
            previous = signal.signal(_sigalrm(), _on_alarm)
            if previous is not _on_alarm:
                _saved_handler = previous
            if remaining > 0:   # someone else's timer: honoured at its time, restored at the end
                _active.append(_Limit(time.monotonic() + remaining, "foreign",
                                      handler=_saved_handler))
        _active.append(limit)
        _arm()


def _pop(limit: _Limit) -> None:
    with _critical():
        if limit in _active:
            _active.remove(limit)
        if any(x.kind != "foreign" for x in _active):
            _arm()
            return
        foreign = [x for x in _active if x.fired_at is None]
        _active.clear()
        signal.setitimer(signal.ITIMER_REAL, 0)
        _discard_pending()                     # a tick that arrived while blocked: ours
        if callable(_saved_handler):           # someone else's handler; otherwise ours stays
            signal.signal(_sigalrm(), _saved_handler)   # installed, doing nothing without limits
        for x in foreign:
            signal.setitimer(signal.ITIMER_REAL, max(x.deadline - time.monotonic(), 1e-3))


def _end(limit: _Limit) -> None:
    """`_pop(limit)`, surely: a tick's exception can interrupt it before the limit is removed
    (the handler runs between two bytecodes, before `_critical` holds it back), and a limit
    left active would fire later anywhere. `_TimeUp` then is dropped (the block is over; an
    outer limit that fired fires again `REPEAT_S` later); any other exception is re-raised
    once the limit is gone."""
    error: BaseException | None = None
    while True:
        try:
            _pop(limit)
            break
        except _TimeUp:
            continue
        except BaseException as exc:   # BudgetExceeded, KeyboardInterrupt: after the pop
            error = error or exc
    if error is not None:
        raise error


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise `_TimeUp` inside the block after `seconds` (a no-op where `usable()` is false).
    An enclosing budget still applies inside, and surfaces as `BudgetExceeded`."""
    if not (usable() and seconds > 0):
        yield
        return
    limit = _Limit(time.monotonic() + seconds, "call", seconds)
    try:
        _push(limit)
        yield
    finally:
        _end(limit)


@contextmanager
def budget(seconds: float | None, command: str = "derivkit") -> Iterator[None]:
    """Raise `BudgetExceeded` if the block runs longer than `seconds` (None: no budget)."""
    if seconds is not None:
        seconds = validate_timeout(seconds)
    if seconds is None or not usable():
        yield
        return
    limit = _Limit(time.monotonic() + seconds, "budget", seconds, command)
    try:
        _push(limit)
        yield
    finally:
        _end(limit)
    _overrun([limit])


def _overrun(limits: list[_Limit]) -> None:
    """A block that ended normally after its budget fired (the exception was swallowed or lost
    and the block finished before it fired again) still ran past its budget: say so."""
    for limit in limits:
        if limit.error is not None:
            raise limit.error


@contextmanager
def command_scope() -> Iterator[None]:
    """The extent of one command: a budget started inside (`start_budget`, from the CLI's
    `--timeout` option as it is parsed) ends here, whatever happens."""
    _scopes.append(len(_active))
    ended: list[_Limit] = []
    try:
        yield
    finally:
        depth = _scopes.pop()
        ended = [x for x in _active[depth:] if x.kind == "budget"]
        for limit in ended:
            _end(limit)
        del _phases[:]
    _overrun(ended)


def start_budget(seconds: float, command: str) -> None:
    """Start the command's budget now; it ends with the enclosing `command_scope` (without one,
    or where `usable()` is false, nothing happens)."""
    seconds = validate_timeout(seconds)
    if not _scopes or not usable():
        return
    _push(_Limit(time.monotonic() + seconds, "budget", seconds, command))


def with_timeout(command: str) -> Callable[[Callable[..., _R]], Callable[..., _R]]:
    """Decorator: add the keyword `timeout=None` (seconds, the budget of `command`) to an API
    function; its signature shows it."""
    import functools
    import inspect

    def wrap(fn: Callable[..., _R]) -> Callable[..., _R]:
        @functools.wraps(fn)
        def run(*args: Any, timeout: float | None = None, **kwargs: Any) -> _R:
            with budget(timeout, command):
                return fn(*args, **kwargs)

        params = list(inspect.signature(fn).parameters.values())
        at = next((i for i, p in enumerate(params) if p.kind is p.VAR_KEYWORD), len(params))
        params.insert(at, inspect.Parameter("timeout", inspect.Parameter.KEYWORD_ONLY, default=None))
        cast(Any, run).__signature__ = inspect.signature(fn).replace(parameters=params)
        return run
    return wrap


def validate_timeout(seconds: object) -> float:
    import math

    from .errors import DerivkitError

    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or \
            not math.isfinite(seconds) or not 0 < seconds <= MAX_TIMEOUT_S:
        raise DerivkitError(f"⟨--timeout⟩ {seconds!r}: give a number of seconds > 0 and at most "
                            f"{MAX_TIMEOUT_S:,.0f}", "e.g. ⟨--timeout 120|timeout=120⟩")
    return float(seconds)


def remaining() -> float | None:
    """Seconds left of the innermost command budget (None without one)."""
    budgets = [x for x in _active if x.kind == "budget"]
    return None if not budgets else min(x.deadline for x in budgets) - time.monotonic()


@contextmanager
def phase(text: str) -> Iterator[None]:
    """Say what is running, for the message if the budget runs out inside ("simplifying
    ∂L/∂w"). Without one, the message is read off the running code."""
    _phases.append(text)
    try:
        yield
    finally:
        if _phases and _phases[-1] == text:
            _phases.pop()


# ---------------------------------------------------------------- the message
# The innermost derivkit module running when the budget ran out -> what it was doing.
_DOING = (
    ("derivkit.derivation.simplify", "simplifying"),
    ("derivkit.derivation.index", "building the index form of"),
    ("derivkit.derivation.crosscheck", "verifying"),
    ("derivkit.derivation.oracle", "verifying"),
    ("derivkit.derivation.verify", "verifying"),
    ("derivkit.derivation.explicit", "verifying"),
    ("derivkit.derivation.vjp", "differentiating"),
    ("derivkit.derivation.jacobian", "building the Jacobian of"),
    ("derivkit.lang.parse", "parsing the expression"),
    ("derivkit.audit.claims", "reading the claim"),
    ("derivkit.audit.claim", "checking the claim about"),
    ("derivkit.checking", "checking numerically"),
    ("derivkit.audit.diagnose", "diagnosing"),
    ("derivkit.training", "training"),
    ("derivkit.derivation.chain", "deriving the backward pass"),
    ("derivkit.lowering.source", "writing NumPy code"),
    ("derivkit.lowering.module", "writing NumPy code"),
    ("derivkit.lowering.emit", "writing NumPy code"),
    ("derivkit.derivation.engine", "deriving"),
    ("derivkit.lang.recipes", "reading the recipes"),
    ("derivkit.api", "reading the expression"),
)

_WHY = {
    "check": "the expression or its sizes are too large to finish in time",
    "train": "too many epochs, or sizes too large, to finish in time",
}
_HINTS = {
    "check": "raise ⟨--timeout|the timeout⟩, use smaller ⟨--size values|sizes⟩, or split the "
             "expression into steps",
    "train": "raise ⟨--timeout|the timeout⟩, or use fewer ⟨--epochs⟩ or smaller ⟨--size values|sizes⟩",
}


def _derivkit_frames(frame: FrameType | None) -> Iterator[tuple[str, FrameType]]:
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name.startswith("derivkit.") and name != __name__:
            yield name, frame
        frame = frame.f_back


def describe(frame: FrameType | None) -> str:
    """'while simplifying ∂f/∂w' from the running code (or the innermost `phase`)."""
    if _phases:
        return f"while {_phases[-1]}"
    doing, what = None, None
    try:
        for name, f in _derivkit_frames(frame):
            if doing is None:   # helpers (derivkit.lang.ir, printing) say nothing: look further out
                doing = next((text for prefix, text in _DOING if name.startswith(prefix)), None)
            if what is None and name == "derivkit.derivation.engine" and "w" in f.f_locals:
                recipe = f.f_locals.get("recipe")
                output = getattr(recipe, "output", None)
                w = f.f_locals["w"]
                if isinstance(w, str) and isinstance(output, str):
                    what = f"∂{output}/∂{w}"
    except Exception:
        pass
    if doing is None:
        return ""
    if doing.endswith((" of", " about")) and what is None:
        doing = doing.rsplit(" ", 1)[0]
    return f"while {doing}" + (f" {what}" if what and doing != "parsing the expression" else "")


def _exceeded(limit: _Limit, frame: FrameType | None) -> BudgetExceeded:
    where = describe(frame)
    seconds = f"{limit.seconds:g}"
    why = _WHY.get(limit.command, "the expression is too large or too deeply nested to finish "
                                  "in time")
    message = (f"{limit.command} took longer than the {seconds} s budget"
               f"{' ' + where if where else ''} ({why})")
    hint = _HINTS.get(limit.command, "raise ⟨--timeout|the timeout⟩, or split the expression into steps")
    return BudgetExceeded(message, hint, seconds=limit.seconds, command=limit.command, where=where)
