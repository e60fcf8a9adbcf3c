"""Logging set-up for the command line: levels from -v/-q, text or JSON lines on stderr, never a token or e-mail."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

from connector.redact import redact


class _Redacting(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = ()
        return True


class _JsonLines(logging.Formatter):
    """One JSON object a line: time, level, logger, message (and the exception's type, never its locals)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(verbosity: int = 0, quiet: bool = False, fmt: str = "text") -> None:
    """WARNING by default, INFO with -v, DEBUG with -vv, ERROR only with -q; on stderr."""
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO)[min(verbosity, 1)] if verbosity < 2 \
        else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_Redacting())
    handler.setFormatter(_JsonLines() if fmt == "json" else logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("connector")
    root.handlers[:] = [handler]
    root.setLevel(level)
