"""Liquid templates (TemplateTo's template language): parse with precise errors, list the
variables a template uses, and render within limits so that no template can take the service
down."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from io import StringIO
from typing import Any, ClassVar

from liquid import BoundTemplate, Environment, StrictUndefined
from liquid.exceptions import (
    LiquidError,
    LiquidSyntaxError,
    LoopIterationLimitError,
    ResourceLimitError,
    TemplateNotFoundError,
    UndefinedError,
)

from ..errors import ValidationFailed

LOOP_ITERATION_LIMIT = 100_000
OUTPUT_LIMIT_CHARS = 5_000_000
RENDER_SECONDS_LIMIT = 5.0
PARSED_TEMPLATES_CACHED = 512


class TemplateSyntaxError(ValidationFailed):
    code = "template_syntax_error"


class TemplateRenderError(ValidationFailed):
    code = "template_render_error"


class MissingVariable(ValidationFailed):
    code = "template_variable_missing"


class RenderLimitExceeded(ValidationFailed):
    code = "render_limit_exceeded"


class _LimitedEnvironment(Environment):
    loop_iteration_limit: ClassVar[int | None] = LOOP_ITERATION_LIMIT
    local_namespace_limit: ClassVar[int | None] = 1_000_000


# Missing variables render as nothing, as in TemplateTo; strict mode names them instead.
_LENIENT = _LimitedEnvironment()
_STRICT = _LimitedEnvironment(undefined=StrictUndefined)


class _LimitedBuffer(StringIO):
    """The render's output, stopped when it grows too large or runs too long. Every write only
    adds and compares; the clock and the size limit are looked at each time the output has
    grown by another ``_CHECK_EVERY_CHARS`` (loops writing nothing are bounded by the
    iteration limit instead)."""

    _CHECK_EVERY_CHARS = 16_384

    def __init__(self, deadline: float) -> None:
        super().__init__()
        self._deadline = deadline
        self._size = 0
        self._next_check = 0

    def write(self, text: str) -> int:
        self._size += len(text)
        if self._size >= self._next_check:
            self._check()
        return StringIO.write(self, text)

    def _check(self) -> None:
        self._next_check = self._size + self._CHECK_EVERY_CHARS
        if self._size > OUTPUT_LIMIT_CHARS:
            raise RenderLimitExceeded(
                f"The rendered document grew past {OUTPUT_LIMIT_CHARS:,} characters and the "
                "render was stopped. Send less data or simplify the template."
            )
        if time.monotonic() > self._deadline:
            raise RenderLimitExceeded(
                f"Rendering took longer than {RENDER_SECONDS_LIMIT:g} seconds and was stopped. "
                "Reduce the loops or data the template works through."
            )


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
    return str(error.message).rstrip(".")


@lru_cache(maxsize=PARSED_TEMPLATES_CACHED)
def _parse(source: str, strict: bool) -> BoundTemplate:
    return (_STRICT if strict else _LENIENT).from_string(source)


def parse(source: str, *, strict: bool = False) -> BoundTemplate:
    """The parsed template (cached by source). Raises :class:`TemplateSyntaxError` with the
    line, column and reason."""
    try:
        return _parse(source, strict)
    except LiquidError as error:
        where, details = _where(error, source)
        raise TemplateSyntaxError(
            f"The template does not parse{where}: {_reason(error)}.", details=details
        ) from None


def variables(source: str) -> list[str]:
    """The top-level variables a template reads from its data, sorted."""
    return sorted(set(parse(source).global_variables()))


def render(source: str, data: Mapping[str, Any], *, strict: bool = False) -> str:
    """Render ``source`` with ``data`` within the loop, output and time limits."""
    template = parse(source, strict=strict)
    buffer = _LimitedBuffer(time.monotonic() + RENDER_SECONDS_LIMIT)
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
        raise RenderLimitExceeded(_limit_message(error)) from None
    except TemplateNotFoundError as error:
        where, details = _where(error, source)
        raise TemplateRenderError(
            f"The template includes another template or file{where}, which is not supported: "
            "put everything in one template.",
            details=details,
        ) from None
    except LiquidSyntaxError as error:
        where, details = _where(error, source)
        raise TemplateSyntaxError(
            f"The template does not parse{where}: {_reason(error)}.", details=details
        ) from None
    except LiquidError as error:
        where, details = _where(error, source)
        raise TemplateRenderError(
            f"The template failed to render{where}: {_reason(error)}.", details=details
        ) from None
    return buffer.getvalue()


def _limit_message(error: ResourceLimitError) -> str:
    if isinstance(error, LoopIterationLimitError):
        return (
            f"The template's loops ran more than {LOOP_ITERATION_LIMIT:,} iterations and the "
            "render was stopped. Send less data or simplify the loops."
        )
    return f"The template went past a render limit ({_reason(error)}) and was stopped."
