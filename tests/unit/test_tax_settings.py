"""``TALLY_TAX``: automatic by default in sandbox mode, off by default with a real key; only the modes Tally
implements are accepted."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tally.config import Settings


def test_defaults_follow_the_mode() -> None:
    assert Settings(_env_file=None).tax_mode == "automatic"
    assert Settings(_env_file=None, STRIPE_SECRET_KEY="sk_test_x").tax_mode == "off"
    assert Settings(_env_file=None, STRIPE_SECRET_KEY="sk_test_x", TALLY_TAX="automatic").tax_mode == "automatic"
    assert Settings(_env_file=None, TALLY_TAX="off").tax_mode == "off"


def test_unknown_modes_are_refused_at_start_up() -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, TALLY_TAX="rates")  # per-country tax rates are not built yet
    with pytest.raises(ValidationError):
        Settings(_env_file=None, TALLY_TAX_HEAD_OFFICE="Germany")
