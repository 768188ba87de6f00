"""The app's users as Tally knows them, and their one Stripe customer each.

``ensure_user`` runs on first contact (any authenticated call that writes); ``ensure_stripe_customer``
before the first checkout. Concurrency: the user row is locked (``SELECT … FOR UPDATE``) while the
customer is created, and the create carries an idempotency key derived from the user id, so two racing
first checkouts — or a retry after a crash between Stripe's answer and our commit — end with one
customer, not two."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..auth.service import Principal
from ..stripe_gateway import StripeGateway, idempotency_key, stripe_call
from .models import User


async def ensure_user(session: AsyncSession, principal: Principal) -> User:
    """The user row for this caller, created on first contact; a newly known email is kept.

    A known user with nothing new costs one primary-key read (the common case on every request: one
    round trip instead of two, and no statement to build; bench/spend.py). Anything else goes through
    the upsert, which settles racing first contacts."""
    user = await session.get(User, principal.user_id)
    if user is not None and (principal.email is None or user.email == principal.email):
        return user
    stmt = insert(User).values(id=principal.user_id, email=principal.email)
    stmt = stmt.on_conflict_do_update(
        index_elements=["id"], set_={"email": func.coalesce(stmt.excluded.email, User.email)},
        # Skip the write (and its row lock) when nothing changes: the common case on every request.
        where=stmt.excluded.email.is_not(None) & User.email.is_distinct_from(stmt.excluded.email))
    await session.execute(stmt)
    user = await session.get(User, principal.user_id, populate_existing=True)
    assert user is not None
    return user


async def ensure_stripe_customer(session: AsyncSession, client: StripeGateway, user: User) -> str:
    """The user's Stripe customer id, creating the customer (``metadata.user_id``) on first need."""
    if user.stripe_customer_id:
        return user.stripe_customer_id
    locked = await session.scalar(select(User).where(User.id == user.id).with_for_update()
                                  .execution_options(populate_existing=True))
    assert locked is not None
    if locked.stripe_customer_id:  # another request created it while we waited for the lock
        return locked.stripe_customer_id
    params: dict[str, object] = {"metadata": {"user_id": locked.id}}
    if locked.email:
        params["email"] = locked.email
    if locked.name:
        params["name"] = locked.name
    async with stripe_call("creating the customer"):
        customer = await client.create_customer(params, idempotency_key=idempotency_key("user", locked.id, "customer"))
    locked.stripe_customer_id = str(customer["id"])
    await session.flush()
    return locked.stripe_customer_id
