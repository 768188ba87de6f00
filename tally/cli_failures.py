"""Expected failures of `tally` commands, said in one line with the fix instead of a traceback: bad settings,
a database that cannot be reached or has no tables yet, Stripe out of reach or refusing the key, and Tally's
own ``StartupError``s. Anything else is a bug and keeps its traceback."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pydantic
import sqlalchemy.exc

from . import stripe_gateway
from .errors import StartupError

FAILED = 1


def explain(exc: BaseException) -> tuple[str, int] | None:
    """``(one line, exit code)`` for an expected failure anywhere in ``exc``'s chain, else None."""
    for cause in _chain(exc):
        found = _explain_one(cause)
        if found is not None:
            return found
    return None


def _explain_one(exc: BaseException) -> tuple[str, int] | None:
    if isinstance(exc, StartupError):
        return str(exc), exc.exit_code
    if isinstance(exc, pydantic.ValidationError) and exc.title == "Settings":
        wrong = "; ".join(f"{'.'.join(map(str, e['loc']))}={e.get('input')!r}: {e['msg']}" for e in exc.errors())
        return f"bad setting: {wrong} (fix the environment or .env)", FAILED
    if isinstance(exc, psycopg.errors.UndefinedTable):
        return ("the database has no Tally tables (or not all of them): run `tally migrate` (`tally serve` also "
                "migrates at start-up)"), FAILED
    if isinstance(exc, psycopg.OperationalError):
        reason = _first_line(exc)
        return (f"cannot connect to the database: {reason}. Start PostgreSQL, or fix TALLY_DATABASE_URL"), FAILED
    if isinstance(exc, stripe_gateway.AuthenticationError):
        return "Stripe refused the key: check STRIPE_SECRET_KEY", FAILED
    if isinstance(exc, stripe_gateway.APIConnectionError):
        return (f"cannot reach Stripe: {_first_line(exc)}. Check the network, or STRIPE_API_BASE (a sandbox: is "
                "it running?)"), FAILED
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, what caused it (SQLAlchemy wraps the driver's errors) and the members of exception groups."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        if isinstance(current, sqlalchemy.exc.DBAPIError) and current.orig is not None:
            pending.append(current.orig)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "user_message", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
