"""Message templates: compiled when the target starts, rendered per row in Jinja2's sandbox.

The null rule: a template that meets a null (or a variable the row lacks) anywhere but in a
test fails the row, since `{{ name | upper }}` would otherwise send "NONE" to a customer. A
null from the row becomes a `NullValue`, a strict undefined that allows only what says what
to do with it: `default(...)`, `is none`, `is defined`, `if name`, `name or 'there'`,
`name == none`. Printing it, filtering it, computing with it or reading from it fails the
row with code `template_null`; a variable the row lacks fails it with `template_undefined`.

Every render also runs within the limits of template_limits.py (code `template_limit`).
"""

from __future__ import annotations

import typing as t

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from target_chatra_push.template_limits import (
    MAX_RENDER_SECONDS,
    CheckedConcatGenerator,
    RenderTimeoutError,
    TemplateLimitError,
    check_binop,
    check_call,
    check_format_string,
    check_length,
    check_sizes,
    checked_concat,
    checked_range,
    cpu_time_limit,
    guarded_filter,
)
from target_chatra_push.values import InvalidRowError

if t.TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from jinja2.runtime import Context

_NULL_HINT = "say what to print instead, e.g. {{ name | default('there') }}"


class NullValueError(jinja2.UndefinedError):
    """A template used a null value other than in a test."""


class NullValue(jinja2.Undefined):
    """A null from the row: false, equal to none, and an error for any other use.

    Jinja's plain Undefined is false and compares; printing, iterating or measuring it
    fails here too, as with StrictUndefined.
    """

    __slots__ = ()
    __str__ = __iter__ = __len__ = __contains__ = jinja2.Undefined._fail_with_undefined_error

    def __eq__(self, other: object) -> bool:
        return other is None or isinstance(other, NullValue)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(None)

    @property
    def _undefined_message(self) -> str:
        if self._undefined_name is None:
            return "a value the template looked up is null"
        return f"{self._undefined_name!r} is null"


def _null(name: str | None) -> NullValue:
    return NullValue(name=name, exc=NullValueError)


def _with_nulls(value: object, name: str) -> object:
    """`value` with every null in it, at any depth, as a NullValue named by its path."""
    if value is None:
        return _null(name)
    if isinstance(value, dict):
        return {k: _with_nulls(v, f"{name}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_with_nulls(v, f"{name}[{i}]") for i, v in enumerate(value)]
    return value


def _holds_null(value: object) -> bool:
    if value is None or isinstance(value, NullValue):
        return True
    if isinstance(value, dict):
        return any(_holds_null(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_holds_null(v) for v in value)
    return False


def _refuse_null(value: object) -> object:
    """What Jinja calls on every printed value: a null (or a list holding one) fails."""
    if isinstance(value, NullValue):
        value._fail_with_undefined_error()
    if _holds_null(value):
        msg = "a value printed is null, or holds a null"
        raise NullValueError(msg)
    return value


def _null_for_none(value: object) -> object:
    """A filter's value: a None made by the template (`row.get('x')`) counts as a null too."""
    return _null(None) if value is None else value


def _is_none(value: object) -> bool:
    return value is None or isinstance(value, NullValue)


class MessageEnvironment(SandboxedEnvironment):
    """Jinja2's sandbox with the null rule and the render limits; plain text, no autoescape."""

    code_generator_class = CheckedConcatGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self) -> None:
        super().__init__(
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # chat text is plain text, not HTML
            finalize=_refuse_null,
            keep_trailing_newline=False,
        )
        self.globals["range"] = checked_range
        # lipsum(n) writes n paragraphs in one call, beyond the timer's reach.
        del self.globals["lipsum"]
        self.filters = {
            name: guarded_filter(name, apply, _null_for_none)
            for name, apply in self.filters.items()
        }
        self.tests["none"] = _is_none

    checked_concat = staticmethod(checked_concat)

    def call_binop(self, context: Context, operator: str, left: t.Any, right: t.Any) -> t.Any:
        """`*`, `**`, `+` and `%`, refused when the result would pass the limits."""
        check_binop(operator, left, right)
        result = super().call_binop(context, operator, left, right)
        check_length(result, f"the result of {operator}")
        return result

    def call(
        __self,  # noqa: N805 - Jinja's signature, so that no keyword argument clashes
        __context: Context,
        __obj: t.Any,
        *args: t.Any,
        **kwargs: t.Any,
    ) -> t.Any:
        """A call from the template, refused when it would build past the limits."""
        check_call(__obj, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        check_length(result, "the result of a call")
        return result

    def wrap_str_format(self, value: t.Any) -> Callable[..., str] | None:
        """`str.format` as the sandbox allows it, refused when its widths pass the limits."""
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        check_format_string(value.__self__)
        sandboxed = wrapper

        def checked(*args: t.Any, **kwargs: t.Any) -> str:
            check_sizes([*args, *kwargs.values()], "a format string")
            return sandboxed(*args, **kwargs)

        return checked


def compile_template(source: str) -> jinja2.Template:
    """Compile a message template; raises jinja2.TemplateSyntaxError when it does not compile."""
    return MessageEnvironment().from_string(source)


def _generate(template: jinja2.Template, context: dict[str, t.Any], max_length: int) -> str:
    parts: list[str] = []
    length = 0
    for part in template.generate(context):
        length += len(part)
        if length > max_length:
            raise InvalidRowError(
                "text_too_long",
                f"text too long: text_template made more than {max_length} characters; "
                f"Chatra takes at most {max_length}",
            )
        parts.append(part)
    return "".join(parts)


def render_text(template: jinja2.Template, record: Mapping[str, t.Any], max_length: int) -> str:
    """Render a template with the row's properties (and the whole row as `row`).

    Rendering stops once the text is longer than `max_length`.

    Raises:
        InvalidRowError: When the template meets a null or a variable the row lacks, passes
            a limit, makes a text over `max_length`, or fails on this row in any other way.
    """
    row = {name: _with_nulls(value, name) for name, value in record.items()}
    try:
        with cpu_time_limit():
            return _generate(template, {**row, "row": row}, max_length)
    except RenderTimeoutError:
        raise InvalidRowError(
            "template_limit",
            f"text_template: stopped after {MAX_RENDER_SECONDS:g} s of CPU time on this row",
        ) from None
    except TemplateLimitError as exc:
        raise InvalidRowError("template_limit", f"text_template: {exc}") from None
    except NullValueError as exc:
        raise InvalidRowError("template_null", f"text_template: {exc}; {_NULL_HINT}") from None
    except jinja2.UndefinedError as exc:
        raise InvalidRowError("template_undefined", f"text_template: {exc.message}") from None
    except SecurityError as exc:
        raise InvalidRowError("template_error", f"text_template: {exc}") from None
    except InvalidRowError:
        raise
    except Exception as exc:  # any failure of a user's template on one row
        raise InvalidRowError(
            "template_error", f"text_template failed on this row: {type(exc).__name__}: {exc}"
        ) from None
