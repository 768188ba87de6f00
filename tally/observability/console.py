"""Log lines for a person at a terminal (``TALLY_LOG_FORMAT=console``, the choice on a TTY): one short line per
request, processed webhook, warning or error, in the order they happen. Machines get JSON
(``tally.observability.logging``); both go through the same redaction first."""

from __future__ import annotations

import logging
import sys
import traceback
from datetime import datetime
from typing import Any

_RESET, _DIM, _RED, _YELLOW, _GREEN = "\x1b[0m", "\x1b[2m", "\x1b[31m", "\x1b[33m", "\x1b[32m"
# Keys every line carries, or that the line's own shape already shows.
_QUIET_KEYS = {"event", "timestamp", "level", "logger", "request_id", "exception", "route", "message",
               "color_message", "taskName"}


class ExceptionText:
    """``exc_info`` as text, before redaction: one line (the exception and its message), or the whole traceback
    when ``verbose`` (TALLY_LOG_LEVEL=DEBUG)."""

    def __init__(self, *, verbose: bool) -> None:
        self.verbose = verbose

    def __call__(self, _logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        exc_info = event_dict.pop("exc_info", None)
        if exc_info is True:
            exc_info = sys.exc_info()
        if isinstance(exc_info, BaseException):
            exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
        if isinstance(exc_info, tuple) and exc_info[0] is not None:
            shown = traceback.format_exception(*exc_info) if self.verbose else \
                traceback.format_exception_only(exc_info[0], exc_info[1])
            event_dict["exception"] = "".join(shown).strip()
        return event_dict


WEBHOOK_ROUTE = "/v1/webhooks/stripe"


class AcceptedDeliveries(logging.Filter):
    """Drops the request line of each accepted webhook delivery: a person reads the event's own line (its type
    and outcome) once it is processed. A refused delivery (bad signature, 4xx/5xx) keeps its line."""

    def filter(self, record: logging.LogRecord) -> bool:
        line = record.msg
        return not (isinstance(line, dict) and line.get("event") == "request" and line.get("route") == WEBHOOK_ROUTE
                    and int(line.get("status", 500)) < 300)


class PersonRenderer:
    """``12:04:31  POST /v1/checkout  200  14 ms``; ``12:04:33  webhook checkout.session.completed evt_…
    processed``; ``12:04:40  WARNING tally.worker  job worker failed …``. Colours only when ``colors``."""

    def __init__(self, *, colors: bool) -> None:
        self.colors = colors

    def __call__(self, _logger: Any, _method: str, event_dict: dict[str, Any]) -> str:
        time = self._paint(_DIM, _clock(event_dict.get("timestamp")))
        if event_dict.get("logger") == "tally.http" and event_dict.get("event") == "request":
            return f"{time}  {self._request(event_dict)}"
        if event_dict.get("event") == "webhook" and "stripe_event_type" in event_dict:
            return (f"{time}  webhook {event_dict['stripe_event_type']} {event_dict.get('stripe_event_id', '')} "
                    f"{event_dict.get('status', '')}").rstrip()
        return f"{time}  {self._other(event_dict)}"

    def _request(self, e: dict[str, Any]) -> str:
        status = int(e.get("status", 0))
        shown = self._paint(_RED if status >= 500 else _YELLOW if status >= 400 else _GREEN, str(status))
        return f"{e.get('method', '')} {e.get('path', '')}  {shown}  {float(e.get('duration_ms', 0)):.0f} ms"

    def _other(self, e: dict[str, Any]) -> str:
        level = str(e.get("level", "info")).upper()
        prefix = "" if level in ("INFO", "DEBUG") else self._paint(_RED if level in ("ERROR", "CRITICAL") else
                                                                   _YELLOW, level) + " "
        extras = " ".join(f"{k}={v}" for k, v in e.items() if k not in _QUIET_KEYS)
        line = f"{prefix}{e.get('logger', '')}  {e.get('event', '')}" + (f"  {extras}" if extras else "")
        if e.get("exception"):
            line += f"  ({e['exception']})" if "\n" not in e["exception"] else "\n" + e["exception"]
        return line

    def _paint(self, colour: str, text: str) -> str:
        return f"{colour}{text}{_RESET}" if self.colors else text


def _clock(timestamp: Any) -> str:
    """``HH:MM:SS`` in local time, from structlog's ISO timestamp."""
    try:
        return datetime.fromisoformat(str(timestamp).replace("Z", "+00:00")).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return str(timestamp)
