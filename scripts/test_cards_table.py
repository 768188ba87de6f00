"""The README's table of test cards, made from the sandbox's own table (``stripe_sandbox.cards``).

Usage: python scripts/test_cards_table.py          rewrite the table between the README's markers
       python scripts/test_cards_table.py --check  exit 1 if the README's table is not what this makes
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stripe_sandbox.cards import TestCard, table  # noqa: E402 - after the path is set

README = ROOT / "README.md"
START, END = "<!-- test-cards:start -->", "<!-- test-cards:end -->"


def outcome(card: TestCard) -> str:
    """What a payment with the card does in the sandbox, in the words of the README."""
    parts = []
    if card.blocked and card.decline:
        parts.append(f"blocked by Radar: 402 `{card.decline.code}` / `{card.decline.decline_code}`")
    elif card.decline:
        parts.append(f"declined: 402 `{card.decline.code}` / `{card.decline.decline_code}`")
    if card.three_d_secure == "always":
        parts.append("3D Secure on every payment (off-session: declined `authentication_required`)")
    elif card.three_d_secure == "on_session":
        parts.append("3D Secure unless set up for off-session use")
    if card.decline_after_authentication:
        parts.append(f"then declined `{card.decline_after_authentication.decline_code}`")
    checks = [f"{name} `{value}`" for name, value in (
        ("cvc_check", card.cvc_check), ("address_line1_check", card.address_line1_check),
        ("address_postal_code_check", card.address_postal_code_check)) if value]
    if card.risk_level != "normal" and not card.blocked:
        checks.append(f"risk_level `{card.risk_level}`")
    if card.dispute:
        kind = "inquiry" if card.inquiry else "chargeback"
        checks.append(f"then disputed (`{card.dispute}` {kind})")
    if card.refund_fails:
        checks.append("refunds fail a moment later")
    if not card.decline and not card.three_d_secure:
        parts.append("succeeds" + (": " + ", ".join(checks) if checks else ""))
    elif checks:
        parts.append(", ".join(checks))
    if card.note:
        parts.append(f"({card.note})")
    return "; ".join(parts)


def markdown() -> str:
    lines = [START, "", "| section | number | brand, funding, country | PaymentMethod / token | outcome |",
             "|---|---|---|---|---|"]
    for card, names in table():
        named = ", ".join(f"`pm_card_{n}` / `tok_{n}`" for n in names) or "number only"
        lines.append(f"| {card.section} | {card.number} | {card.brand}, {card.funding}, {card.country} | {named} "
                     f"| {outcome(card)} |")
    return "\n".join([*lines, "", END])


def rewritten(readme: str) -> str:
    head, _, rest = readme.partition(START)
    _, _, tail = rest.partition(END)
    if not rest:
        raise SystemExit(f"README.md has no {START} marker")
    return head + markdown() + tail


def main(argv: list[str]) -> int:
    current = README.read_text()
    wanted = rewritten(current)
    if "--check" in argv:
        if current != wanted:
            print("README.md's test card table is not the sandbox's: run scripts/test_cards_table.py",
                  file=sys.stderr)
            return 1
        return 0
    README.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
