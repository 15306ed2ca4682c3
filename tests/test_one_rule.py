"""A phone or a UUID accepted where people type it is one the validator accepts: one rule."""

from __future__ import annotations

import pytest

from simulator.checker import Checker
from simulator.errors import WasimError
from simulator.inputs import parse_phone, parse_uuid4, phone_problem


@pytest.mark.parametrize("digits", ["919845012345", "2801234567", "0919845012", "91984",
                                    "9198450123456789", "٩١٩٨٤٥٠١٢٣٤٥"])
def test_a_typed_number_is_accepted_exactly_when_the_validator_accepts_it(digits: str) -> None:
    on_the_wire = Checker(0).phone("$.from", digits)
    try:
        parse_phone(digits, "--business-number")
        typed = True
    except WasimError:
        typed = False
    assert typed == on_the_wire == (phone_problem(digits) is None)


def test_a_number_with_no_country_calling_code_is_refused_where_it_is_typed() -> None:
    with pytest.raises(WasimError, match="country code"):
        parse_phone("2801234567", "--business-number")


def test_a_typed_uuid_is_lowercased_to_the_form_the_validator_wants() -> None:
    value = parse_uuid4("48C38D78-4EC5-4B1E-ABEE-03AA11BB6C85", "reply_to")
    check = Checker(0)
    check.uuid4("$.extra_info.reply_to", value)
    assert not check.problems
