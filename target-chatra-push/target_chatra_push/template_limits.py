"""Limits on one row's template render, so that no template can hang or exhaust the run.

A template is written by whoever configures the target, but its loops and sizes can depend on
the row: a loop without end, or a string grown past memory, must fail that row, never the run.

- **Time**: a render may use `MAX_RENDER_SECONDS` of CPU time (a virtual-time timer, so a busy
  machine does not fail a render); then the row fails. The timer interrupts any loop written
  in the template, since the compiled template is Python code.
- **Size**: a single operation that would build a string, list or number too large for the
  timer to interrupt (it is one C call: `'x' * 10**9`, `10 ** 10**9`, `center(10**9)`,
  `'{:>999999999}'.format(x)`) is refused before it runs: every string or list a template
  builds is at most `MAX_BUILT_LENGTH` long, every number at most `MAX_INT_BITS` bits, every
  width or count given to a filter or method at most `MAX_BUILT_LENGTH`.
- **Output**: rendering stops as soon as the text passes Chatra's limit (rendering.py).
"""

from __future__ import annotations

import contextlib
import functools
import re
import signal
import threading
import typing as t

from jinja2.compiler import CodeGenerator, Frame, optimizeconst

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from jinja2 import nodes

MAX_RENDER_SECONDS = 1.0
MAX_BUILT_LENGTH = 100_000
MAX_INT_BITS = 100_000
MAX_RANGE = 10_000

# Widths and precisions in %-style and str.format format strings: `%999s`, `{:>999}`.
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\d*)(?:\.(\d*))?")
_BRACE_SPEC = re.compile(r"\{[^{}]*:([^{}]*)\}")
_NUMBER = re.compile(r"\d+")


class TemplateLimitError(Exception):
    """A render went past one of the limits; the message says which."""


class RenderTimeoutError(BaseException):
    """The render used up its CPU time.

    A BaseException, so that no `except Exception` in a filter can swallow it.
    """


def _too_big(what: str) -> TemplateLimitError:
    return TemplateLimitError(
        f"{what} would exceed the template limit of {MAX_BUILT_LENGTH} characters or items"
    )


def _too_many_bits(what: str) -> TemplateLimitError:
    return TemplateLimitError(
        f"{what} would be a number of more than {MAX_INT_BITS} bits, over the template limit"
    )


def check_length(value: object, what: str = "a value") -> None:
    """Refuse a string, list or tuple longer than the limit, or an integer too large."""
    if isinstance(value, str | bytes | list | tuple) and len(value) > MAX_BUILT_LENGTH:
        raise _too_big(what)
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise _too_many_bits(what)


def check_sizes(args: t.Iterable[object], what: str) -> None:
    """Refuse widths and counts beyond the limit among the arguments of a filter or method."""
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > MAX_BUILT_LENGTH:
            msg = (
                f"{what} was given {arg}, over the template limit of {MAX_BUILT_LENGTH} "
                "for a width or count"
            )
            raise TemplateLimitError(msg)


def check_format_string(text: object) -> None:
    """Refuse a %-style or str.format format string whose widths pass the limit."""
    if not isinstance(text, str):
        return
    numbers = [n for match in _PERCENT_SPEC.finditer(text) for n in match.groups() if n]
    numbers += [n for match in _BRACE_SPEC.finditer(text) for n in _NUMBER.findall(match[1])]
    check_sizes((int(n) for n in numbers), "a format string")


def _length(value: object) -> int:
    return len(value) if isinstance(value, str | list | tuple) else 0


def check_binop(operator: str, left: object, right: object) -> None:
    """Refuse `*`, `**`, `+` or `%` when its result would pass the limits."""
    if operator == "*":
        _check_product(left, right)
    elif operator == "**":
        if (
            isinstance(left, int)
            and isinstance(right, int)
            and right > 0
            and max(left.bit_length() - 1, 1) * right > MAX_INT_BITS
        ):
            raise _too_many_bits("a power")
    elif operator == "+":
        if _length(left) + _length(right) > MAX_BUILT_LENGTH:
            raise _too_big("a joined string or list")
    elif operator == "%":
        check_format_string(left)
        check_sizes(right if isinstance(right, tuple) else (right,), "a format string")


def _check_product(left: object, right: object) -> None:
    for sequence, count in ((left, right), (right, left)):
        if isinstance(count, int) and _length(sequence) * count > MAX_BUILT_LENGTH:
            raise _too_big("a repeated string or list")
    bits = [n.bit_length() for n in (left, right) if isinstance(n, int)]
    if len(bits) == 2 and sum(bits) > MAX_INT_BITS:
        raise _too_many_bits("a product")


