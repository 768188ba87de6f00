"""Webhook processing tasks (run by the worker)."""

from __future__ import annotations

import procrastinate

blueprint = procrastinate.Blueprint()
