"""A Faker provider for WhatsApp identities: numbers, profile names, Meta ids and wamids."""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

from faker import Factory, Faker
from faker.providers import BaseProvider

from simulator.errors import WasimError
from simulator.wamid import BUSINESS_ID_LENGTH, USER_ID_LENGTHS, encode_wamid
from simulator.world import derived_numeric_id as derived_numeric_id  # re-exported


@dataclass(frozen=True)
class Country:
    """How one country's WhatsApp users look: dial code, mobile number shapes, name locale."""

    code: str  # ISO 3166 alpha-2
    name: str
    dial_code: str
    # National mobile numbers: `#` any digit, `%` 1-9; literal digits are prefixes.
    patterns: tuple[str, ...]
    locale: str  # the Faker locale profile names come from


def _country(code: str, name: str, dial: str, locale: str, *patterns: str) -> Country:
    return Country(code, name, dial, patterns, locale)


# Codes people type that ISO spells differently.
_ALIASES = {"UK": "GB", "UAE": "AE", "KSA": "SA"}


class WhatsAppProvider(BaseProvider):
    """WhatsApp users and businesses; every random bit comes from the generator's Random."""

    countries: ClassVar[dict[str, Country]] = {
        c.code: c
        for c in (
            _country("IN", "India", "91", "en_IN", "6#########", "7#########", "8#########",
                     "9#########"),
            _country("US", "United States", "1", "en_US", "2##%######", "3##%######",
                     "4##%######", "5##%######", "6##%######", "7##%######", "8##%######",
                     "9##%######"),
            _country("GB", "United Kingdom", "44", "en_GB", "71########", "73########",
                     "74########", "75########", "77########", "78########", "79########"),
            _country("BR", "Brazil", "55", "pt_BR", "%%9########"),
            _country("ID", "Indonesia", "62", "id_ID", "811#######", "812########",
                     "813#########", "821########", "852########", "857#########",
                     "878########", "896#######"),
            _country("DE", "Germany", "49", "de_DE", "151########", "152########",
                     "157########", "160#######", "162#######", "170#######", "171########",
                     "172########", "176########", "177########", "178########"),
            # Faker's ar_AE locale has no person names; ar_SA's are the closest real data.
            _country("AE", "United Arab Emirates", "971", "ar_SA", "50#######", "52#######",
                     "54#######", "55#######", "56#######", "58#######"),
            _country("SA", "Saudi Arabia", "966", "ar_SA", "50#######", "53#######",
                     "54#######", "55#######", "56#######", "58#######", "59#######"),
            _country("MX", "Mexico", "52", "es_MX", "55########", "33########", "81########",
                     "222#######", "664#######"),
            _country("ES", "Spain", "34", "es_ES", "6########", "71#######", "72#######"),
            _country("FR", "France", "33", "fr_FR", "6########", "7########"),
            _country("NG", "Nigeria", "234", "en_NG", "803#######", "806#######", "813#######",
                     "816#######", "703#######", "706#######", "903#######", "906#######",
                     "810#######", "701#######", "802#######", "808#######"),
        )
    }

    # Some people set only a first name; the share is a guess, made explicit here.
    first_name_only_share: ClassVar[float] = 0.2

    def whatsapp_country(self, code: str) -> Country:
        """The Country for an ISO 3166 alpha-2 code (or its English name), or a WasimError."""
        key = code.strip().upper()
        country = self.countries.get(_ALIASES.get(key, key))
        if country is None:
            by_name = {c.name.upper(): c for c in self.countries.values()}
            country = by_name.get(key)
        if country is None:
            known = ", ".join(self.countries)
            raise WasimError(f"unknown country {code!r}", field="country",
                             hint=f"Use an ISO 3166 alpha-2 code: {known}.")
        return country

    def whatsapp_country_of(self, number: str) -> str | None:
        """The code of the known country whose dial code starts `number`, if any."""
        best = None
        for country in self.countries.values():
            if number.startswith(country.dial_code) and (
                    best is None or len(country.dial_code) > len(best.dial_code)):
                best = country
        return best.code if best else None

    def whatsapp_number(self, country: str = "IN") -> str:
        """A mobile number of `country` in WhatsApp's form: E.164 digits without `+`."""
        return draw_number(self.generator.random, self.whatsapp_country(country))

    def whatsapp_profile_name(self, country: str = "IN") -> str:
        """A profile name as a user of `country` would set it (no titles or suffixes)."""
        return draw_profile_name(self.generator.random, self.whatsapp_country(country))

    def whatsapp_numeric_id(self) -> str:
        """A Meta object id such as a phone_number_id or WABA id: 15 or 16 digits."""
        return draw_numeric_id(self.generator.random)

    def whatsapp_uuid4(self) -> str:
        """A lowercase RFC 4122 version 4 UUID, as Kaleyra's reply_to and trace_id."""
        return draw_uuid4(self.generator.random)

    def whatsapp_hex_id(self, length: int) -> str:
        """An uppercase hex message id of `length` characters."""
        return draw_hex(self.generator.random, length)

    def whatsapp_user_wamid(self, customer: str, platform: str = "android") -> str:
        """The wamid of a message the user sent from `platform` (android, ios or web)."""
        return encode_wamid(customer, False, draw_user_message_id(self.generator.random, platform))

    def whatsapp_business_wamid(self, customer: str) -> str:
        """The wamid of a message the business sent to `customer` through the API."""
        return encode_wamid(customer, True, self.whatsapp_hex_id(BUSINESS_ID_LENGTH))


