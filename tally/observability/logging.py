"""Structured logs: one JSON object per line (or, for a person at a terminal, one readable line: see
``tally.observability.console``), through structlog, for structlog's loggers and for the
standard ``logging`` loggers the rest of Tally (and its libraries) use.

Every line carries what is bound in the request's (or job's) context: ``request_id`` from the middleware, and
``user_id`` / Stripe ids wherever code calls :func:`bind` (``bind(user_id=…, stripe_event_id=…)``). A redaction
processor runs last before rendering, on every line: secrets and card numbers never reach the output, whatever
a caller passes (see :func:`redact`).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
from collections.abc import Mapping
from typing import Any

import orjson
import structlog

REDACTED = "[redacted]"
# Keys whose values are never logged, whatever they contain.
SECRET_KEYS = re.compile(r"(secret|password|passwd|token|authorization|api[_-]?key|cookie|cvc|cvv|card[_-]?number"
                         r"|^pan$|signature)", re.IGNORECASE)
# Values that look like a secret wherever they appear inside a string.
SECRET_VALUES = re.compile(
    r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9_]+"  # Stripe secret and restricted keys
    r"|whsec_[A-Za-z0-9_+/=-]+"  # webhook signing secrets
    r"|(?:pi|seti|cs)_[A-Za-z0-9]+_secret_[A-Za-z0-9]+"  # client secrets (an id plus its secret)
    r"|eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"  # JWTs
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=-]+")
# 13–19 digits, optionally grouped by spaces or dashes: a card number if the Luhn check passes.
CARD_CANDIDATE = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")

_HANDLER_NAME = "tally-json"


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = match.group(0).replace(" ", "").replace("-", "")
    return "[card redacted]" if luhn_ok(digits) else match.group(0)


def _redact_text(text: str) -> str:
    return CARD_CANDIDATE.sub(_card, SECRET_VALUES.sub(REDACTED, text))


@functools.lru_cache(maxsize=4096)
def _secret_key(key: str) -> bool:
    """Keys come from code (a bounded set), so each is matched once: every log line passes through here."""
    return SECRET_KEYS.search(key) is not None


def redact(value: Any, key: str | None = None) -> Any:
    """``value`` with secrets removed: whole values under secret-looking keys, secret-looking substrings
    (Stripe keys, webhook secrets, client secrets, JWTs, bearer tokens) and Luhn-valid card numbers."""
    if key is not None and _secret_key(key) and value not in (None, "", [], {}):
        return REDACTED
    if isinstance(value, str):
        return _redact_text(value)
    if type(value) is int and 10**12 <= abs(value) < 10**19:  # 13 to 19 digits (bool is not an int here)
        return "[card redacted]" if luhn_ok(str(abs(value))) else value
    if isinstance(value, Mapping):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def redact_processor(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    return {k: (redact(v, k) if k not in ("timestamp", "level", "logger") else v) for k, v in event_dict.items()}


def bind(**values: Any) -> None:
    """Add ids to every later log line of this request or job (``user_id``, ``stripe_customer_id``, …)."""
    structlog.contextvars.bind_contextvars(**{k: v for k, v in values.items() if v is not None})


_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def _dumps(value: dict[str, Any], **kw: Any) -> str:
    """orjson, about twice as fast as ``json`` on a request line; ``json`` for what orjson refuses (an
    integer past 64 bits). ``kw`` carries structlog's fallback for objects neither knows (their repr)."""
    try:
        return orjson.dumps(value, default=kw["default"], option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value, **kw)


class _CurrentStderr:
    """``sys.stderr`` as it is when a line is written, not when logging was configured: whoever swaps stderr
    for a while (test runners capturing output, ``CliRunner``) must not leave the handler on a closed stream."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def log_format(setting: str) -> str:
    """TALLY_LOG_FORMAT as used: ``auto`` is ``console`` when stderr is a terminal (a person reads it), else
    ``json`` (a process manager or a log shipper does)."""
    if setting == "auto":
        return "console" if _isatty(sys.stderr) else "json"
    return setting


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def configure_logging(level: str = "INFO", *, stream: Any = None, fmt: str = "json") -> None:
    """Lines on stderr for structlog and stdlib loggers: JSON, or ``fmt="console"`` for a person. Idempotent: a
    second call replaces the handler (tests build several apps in one process)."""
    from .console import AcceptedDeliveries, ExceptionText, PersonRenderer

    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    verbose = logging.getLevelName(level.upper()) == logging.DEBUG
    rendering = [ExceptionText(verbose=verbose), redact_processor,
                 PersonRenderer(colors=_isatty(sys.stderr))] if fmt == "console" else \
        [structlog.processors.format_exc_info, redact_processor, structlog.processors.JSONRenderer(_dumps)]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_SHARED, structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
    )
    handler = logging.StreamHandler(stream or _CurrentStderr())
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    handler.addFilter(RoutineJobs())
    if fmt == "console":
        handler.addFilter(AcceptedDeliveries())
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == _HANDLER_NAME:
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Chatty at INFO, and said better by Tally's own lines: pgserver logs every pg_ctl command it runs; the
    # Stripe SDK and httpx log two or three lines per API call (the request's own log line and status, and a
    # Stripe failure's mapped error, already say what matters), which cost more than the rest of a checkout's
    # logging together. TALLY_LOG_LEVEL=DEBUG brings them back.
    for chatty in ("pgserver", "stripe", "httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.NOTSET if root.level <= logging.DEBUG
                                           else max(logging.WARNING, root.level))


# procrastinate's lines that say nothing happened: its start-up and shutdown, and each run of a periodic job
# (deferred, started, succeeded: every few seconds, with nothing to do most of the time; a job that did
# something says so in its own lines, and a failure is logged at ERROR).
_ROUTINE_ALWAYS = {"loading_blueprint", "registering_periodic_task", "start_worker", "stopping_worker",
                   "stop_worker"}
_ROUTINE_PERIODIC = {"periodic_task_deferred", "start_job", "job_success"}
_periodic_tasks: set[str] = set()


def quiet_periodic_tasks(task_names: set[str]) -> None:
    """Name the periodic tasks whose routine runs ``RoutineJobs`` lowers to DEBUG (``tally.worker``)."""
    _periodic_tasks.update(task_names)


class RoutineJobs(logging.Filter):
    """Lowers procrastinate's routine lines (``_ROUTINE_*``) to DEBUG: dropped unless TALLY_LOG_LEVEL=DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not record.name.startswith("procrastinate"):
            return True
        action = getattr(record, "action", None)
        job = getattr(record, "job", None)
        task = job.get("task_name") if isinstance(job, dict) else getattr(record, "task_name", None)
        if action in _ROUTINE_ALWAYS or (action in _ROUTINE_PERIODIC and task in _periodic_tasks):
            if logging.getLogger().level > logging.DEBUG:
                return False
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


def get_logger(name: str) -> Any:
    return structlog.stdlib.get_logger(name)
