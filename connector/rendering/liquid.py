"""Liquid templates (TemplateTo's template language): parse with precise errors, list the
variables a template uses, and render within limits on loops, output and the size of every value.
Time and memory are bounded by the render process this runs in (:mod:`.sandbox`)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from io import StringIO
from typing import Any, ClassVar

from cachetools import LRUCache
from liquid import BoundTemplate, Environment, StrictDefaultUndefined
from liquid.exceptions import (
    LiquidError,
    LoopIterationLimitError,
    ResourceLimitError,
    UndefinedError,
)

from ..errors import (
    MissingVariable,
    RenderLimitExceeded,
    TemplateRenderError,
    TemplateSyntaxError,
    ValidationFailed,
    shortened,
)

LOOP_ITERATION_LIMIT = 100_000
OUTPUT_LIMIT_CHARS = 5_000_000
# Values that ranges and filters make (split, join, append, concat, times...) are bounded too:
# without this, a few doubling assigns, or one join of a range, fill the memory without writing
# a single character.
VALUE_LIMIT = 1_000_000
INTEGER_BITS_LIMIT = 10_000
# A parsed template takes about 125 bytes per character of its source: the cache holds
# parsed templates of at most CACHE_CHARS characters in all (about 60 MB, the least recently
# used going first), so that it never crowds a render process's memory.
CACHE_CHARS = 500_000
CACHED_SOURCE_CHARS = 100_000


def _too_large(value: object) -> bool:
    # type() rather than isinstance(): strict undefined values raise on any attribute access,
    # __class__ included, and must reach the `default` filter untouched.
    kind = type(value)
    if kind is int:
        return value.bit_length() > INTEGER_BITS_LIMIT  # type: ignore[attr-defined]
    if kind is str or kind is range:
        return len(value) > VALUE_LIMIT  # type: ignore[arg-type]
    if kind is list or kind is tuple:
        items: list[Any] | tuple[Any, ...] = value  # type: ignore[assignment]
        return len(items) > VALUE_LIMIT or (
            sum(len(item) for item in items if type(item) is str) > VALUE_LIMIT
        )
    return False


def _guarded(filter_: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that refuses arguments and results past the value limit."""

    @functools.wraps(filter_)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if args and _too_large(args[0]):
            raise _value_limit()
        result = filter_(*args, **kwargs)
        if _too_large(result):
            raise _value_limit()
        return result

    for flag in ("with_context", "with_environment"):
        if hasattr(filter_, flag):
            setattr(guarded, flag, getattr(filter_, flag))
    return guarded


def _value_limit() -> RenderLimitExceeded:
    return RenderLimitExceeded(
        f"A value in the template grew past {VALUE_LIMIT:,} characters or items (or a number "
        "past a reasonable size) and the render was stopped. Send less data or simplify the "
        "template.",
        details={"limit": "value"},
    )


class _LimitedEnvironment(Environment):
    loop_iteration_limit: ClassVar[int | None] = LOOP_ITERATION_LIMIT
    # Bounds {% capture %} buffers; the main output is checked at the end of the render.
    output_stream_limit: ClassVar[int | None] = OUTPUT_LIMIT_CHARS
    local_namespace_limit: ClassVar[int | None] = 10_000_000

    def setup_tags_and_filters(self, *, extra: bool = False) -> None:
        super().setup_tags_and_filters(extra=extra)
        # A template is one stored source: there are no other templates or files to include.
        for tag in ("include", "render"):
            self.tags.pop(tag, None)
        self.filters = {name: _guarded(f) for name, f in self.filters.items()}


# Missing variables render as nothing, as in TemplateTo; strict mode names them instead
# (though a `default` filter still supplies a value).
_LENIENT = _LimitedEnvironment()
_STRICT = _LimitedEnvironment(undefined=StrictDefaultUndefined)


@dataclass(frozen=True)
class Position:
    line: int
    column: int


def _position(error: LiquidError, source: str) -> Position:
    context = error.context()
    if context is not None:
        line, column, *_ = context
        return Position(line=line, column=column + 1)
    # Errors found at the end (an unclosed {% if %}, say) carry no token position.
    lines = source.splitlines() or [""]
    return Position(line=len(lines), column=len(lines[-1]) + 1)