# --- the draws, from any Random (each id family of a run has its own stream) ----------------


def _digits(rnd: random.Random, pattern: str) -> str:
    parts = []
    for token in _compile(pattern):
        if isinstance(token, int):
            # One draw per run of `#` rather than per digit: numbers are made per tap.
            parts.append(f"{rnd.randrange(10**token):0{token}d}")
        elif token == "%":
            parts.append(str(rnd.randrange(1, 10)))
        else:
            parts.append(token)
    return "".join(parts)


# A drawn number that libphonenumber would not call a mobile of its country is drawn again;
# the patterns above make that rare, so this bound is never reached in practice.
_NUMBER_TRIES = 200


def draw_number(rnd: random.Random, country: Country) -> str:
    """A valid mobile number of `country` (by libphonenumber's metadata), E.164 without `+`."""
    is_mobile = _mobile_checker(country.code)
    national = ""
    for _ in range(_NUMBER_TRIES):
        national = _digits(rnd, rnd.choice(country.patterns))
        if is_mobile(national):
            break
    return country.dial_code + national


def is_mobile_number(number: str, code: str) -> bool:
    """Whether `number` (E.164 digits) is a mobile number of country `code` per libphonenumber."""
    dial = WhatsAppProvider.countries[code].dial_code
    return number.startswith(dial) and _mobile_checker(code)(number[len(dial):])


# Where libphonenumber's metadata cannot tell a mobile from a fixed line, every number in both
# is FIXED_LINE_OR_MOBILE (NANP, and Mexico since its 2019 numbering reform): accepted there.
_NO_MOBILE_RANGES = frozenset({"US", "MX"})


@cache
def _mobile_checker(code: str) -> Callable[[str], bool]:
    """A test that a national number is a mobile of `code`, as phonenumbers.number_type says.

    The same decision as libphonenumber (the special ranges first, then fixed line, then
    mobile) over its own metadata, without parsing: a regex match per range, so cheap enough
    to check every generated number. The US metadata cannot tell mobiles from fixed lines
    (FIXED_LINE_OR_MOBILE), nor Mexico's, so there a number in both counts.
    """
    import phonenumbers  # the metadata is loaded per region, on first use

    meta = phonenumbers.PhoneMetadata.metadata_for_region(code)
    if meta is None:  # pragma: no cover - every listed country has metadata
        raise LookupError(code)

    def pattern(descs: list[Any], length: int) -> re.Pattern[str] | None:
        """One regex for every range of `descs` that numbers of `length` digits can be in."""
        parts = [d.national_number_pattern for d in descs
                 if d is not None and d.national_number_pattern
                 and (not d.possible_length or length in d.possible_length)]
        return re.compile("|".join(f"(?:{p})" for p in parts)) if parts else None

    special = [getattr(meta, kind) for kind in (
        "premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan",
        "voicemail")]
    same = bool(meta.same_mobile_and_fixed_line_pattern)
    either = code in _NO_MOBILE_RANGES
    # Per national length, the four tests libphonenumber makes, each one compiled regex.
    by_length = {length: (pattern([meta.general_desc], length), pattern(special, length),
                          pattern([meta.fixed_line], length), pattern([meta.mobile], length))
                 for length in (meta.general_desc.possible_length if meta.general_desc else ())}

    def is_mobile(national: str) -> bool:
        tests = by_length.get(len(national))
        if tests is None:
            return False
        general, specials, fixed, mobile = tests
        if general is None or general.fullmatch(national) is None:
            return False
        if specials is not None and specials.fullmatch(national) is not None:
            return False
        is_mobile_range = mobile is not None and mobile.fullmatch(national) is not None
        if fixed is not None and fixed.fullmatch(national) is not None:
            return either and (same or is_mobile_range)
        return is_mobile_range

    return is_mobile