def check_join(separator: object, items: object) -> None:
    """Refuse a join whose result would pass the limit, before it is built."""
    if not isinstance(items, list | tuple):
        return
    total = _length(separator) * max(len(items) - 1, 0)
    total += sum(len(item) if isinstance(item, str) else 0 for item in items)
    if total > MAX_BUILT_LENGTH:
        raise _too_big("a join")


def check_replace(text: object, old: object, new: object) -> None:
    """Refuse a replace whose result would pass the limit, before it is built."""
    if not (isinstance(text, str) and isinstance(old, str) and isinstance(new, str)):
        return
    count = text.count(old) if old else len(text) + 1
    if len(text) + count * (len(new) - len(old)) > MAX_BUILT_LENGTH:
        raise _too_big("a replace")


def checked_concat(parts: t.Iterable[object]) -> str:
    """What `~` compiles to here: `str.join`, refused past the limit before it is built."""
    texts = [str(part) for part in parts]
    if sum(len(text) for text in texts) > MAX_BUILT_LENGTH:
        raise _too_big("a string joined with ~")
    return "".join(texts)


def guarded_filter(
    name: str, apply: Callable[..., t.Any], prepare: Callable[[t.Any], t.Any]
) -> Callable[..., t.Any]:
    """A filter that refuses oversized arguments and results; `prepare` maps its value first.

    Jinja passes a context, eval context or environment first to a filter marked for it
    (`jinja_pass_arg`, which `functools.wraps` carries over); the filtered value follows.
    """
    value_at = 1 if hasattr(apply, "jinja_pass_arg") else 0
    what = f"the filter {name}"

    @functools.wraps(apply)
    def guarded(*args: t.Any, **kwargs: t.Any) -> t.Any:
        value, rest = prepare(args[value_at]), args[value_at + 1 :]
        args = (*args[:value_at], value, *rest)
        check_sizes([*rest, *kwargs.values()], what)
        if name == "replace" and len(rest) >= 2:
            check_replace(value, rest[0], rest[1])
        elif name == "join":
            check_join(rest[0] if rest else kwargs.get("d", ""), value)
        elif name == "format":
            check_format_string(value)
        result = apply(*args, **kwargs)
        check_length(result, f"the result of {what}")
        return result

    return guarded


def check_call(method: object, args: tuple[t.Any, ...], kwargs: dict[str, t.Any]) -> None:
    """Refuse a call of a str, list or tuple method that would build past the limit."""
    owner = getattr(method, "__self__", None)
    if not isinstance(owner, str | list | tuple):
        return
    name = getattr(method, "__name__", "")
    check_sizes([*args, *kwargs.values()], f"the method {name}")
    if name == "replace" and len(args) >= 2:
        check_replace(owner, args[0], args[1])
    elif name == "join" and args:
        check_join(owner, list(args[0]) if isinstance(args[0], list | tuple) else args[0])


class CheckedConcatGenerator(CodeGenerator):
    """Compiles `~` to `environment.checked_concat`, which refuses an oversized result.

    Changes Jinja 3.1 behaviour: `visit_Concat` writes a call of `markup_join` or `str_join`,
    which no sandbox hook sees, so `{% set ns.s = ns.s ~ ns.s %}` in a loop could double a
    string past all memory before the timer fires. Guarded by tests/test_template_limits.py.
    """

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:  # noqa: N802 - Jinja's name
        """Write `~` as a call of `environment.checked_concat`."""
        self.write("environment.checked_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


def checked_range(*args: int) -> range:
    """`range` in templates: at most `MAX_RANGE` numbers."""
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        msg = f"range() of {len(numbers)} numbers is over the template limit of {MAX_RANGE}"
        raise TemplateLimitError(msg)
    return numbers


@contextlib.contextmanager
def cpu_time_limit(seconds: float = MAX_RENDER_SECONDS) -> Iterator[None]:
    """Raise RenderTimeoutError in this block once it has used `seconds` of CPU time.

    Only the main thread receives signals: elsewhere the block runs without the timer (the
    target renders every row on the main thread).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    armed = [True]

    def on_timer(signum: int, frame: object) -> None:  # noqa: ARG001 - signal API
        if armed[0]:
            armed[0] = False
            raise RenderTimeoutError

    previous = signal.signal(signal.SIGVTALRM, on_timer)
    try:
        signal.setitimer(signal.ITIMER_VIRTUAL, seconds)
        try:
            yield
        finally:
            armed[0] = False
            signal.setitimer(signal.ITIMER_VIRTUAL, 0)
    finally:
        signal.signal(signal.SIGVTALRM, previous)
