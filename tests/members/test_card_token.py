"""The member card's QR token: resolves while fresh, refused when expired, forged or altered."""

from __future__ import annotations

from datetime import timedelta

import pytest

from patron.errors import PatronError
from patron.members import card
from patron.members.service import get_member

KEY = b"k" * 32


def test_card_token_lifecycle(database, clock, make_member):
    member_no = make_member()
    with database.unit_of_work() as s:
        member = get_member(s, member_no)
        token = card.issue(member.id, KEY, clock.now())
        assert member_no not in token and card.looks_like_token(token)
        assert card.resolve(s, token, KEY, clock.now()).member_no == member_no
        assert card.resolve(s, token, KEY, clock.now() + timedelta(seconds=60)).id == member.id
        with pytest.raises(PatronError) as expired:
            card.resolve(s, token, KEY, clock.now() + timedelta(seconds=121))
        assert expired.value.code == "card_token_expired"
        with pytest.raises(PatronError) as forged:
            card.resolve(s, token, b"x" * 32, clock.now())
        assert forged.value.code == "card_token_invalid"
        altered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
        for bad in (altered, "PC1", "PC1!!!!", member_no, ""):
            with pytest.raises(PatronError):
                card.resolve(s, bad, KEY, clock.now())