def draw_profile_name(rnd: random.Random, country: Country) -> str:
    """A profile name as a user of `country` would set it (no titles or suffixes)."""
    first_names, last_names = _name_tables(country.locale)
    first = first_names.draw(rnd)
    if rnd.random() < WhatsAppProvider.first_name_only_share:
        return first
    return f"{first} {last_names.draw(rnd)}"


def draw_numeric_id(rnd: random.Random) -> str:
    """A Meta object id: 15 or 16 digits, no leading zero."""
    return str(rnd.randrange(10**14, 10**15) if rnd.random() < 0.5 else
               rnd.randrange(10**15, 10**16))


def draw_uuid4(rnd: random.Random) -> str:
    """A lowercase RFC 4122 version 4 UUID, as Kaleyra's reply_to and trace_id."""
    bits = rnd.getrandbits(128)
    # Set the version (4) and variant (10xx) bits exactly as uuid.uuid4() does.
    bits = (bits & ~(0xF000 << 64)) | (4 << 76)
    bits = (bits & ~(0xC000 << 48)) | (0x8000 << 48)
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def draw_hex(rnd: random.Random, length: int) -> str:
    """An uppercase hex id of `length` characters."""
    return f"{rnd.getrandbits(4 * length):0{length}X}"


# The fixed starts of user message ids by platform (wire-format.md section 10): iOS ids
# often start `3A`, WhatsApp Web's `3EB0`; Android's are plain hex.
USER_ID_PREFIXES = {"android": "", "ios": "3A", "web": "3EB0"}


def draw_user_message_id(rnd: random.Random, platform: str) -> str:
    """The hex id of a message a user sent from `platform`: 32, 20 (3A...) or 22 (3EB0...)."""
    prefix = USER_ID_PREFIXES[platform]
    return prefix + draw_hex(rnd, USER_ID_LENGTHS[platform] - len(prefix))


@dataclass(frozen=True)
class _Names:
    """A locale's name list with its cumulative weights, if Faker weights it."""

    population: tuple[str, ...]
    cum_weights: tuple[float, ...] | None

    def draw(self, rnd: random.Random) -> str:
        if self.cum_weights is None:
            return rnd.choice(self.population)
        return rnd.choices(self.population, cum_weights=self.cum_weights)[0]

    @classmethod
    def of(cls, names: Sequence[str] | Mapping[str, float]) -> _Names:
        if isinstance(names, Mapping):
            return cls(tuple(names), tuple(itertools.accumulate(names.values())))
        return cls(tuple(names), None)


@cache
def _name_tables(locale: str) -> tuple[_Names, _Names]:
    """First and last names of a Faker locale, ready to draw from with any Random."""
    # Faker recomputes the cumulative weights of weighted name lists (en_US, en_GB) on every
    # call, which made names the slowest part of rendering; they are computed once here.
    person: Any = Factory.create(locale).provider("faker.providers.person")
    return _Names.of(person.first_names), _Names.of(person.last_names)


@cache
def _compile(pattern: str) -> tuple[str | int, ...]:
    """Split a number pattern into literal text, `%` wildcards and run lengths of `#`."""
    tokens: list[str | int] = []
    for ch in pattern:
        if ch == "#":
            if tokens and type(tokens[-1]) is int:
                tokens[-1] = int(tokens[-1]) + 1
            else:
                tokens.append(1)
        elif ch == "%" or not tokens or type(tokens[-1]) is int or tokens[-1] == "%":
            tokens.append(ch)
        else:
            tokens[-1] = str(tokens[-1]) + ch
    return tuple(tokens)


def whatsapp_provider(fake: Faker) -> WhatsAppProvider:
    """The WhatsApp provider added to `fake` (calling it directly skips Faker's proxy)."""
    for provider in fake.get_providers():
        if isinstance(provider, WhatsAppProvider):
            return provider
    raise LookupError("this Faker has no WhatsAppProvider; build it with make_faker()")


def make_faker(seed: int, locale: str = "en_IN") -> Faker:
    """A Faker seeded with `seed`, with the WhatsApp provider added."""
    fake = Faker(locale)
    fake.add_provider(WhatsAppProvider)
    fake.seed_instance(seed)
    return fake


def reseeded(fake: Faker, seed: int) -> Faker:
    """`fake` (from make_faker) drawing as a new make_faker(seed) would: its Random seeded
    again and its `unique` memory cleared. Building a Faker is most of what a test's
    Simulator costs; one whose user is done can be given to the next this way."""
    fake.seed_instance(seed)
    fake.unique.clear()
    return fake
