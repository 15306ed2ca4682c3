"""wamid ids: the public examples decode exactly, encoding round-trips, fakes are caught."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.wamid import InvalidWamid, decode_wamid, encode_wamid

PUBLIC_SAMPLE = "wamid.HBgMOTE5NzQwNzc2NTA1FQIAEhggMDI1QjVEMzZGQzE2RDI3QzY2MjU2MTgwQjQ3RDM2NDYA"


def test_public_kaleyra_sample_decodes_to_the_documented_parts() -> None:
    decoded = decode_wamid(PUBLIC_SAMPLE)
    assert decoded.customer == "919740776505"
    assert decoded.from_business is False
    assert decoded.message_id == "025B5D36FC16D27C66256180B47D3646"
    assert decoded.direction == "from user"


def test_encoding_the_decoded_parts_gives_back_the_public_sample_byte_for_byte() -> None:
    decoded = decode_wamid(PUBLIC_SAMPLE)
    assert encode_wamid(decoded.customer, decoded.from_business, decoded.message_id) \
        == PUBLIC_SAMPLE


def test_business_sent_ids_carry_the_true_fromme_byte() -> None:
    wamid = encode_wamid("919740776505", True, "A" * 18)
    raw = base64.b64decode(wamid.removeprefix("wamid."))
    assert raw[18] == 0x11  # the byte after the JID struct
    assert decode_wamid(wamid).direction == "from business"


@given(
    customer=st.from_regex(r"[1-9][0-9]{9,14}", fullmatch=True),
    from_business=st.booleans(),
    message_id=st.from_regex(r"[0-9A-F]{18,32}", fullmatch=True),
)
def test_encode_then_decode_round_trips(customer: str, from_business: bool,
                                        message_id: str) -> None:
    decoded = decode_wamid(encode_wamid(customer, from_business, message_id))
    assert (decoded.customer, decoded.from_business, decoded.message_id) == \
        (customer, from_business, message_id)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("wamid.xyz", "not standard base64"),
        ("HBgMOTE5NzQwNzc2NTA1FQIAEhggMDI1QjVEMzZGQzE2RDI3QzY2MjU2MTgwQjQ3RDM2NDYA",
         "does not start with 'wamid.'"),
        # The masked sample from Kaleyra's page: XXXX in the base64 breaks the number.
        ("wamid.HBgMOTE5NzQwNzc2NXXXXXXXXXXTA1FQIAEFQjQxMjEyNjZBQTdGAA==", "not ASCII"),
        # A wrong length prefix (0x0D instead of 0x0C) swallows the server byte.
        ("wamid." + base64.b64encode(b"\x1c\x18\x0d919740776505\x15\x02\x00\x12\x18\x02AB\x00")
         .decode(), "not all digits"),
        ("wamid." + base64.b64encode(b"\x1c\x18\x0b919740776505\x15\x02\x00\x12\x18\x02AB\x00")
         .decode(), "expected 0x15"),
        ("wamid." + base64.b64encode(b"\x1c\x18\x0c919740776505\x15\x02\x00\x13\x18\x02AB\x00")
         .decode(), "expected the fromMe field"),
        ("wamid." + base64.b64encode(b"\x1c\x18\x0c919740776505\x15\x02\x00\x12\x18\x02ab\x00")
         .decode(), "not uppercase hex"),
        ("wamid." + base64.b64encode(b"\x1c\x18\x0c919740776505\x15\x02\x00\x12\x18\x02AB")
         .decode(), "ends after"),
        ("wamid." + base64.b64encode(b"\x1c\x18\x0c919740776505\x15\x02\x00\x12\x18\x02AB\x00\x00")
         .decode(), "unexpected bytes"),
        ("wamid." + base64.b64encode(b"\x1c\x18\x0312a\x15\x02\x00\x12\x18\x02AB\x00").decode(),
         "not all digits"),
    ],
)
def test_fabricated_ids_are_rejected_with_the_reason(value: str, reason: str) -> None:
    with pytest.raises(InvalidWamid, match=reason):
        decode_wamid(value)


def test_encode_refuses_non_digit_numbers() -> None:
    with pytest.raises(ValueError, match="digits only"):
        encode_wamid("+919740776505", False, "AB")
