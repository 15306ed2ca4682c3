"""The WhatsApp Faker provider: real number shapes per country, locale names, seeded ids."""

from __future__ import annotations

import uuid

import pytest

from simulator.errors import WasimError
from simulator.providers import WhatsAppProvider, make_faker, whatsapp_provider
from simulator.wamid import decode_wamid

# Country -> (dial code, allowed national lengths, allowed first digit(s) of the national part)
SHAPES = {
    "IN": ("91", {10}, "6789"),
    "US": ("1", {10}, "23456789"),
    "GB": ("44", {10}, "7"),
    "BR": ("55", {11}, "123456789"),
    "ID": ("62", {10, 11, 12}, "8"),
    "DE": ("49", {10, 11}, "1"),
    "AE": ("971", {9}, "5"),
    "SA": ("966", {9}, "5"),
    "MX": ("52", {10}, "23456789"),
    "ES": ("34", {9}, "67"),
    "FR": ("33", {9}, "67"),
    "NG": ("234", {10}, "789"),
}


def test_every_known_country_has_a_shape_test() -> None:
    assert set(SHAPES) == set(WhatsAppProvider.countries)


@pytest.mark.parametrize("code", sorted(SHAPES))
def test_numbers_have_the_country_code_and_real_national_length(code: str) -> None:
    wa = whatsapp_provider(make_faker(1))
    dial, lengths, first_digits = SHAPES[code]
    for _ in range(300):
        number = wa.whatsapp_number(code)
        assert number.isdigit(), number
        assert number.startswith(dial)
        national = number[len(dial):]
        assert len(national) in lengths, number
        assert national[0] in first_digits, number
        assert wa.whatsapp_country_of(number) == code or code in ("AE", "SA", "US")


def test_indian_numbers_start_with_6_to_9_after_91() -> None:
    wa = whatsapp_provider(make_faker(3))
    assert {wa.whatsapp_number("IN")[2] for _ in range(500)} == set("6789")


@pytest.mark.parametrize(("code", "alphabet_probe"), [("AE", "\u0600"), ("DE", None)])
def test_profile_names_come_from_the_countrys_locale(code: str, alphabet_probe: str | None) -> None:
    wa = whatsapp_provider(make_faker(5))
    names = [wa.whatsapp_profile_name(code) for _ in range(50)]
    assert all(names)
    if alphabet_probe:  # Arabic script for the Gulf
        assert all(any("\u0600" <= ch <= "\u06ff" for ch in name) for name in names)


def test_profile_names_carry_no_titles() -> None:
    wa = whatsapp_provider(make_faker(8))
    names = [wa.whatsapp_profile_name(c) for c in ("GB", "DE", "ID") for _ in range(200)]
    assert not [n for n in names if n.split()[0] in {"Dr", "Mr", "Mrs", "Ms", "drg.", "Prof."}]


def test_meta_ids_are_15_or_16_digits() -> None:
    wa = whatsapp_provider(make_faker(2))
    ids = [wa.whatsapp_numeric_id() for _ in range(200)]
    assert all(i.isdigit() and len(i) in (15, 16) for i in ids)
    assert {len(i) for i in ids} == {15, 16}


def test_uuids_are_lowercase_version_4() -> None:
    wa = whatsapp_provider(make_faker(2))
    for _ in range(100):
        value = wa.whatsapp_uuid4()
        parsed = uuid.UUID(value)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert value == str(parsed)


@pytest.mark.parametrize(("platform", "length"), [("android", 32), ("ios", 20), ("web", 22)])
def test_user_wamids_embed_the_user_and_the_platforms_id_length(platform: str,
                                                                length: int) -> None:
    wa = whatsapp_provider(make_faker(4))
    decoded = decode_wamid(wa.whatsapp_user_wamid("919812345678", platform))
    assert (decoded.customer, decoded.from_business, len(decoded.message_id)) == \
        ("919812345678", False, length)


def test_business_wamids_are_from_the_business_with_18_hex_chars() -> None:
    wa = whatsapp_provider(make_faker(4))
    decoded = decode_wamid(wa.whatsapp_business_wamid("919812345678"))
    assert (decoded.customer, decoded.from_business, len(decoded.message_id)) == \
        ("919812345678", True, 18)


def test_the_same_seed_draws_the_same_values_in_every_locale() -> None:
    def draw(seed: int) -> list[str]:
        wa = whatsapp_provider(make_faker(seed))
        return [f(c) for c in SHAPES for f in (wa.whatsapp_number, wa.whatsapp_profile_name)]

    assert draw(42) == draw(42)
    assert draw(42) != draw(43)


def test_unknown_country_is_a_clear_error_listing_the_known_ones() -> None:
    wa = whatsapp_provider(make_faker(1))
    with pytest.raises(WasimError, match="unknown country 'IM'") as info:
        wa.whatsapp_number("IM")
    assert "IN, US, GB" in (info.value.hint or "")


@pytest.mark.parametrize(("typed", "code"), [("uk", "GB"), ("UAE", "AE"), ("india", "IN")])
def test_common_spellings_of_a_country_are_understood(typed: str, code: str) -> None:
    assert whatsapp_provider(make_faker(1)).whatsapp_country(typed).code == code


def test_partitions_share_the_business_and_draw_their_own_users_and_ids() -> None:
    from simulator.taps import TapFactory, TapOptions

    plain = list(TapFactory(TapOptions(seed=5)).taps(50))
    zero = list(TapFactory(TapOptions(seed=5, partition=0)).taps(50))
    one = list(TapFactory(TapOptions(seed=5, partition=1)).taps(50))
    two = list(TapFactory(TapOptions(seed=5, partition=2)).taps(50))
    assert plain == zero  # partition 0 is the plain seed: one process is unchanged
    assert {t.business for t in one} == {t.business for t in plain}
    ids = [t.message_id for t in plain + one + two]
    assert len(set(ids)) == len(ids)
    assert {t.user.wa_id for t in one}.isdisjoint({t.user.wa_id for t in two})


def test_a_partition_out_of_range_is_refused_naming_the_field() -> None:
    from simulator.taps import TapFactory, TapOptions

    with pytest.raises(WasimError) as caught:
        TapFactory(TapOptions(seed=5, partition=-1))
    assert caught.value.field == "partition"
