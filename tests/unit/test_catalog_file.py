from pathlib import Path

import pytest

from tally.catalog.service import CatalogError, load_catalog, parse_catalog
from tally.config import DEFAULT_CATALOG

PACK = '[[packs]]\nid = "p"\nname = "P"\namount = 499\ncurrency = "usd"\ncoins = 500\n'


def test_default_catalog_has_four_growing_packs() -> None:
    catalog = load_catalog(DEFAULT_CATALOG)
    packs = list(catalog.packs.values())
    assert len(packs) == 4 and catalog.plans == {}
    assert (packs[0].amount, packs[-1].amount) == (499, 9999)
    assert all(p.currency == "usd" for p in packs)
    bonus_share = [p.bonus / p.coins for p in packs]
    assert bonus_share == sorted(bonus_share) and bonus_share[-1] > bonus_share[0]
    assert len({p.lookup_key for p in packs}) == 4
    assert catalog.payment_method_types("usd") == ["card", "us_bank_account", "alipay"]  # issue 4 defaults


def test_a_minimal_pack_gets_defaults() -> None:
    pack = parse_catalog(PACK).packs["p"]
    assert (pack.bonus, pack.lookup_key, pack.total_coins) == (0, "tally_pack_p", 500)


def test_jpy_amounts_are_whole_yen() -> None:
    pack = parse_catalog(PACK.replace('"usd"', '"JPY"').replace("499", "500")).packs["p"]
    assert (pack.amount, pack.currency) == (500, "jpy")


@pytest.mark.parametrize(("text", "message"), [
    ("", "no [[packs]]"),
    ("packs = 3", "array of tables"),
    ("[[packs]]\nid = 'x'", "'name'"),
    (PACK.replace("499", "4.99"), "integers"),
    (PACK.replace("499", "0"), "positive"),
    (PACK.replace("499", '"499"'), "integers"),
    (PACK.replace('"usd"', '"dollars"'), "three-letter"),
    (PACK.replace('"usd"', '"kwd"').replace("499", "4995"), "divisible by 10"),
    (PACK.replace("coins = 500", "coins = 0"), "'coins'"),
    (PACK + "bonus = -1\n", "'bonus'"),
    (PACK + "price = 1\n", "unknown field"),
    (PACK + PACK, "duplicate pack id"),
    (PACK.replace('id = "p"', 'id = "Bad Id"'), "'id'"),
    (PACK + "[extra]\n", "unknown section"),
    (PACK + "[payment_methods]\nusd = 'card'\n", "list of payment method types"),
    (PACK + "[[plans]]\nid = 'm'\nname = 'M'\namount = 999\ncurrency = 'usd'\ncoins = 1\ninterval = 'hour'\n",
     "'interval'"),
    ("not toml [", "not valid TOML"),
])
def test_bad_catalogs_are_refused_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(CatalogError, match=message.replace("[", r"\[")):
        parse_catalog(text)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(tmp_path / "missing.toml")
