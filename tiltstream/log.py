"""Logging, configured once at a program's entry point.

Services log JSON lines (one object per event, ready for a log shipper); the CLI logs to the console
for people. Bind per-event ids with :func:`structlog.contextvars.bind_contextvars` or ``log.bind``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, cast

import structlog

from tiltstream.settings import LoggingSettings

__all__ = ["configure_logging", "get_logger"]

_configured = False


def configure_logging(settings: LoggingSettings | None = None) -> None:
    """Set up structlog and the standard library's logging for the whole process.

    Parameters
    ----------
    settings
        Level and format; read from ``TILTSTREAM_LOG_*`` when omitted. Calling again reconfigures.
    """
    global _configured
    settings = settings or LoggingSettings()
    level = logging.getLevelNamesMapping()[settings.level]
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor
    json_lines = settings.format == "json" or (settings.format == "auto" and not sys.stderr.isatty())
    if json_lines:
        renderer = structlog.processors.JSONRenderer()
        shared.append(structlog.processors.format_exc_info)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s", force=True
    )
    # librdkafka reports every reconnect at info level; keep its warnings and errors only
    logging.getLogger("tiltstream.librdkafka").setLevel(max(level, logging.WARNING))
    _configured = True


class _NamedLogger:
    """A logger named ``logger=name`` that binds on each use, so it follows the current configuration."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(structlog.get_logger().bind(logger=self._name), attribute)


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """Return a structlog logger; ``name`` is bound as ``logger``.

    The logger stays lazy: one made at import follows :func:`configure_logging` called later (binding at
    import would freeze structlog's default configuration into it, its level included).
    """
    if name is None:
        return cast(structlog.stdlib.BoundLogger, structlog.get_logger())
    return cast(structlog.stdlib.BoundLogger, _NamedLogger(name))
