import re
from pathlib import Path

import pytest

from tally.catalog.service import CatalogError, load_catalog, parse_catalog
from tally.config import DEFAULT_CATALOG

PACK = '[[packs]]\nid = "p"\nname = "P"\namount = 499\ncurrency = "usd"\ncoins = 500\n'


def test_default_catalog_has_four_growing_packs() -> None:
    catalog = load_catalog(DEFAULT_CATALOG)
    packs = list(catalog.packs.values())
    assert len(packs) == 4
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
    ("", "catalog.toml: packs: required"),
    ("packs = []", "the catalog has no [[packs]]"),
    ("packs = 3", "packs: Input should be a valid list"),
    ("[[packs]]\nid = 'x'", "packs[0] (x).name: required"),
    (PACK.replace("499", "4.99"), "packs[0] (p).amount: Input should be a valid integer"),
    (PACK.replace("499", "0"), "packs[0] (p).amount: amounts must be positive"),
    (PACK.replace("499", '"499"'), "amount: Input should be a valid integer"),
    (PACK.replace('"usd"', '"dollars"'), "currency: 'dollars' is not a three-letter"),
    (PACK.replace('"usd"', '"kwd"').replace("499", "4995"), "divisible by 10"),
    (PACK.replace("coins = 500", "coins = 0"), "packs[0] (p).coins: Input should be greater than or equal to 1"),
    (PACK + "bonus = -1\n", "packs[0] (p).bonus: Input should be greater than or equal to 0"),
    (PACK + "price = 1\n", "packs[0] (p).price: unknown field"),
    (PACK + PACK, "duplicate pack id"),
    (PACK.replace('id = "p"', 'id = "Bad Id"'), "packs[0] (Bad Id).id: String should match pattern"),
    (PACK + "[extra]\n", "extra: unknown field"),
    (PACK + "[payment_methods]\nusd = 'card'\n", "payment_methods.usd: Input should be a valid list"),
    (PACK + "[[plans]]\nid = 'm'\nname = 'M'\n", "plans: subscription plans live in the plans file (TALLY_PLANS)"),
    ("not toml [", "not valid TOML"),
])
def test_bad_catalogs_are_refused_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(CatalogError, match=re.escape(message)):
        parse_catalog(text, source="catalog.toml")


def test_every_wrong_field_is_reported_on_its_own_line() -> None:
    text = PACK.replace("499", "0").replace("coins = 500", "coins = 0") + "colour = 'red'\n"
    with pytest.raises(CatalogError) as refused:
        parse_catalog(text, source="shop.toml")
    assert str(refused.value).splitlines() == [
        "shop.toml: packs[0] (p).amount: amounts must be positive",
        "shop.toml: packs[0] (p).coins: Input should be greater than or equal to 1",
        "shop.toml: packs[0] (p).colour: unknown field (a typo?)"]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(tmp_path / "missing.toml")