def _where(error: LiquidError, source: str) -> tuple[str, dict[str, Any]]:
    position = _position(error, source)
    return (
        f" (line {position.line}, column {position.column})",
        {"line": position.line, "column": position.column},
    )


def _reason(error: LiquidError) -> str:
    # It may quote the template (a variable's name): kept short, for the advice after it.
    return shortened(str(error.message).rstrip("."), 100)


_parsed: LRUCache[tuple[str, bool], tuple[BoundTemplate, int]] = LRUCache(
    maxsize=CACHE_CHARS, getsizeof=lambda entry: entry[1]
)


def parse(source: str, *, strict: bool = False, cache: bool = True) -> BoundTemplate:
    """The parsed template (kept for the next render unless not ``cache``). Raises
    :class:`TemplateSyntaxError` with the line, column and reason."""
    cached = _parsed.get((source, strict)) if cache else None
    if cached is not None:
        return cached[0]
    try:
        template = (_STRICT if strict else _LENIENT).from_string(source)
    except RecursionError:
        raise TemplateSyntaxError("The template nests its blocks too deeply.") from None
    except LiquidError as error:
        if isinstance(error.__cause__ or error.__context__, MemoryError):
            raise MemoryError from None  # python-liquid wraps it: the render process's limit
        where, details = _where(error, source)
        raise TemplateSyntaxError(
            f"The template does not parse{where}: {_reason(error)}.", details=details
        ) from None
    if cache and len(source) <= CACHED_SOURCE_CHARS:
        _parsed[(source, strict)] = (template, len(source))
    return template


def variables(source: str) -> list[str]:
    """The top-level variables a template reads from its data, sorted. (Checking a template
    when it is saved: not kept for renders.)"""
    return sorted(set(parse(source, cache=False).global_variables()))


def render(source: str, data: Mapping[str, Any], *, strict: bool = False) -> str:
    """Render ``source`` with ``data`` within the loop, output and value limits."""
    template = parse(source, strict=strict)
    buffer = StringIO()
    context = template.context_class(template, globals=template.make_globals(dict(data)))
    try:
        template.render_with_context(context, buffer)
    except UndefinedError as error:
        where, details = _where(error, source)
        raise MissingVariable(
            f"The data has no value for a variable the template uses{where}: "
            f"{_reason(error)}. Add it to the data, or render without strict mode.",
            details=details,
        ) from None
    except ResourceLimitError as error:
        raise _over_limit(error) from None
    except LiquidError as error:
        # Syntax errors were caught when the template was saved: these come from the data.
        where, details = _where(error, source)
        raise TemplateRenderError(
            f"The template failed to render{where}: {_reason(error)}.", details=details
        ) from None
    except ValidationFailed:
        raise
    except (ArithmeticError, ValueError, TypeError, LookupError, RecursionError) as error:
        # Filters meeting data they cannot handle (NaN, huge numbers, bad base64, ...).
        raise TemplateRenderError(
            f"The template failed to render with this data: {type(error).__name__}: "
            f"{shortened(str(error), 100)}."
        ) from None
    # Checked once, at the end: counting every write costs a seventh of a render, and output
    # that grows without bound meets the render process's memory limit first.
    output = buffer.getvalue()
    if len(output) > OUTPUT_LIMIT_CHARS:
        raise RenderLimitExceeded(
            f"The rendered document grew past {OUTPUT_LIMIT_CHARS:,} characters and the "
            "render was stopped. Send less data or simplify the template.",
            details={"limit": "output"},
        )
    return output


def _over_limit(error: ResourceLimitError) -> RenderLimitExceeded:
    if isinstance(error, LoopIterationLimitError):
        return RenderLimitExceeded(
            f"The template's loops ran more than {LOOP_ITERATION_LIMIT:,} iterations and the "
            "render was stopped. Send less data or simplify the loops.",
            details={"limit": "loops"},
        )
    return RenderLimitExceeded(
        f"The template went past a render limit ({_reason(error)}) and was stopped.",
        details={"limit": "output"},
    )
