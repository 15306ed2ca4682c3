"""Replacements for the personal values of captured callbacks, for `wasim import`.

Every replacement is drawn in the order the originals first appear, from streams seeded by
the import's seed: the same capture and seed give the same fakes, and a fake says nothing
about its original (a fake derived from a hash of the value would let anyone with the seed
test guesses of a number). Each original is remembered so the outputs can be scanned for
it, in every encoding, before anything is written.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from simulator.providers import WhatsAppProvider, draw_number, draw_uuid4
from simulator.wamid import PREFIX, InvalidWamid, decode_wamid, encode_wamid

MAX_TEXT = 4096  # characters of a fake text (WhatsApp's limit for a text message)
MIN_SCANNED = 4  # shorter originals ("ok", "Li") are too common to be told from chance
# What people wrote, which --keep-text keeps (scrubbed); places and file names never are.
KEPT_TEXTS = frozenset(("text", "caption"))
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"https?://\S+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_NAME_SPLIT = re.compile(r"[\s-]+")
_DIGITS = re.compile(r"\+?\d(?:[\d ().-]{2,}\d)?")


@dataclass(frozen=True)
class FakeUser:
    """The stand-in for one real user: same country, a fake number, name and ids."""

    wa_id: str
    name: str
    country: str  # ISO 3166 alpha-2 of the number (or of the BSUID)


class Anonymiser:
    """Maps each original value to its fake, drawing new fakes in order of appearance."""

    def __init__(self, seed: int, *, keep_text: bool = False) -> None:
        self.seed, self.keep_text = seed, keep_text
        self.replaced: Counter[str] = Counter()  # field -> values replaced
        self.originals: dict[str, str] = {}  # original -> the field it came from
        self.kept: set[str] = set()  # the brand's values, kept on purpose
        self._maps: dict[str, dict[Any, Any]] = {}
        self._streams: dict[str, random.Random] = {}
        self._name_tokens: set[str] = set()
        self._fakes: set[str] = set()

    # --- bookkeeping ----------------------------------------------------------------------

    def rnd(self, family: str) -> random.Random:
        """The stream of one family of fakes."""
        if family not in self._streams:
            self._streams[family] = random.Random(f"wasim:import:{self.seed}:{family}")
        return self._streams[family]

    def remember(self, value: Any, field: str) -> None:
        """Note an original, so the outputs are scanned for it."""
        if isinstance(value, str) and value:
            self.originals.setdefault(value, field)

    def keep(self, value: Any) -> Any:
        """A brand value kept as it is (a label, a payload, a row id)."""
        if isinstance(value, str):
            self.kept.add(value)
        return value

    def _mapped(self, family: str, key: Any) -> Any:
        return self._maps.setdefault(family, {}).get(key)

    def _store(self, family: str, key: Any, fake: Any, field: str) -> Any:
        self._maps.setdefault(family, {})[key] = fake
        self.replaced[field] += 1
        if isinstance(fake, str):
            self._fakes.add(fake)
        return fake

    def learn_names(self, names: Iterable[str]) -> None:
        """Every real name, before any fake is drawn: no fake may share a word with one."""
        for name in names:
            self._name_tokens.update(t.casefold() for t in _NAME_SPLIT.split(name) if t)

    # --- people ---------------------------------------------------------------------------

    def number(self, digits: str, field: str = "number") -> str:
        """A fake mobile number of the same country (and wire quirk) as `digits`."""
        if not digits:
            return digits
        found = self._mapped("number", digits)
        if found is not None:
            return str(found)
        self._remember_number(digits, field)
        region = region_of(digits)
        rnd = self.rnd("number")
        fake = ""
        for _ in range(100):
            fake = _mobile_like(digits, region, rnd)
            if fake != digits and fake not in self.originals and fake not in self._fakes:
                break
        return str(self._store("number", digits, fake, field))

    def _remember_number(self, digits: str, field: str) -> None:
        self.remember(digits, field)
        national = national_part(digits)
        if national and len(national) >= 6:
            self.remember(national, f"{field} (national part)")

    def user(self, wa_id: str, name: str, key: str) -> FakeUser:
        """The fake user standing in for the real user `key` (their number or BSUID)."""
        found = self._mapped("user", key)
        if found is not None:
            return found  # type: ignore[no-any-return]
        country = region_of(wa_id) if wa_id else (key.split(".")[0] if "." in key else "IN")
        # A user known only by a BSUID (a username) still needs a number in the scenario.
        # (A country libphonenumber has no mobile example for: an Indian number, which the
        # report names, rather than none: a listed user needs one.)
        fake_number = self.number(wa_id, "wa_id") if wa_id else \
            _mobile_like("", country, self.rnd("number")) \
            or _mobile_like("", "IN", self.rnd("number"))
        fake_name = self.name(name, country) if name else ""
        user = FakeUser(fake_number, fake_name, country)
        self._maps.setdefault("user", {})[key] = user
        return user

    def rename(self, key: str, fake_name: str) -> FakeUser:
        """The fake of user `key`, with the name it lacked (first seen without a profile)."""
        user: FakeUser = replace(self._maps["user"][key], name=fake_name)
        self._maps["user"][key] = user
        return user

    def name(self, real: str, country: str) -> str:
        """A profile name from `country`'s locale, as many words as `real` (one or two)."""
        found = self._mapped("name", real)
        if found is not None:
            return str(found)
        self.remember(real, "profile name")
        for token in _NAME_SPLIT.split(real):
            if len(token) >= MIN_SCANNED:
                self.remember(token, f"profile name {_A_WORD}")
        rnd = self.rnd("name")
        first, last = self._free_names(_locale_of(country))
        fake = ""
        for attempt in range(400):
            # Past 200 draws (or when the real names use up the locale's lists: a big
            # capture from one country) names are blended from halves of the locale's.
            draw = _pick if attempt < 200 and first and last else _blend
            words = [draw(first or _name_lists(_locale_of(country))[0], rnd)]
            if len(real.split()) > 1:
                words.append(draw(last or _name_lists(_locale_of(country))[1], rnd))
            fake = " ".join(words)
            if not {w.casefold() for w in _NAME_SPLIT.split(fake)} & self._name_tokens:
                break
        return str(self._store("name", real, fake, "profile name"))

    def _free_names(self, locale: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The locale's first and last names that share no word with a real name."""
        found = self._mapped("free names", locale)
        if found is None:
            found = tuple(tuple(n for n in names if not {
                w.casefold() for w in _NAME_SPLIT.split(n)} & self._name_tokens)
                for names in _name_lists(locale))
            self._maps["free names"][locale] = found
        return found  # type: ignore[no-any-return]

    def bsuid(self, real: str, field: str = "user_id") -> str:
        """A business-scoped user id of the same form: `CC.` (or `CC.ENT.`) + as many
        characters of the same classes."""
        found = self._mapped("bsuid", real)
        if found is not None:
            return str(found)
        self.remember(real, field)
        head, _, tail = real.rpartition(".")
        fake = f"{head}.{_same_shape(tail, self.rnd('bsuid'))}" if head else \
            _same_shape(real, self.rnd("bsuid"))
        return str(self._store("bsuid", real, fake, field))

    # --- ids ------------------------------------------------------------------------------

    def wamid(self, real: str) -> str:
        """The wamid re-encoded for the fake number: same direction, length and platform."""
        if not real:
            return real
        found = self._mapped("wamid", real)
        if found is not None:
            return str(found)
        self.remember(real, "wamid")
        rnd = self.rnd("wamid")
        try:
            decoded = decode_wamid(real)
        except InvalidWamid:
            body = real[len(PREFIX):] if real.startswith(PREFIX) else real
            fake = (PREFIX if real.startswith(PREFIX) else "") + _same_shape(body, rnd)
            return str(self._store("wamid", real, fake, "wamid"))
        self.remember(decoded.message_id, "wamid (message id)")
        ident = decoded.message_id
        prefix = next((p for p in ("3EB0", "3A") if ident.startswith(p)
                       and len(ident) == {"3A": 20, "3EB0": 22}[p]), "")
        hex_id = prefix + "".join(rnd.choice("0123456789ABCDEF")
                                  for _ in range(len(ident) - len(prefix)))
        fake = encode_wamid(self.number(decoded.customer, "wa_id"), decoded.from_business,
                            hex_id)
        return str(self._store("wamid", real, fake, "wamid"))

    def same_shape(self, real: str, field: str) -> str:
        """An id of the same shape: digits for digits, hex for hex, letters for letters
        (UUIDs stay UUIDs, 15-digit Meta ids stay 15 digits)."""
        if not real:
            return real
        found = self._mapped(field, real)
        if found is not None:
            return str(found)
        self.remember(real, field)
        rnd = self.rnd(field)
        fake = real
        for _ in range(100):
            fake = draw_uuid4(rnd) if _UUID.fullmatch(real) else _same_shape(real, rnd)
            if fake != real and fake not in self.originals:
                break
        return str(self._store(field, real, fake, field))

    def url(self, real: str, field: str = "media url") -> str:
        """A URL on a reserved host (example.com), its path of the same shape."""
        if not real:
            return real
        found = self._mapped("url", real)
        if found is not None:
            return str(found)
        self.remember(real, field)
        path = real.split("://", 1)[-1].partition("/")[2]
        fake = f"https://media.example.com/{_same_shape(path, self.rnd('url'))}"
        return str(self._store("url", real, fake, field))

    # --- what people wrote ----------------------------------------------------------------

    def text(self, real: str, field: str = "text") -> str:
        """Fake text of about the same length; with keep_text, the text with its emails,
        numbers, links and people's names replaced."""
        if not real:
            return real
        found = self._mapped(f"text:{field}", real)
        if found is not None:
            return str(found)
        if self.keep_text and field in KEPT_TEXTS:
            # Kept on request: only the pieces replaced in it are originals to scan for.
            fake = self._scrubbed(real)
            if fake == real:
                return real
        else:
            self.remember(real, field)
            # WhatsApp's own limit (4,096 characters) bounds what a hostile capture costs
            fake = fake_words(min(len(real), MAX_TEXT), self.rnd("text"), avoid=self._name_tokens)
        return str(self._store(f"text:{field}", real, fake, field))

    def _scrubbed(self, real: str) -> str:
        def email(match: re.Match[str]) -> str:
            self.remember(match.group(), "email in a text")
            self.replaced["email in a text"] += 1
            return f"{fake_words(6, self.rnd('email')).lower().replace(' ', '')}@example.com"

        def link(match: re.Match[str]) -> str:
            return self.url(match.group(), "link in a text")

        def digits(match: re.Match[str]) -> str:
            found = match.group()
            plain = re.sub(r"\D", "", found)
            if len(plain) < 4:
                return found
            if 8 <= len(plain) <= 15 and region_of(plain):
                return ("+" if found.startswith("+") else "") + self.number(plain)
            if len(plain) >= 5:  # shorter ones (a house number) would match by chance
                self.remember(found, "number in a text")
            self.replaced["number in a text"] += 1
            return _same_shape(found, self.rnd("digits"))

        text = _EMAIL.sub(email, real)
        text = _URL.sub(link, text)
        text = _DIGITS.sub(digits, text)
        for original, fake in sorted(self._maps.get("name", {}).items(), key=lambda i: -len(i[0])):
            words, stand_ins = _NAME_SPLIT.split(original), _NAME_SPLIT.split(fake)
            for index, word in enumerate(words):
                if len(word) >= 3 and word in text:
                    stand_in = stand_ins[index % len(stand_ins)]
                    text = re.sub(rf"\b{re.escape(word)}\b", stand_in, text)
        return text

    def location(self, lat: float, lng: float) -> tuple[float, float]:
        """The point moved 2-20 km in a drawn direction, at the original's precision."""
        found = self._mapped("location", (lat, lng))
        if found is not None:
            return found  # type: ignore[no-any-return]
        for value in (lat, lng):
            self.remember(repr(value), "location")
        rnd = self.rnd("location")
        distance, bearing = rnd.uniform(2.0, 20.0), rnd.uniform(0, 2 * math.pi)
        new_lat = max(-89.9, min(89.9, lat + distance / 111.0 * math.cos(bearing)))
        scale = 111.0 * max(math.cos(math.radians(lat)), 0.01)
        new_lng = (lng + distance / scale * math.sin(bearing) + 180.0) % 360.0 - 180.0
        places = max(_decimals(lat), _decimals(lng), 4)
        moved = (round(new_lat, min(places, 7)), round(new_lng, min(places, 7)))
        return self._store("location", (lat, lng), moved, "location")  # type: ignore[no-any-return]

    # --- the check ------------------------------------------------------------------------

    def leak(self, output: str) -> str | None:
        """The field of an original value that appears in `output` in any encoding (raw,
        JSON-escaped, PHP-escaped), or None. Values the brand also uses are not personal; a
        word of a name counts only as a whole word (`Krishna` is not in `Krishnamurthy`).

        One pass over `output` whatever the number of originals: each position's next 4, 6
        and 8 characters are looked up in an index of the originals by their start.
        """
        index: dict[str, list[tuple[str, str, bool]]] = {}
        for original, field in self.originals.items():
            if len(original) < MIN_SCANNED or original in self.kept:
                continue
            word = field.endswith(_A_WORD)
            for form in encodings(original):
                key = form[:_key_length(len(form))]
                index.setdefault(key, []).append((form, field, word))
        for position in range(len(output)):
            for length in _KEY_LENGTHS:
                for form, field, word in index.get(output[position:position + length], ()):
                    if output.startswith(form, position) and (not word or _whole_word(
                            output, position, len(form))):
                        return field
        return None


_A_WORD = "(a word of it)"
_KEY_LENGTHS = (4, 6, 8)


def _key_length(length: int) -> int:
    return 8 if length >= 8 else 6 if length >= 6 else 4


def _whole_word(text: str, start: int, length: int) -> bool:
    before = text[start - 1] if start else " "
    after = text[start + length] if start + length < len(text) else " "
    return not before.isalnum() and not after.isalnum()


def encodings(value: str) -> set[str]:
    """How `value` may appear in a file: raw, JSON-escaped (\\uXXXX), PHP-escaped (\\/)."""
    escaped = json.dumps(value)[1:-1]
    upper = _HEX_ESCAPE.sub(lambda m: "\\u" + m.group(1).upper(), escaped)  # Java, .NET
    raw_json = json.dumps(value, ensure_ascii=False)[1:-1]
    forms = {value, escaped, upper, raw_json}
    return forms | {form.replace("/", "\\/") for form in forms}


_HEX_ESCAPE = re.compile(r"\\u([0-9a-f]{4})")


# --- numbers ----------------------------------------------------------------------------------


def region_of(digits: str) -> str:
    """The ISO region of an E.164 number (digits), or "" when libphonenumber knows none."""
    import phonenumbers

    if not digits.isdigit() or not 6 <= len(digits) <= 15:
        return ""
    try:
        parsed = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        return ""
    region = phonenumbers.region_code_for_number(parsed)
    if (not region or region == "ZZ") and parsed.country_code is not None:
        region = phonenumbers.region_code_for_country_code(parsed.country_code)
    return "" if region in (None, "ZZ", "001") else str(region)


def national_part(digits: str) -> str:
    """The national significant number of an E.164 number, or ""."""
    import phonenumbers

    try:
        return str(phonenumbers.parse("+" + digits).national_number)
    except phonenumbers.NumberParseException:
        return ""


def _mobile_like(real: str, region: str, rnd: random.Random) -> str:
    """A valid mobile of `region` (libphonenumber), with the real number's wire quirk."""
    import phonenumbers

    known = WhatsAppProvider.countries.get(region)
    if known is not None:
        fake = draw_number(rnd, known)
        if region == "BR" and len(real) == 12 and len(fake) == 13:
            fake = fake[:4] + fake[5:]  # the wa_id without the ninth digit, as the real one
        if region == "MX" and real.startswith("521") and not fake.startswith("521"):
            fake = "521" + fake[2:]
        return fake
    if region:
        example = phonenumbers.example_number_for_type(region,
                                                       phonenumbers.PhoneNumberType.MOBILE)
        if example is not None:
            code, national = str(example.country_code), str(example.national_number)
            keep = min(3, len(national) - 4)
            for _ in range(200):
                drawn = national[:keep] + "".join(rnd.choice("0123456789")
                                                  for _ in range(len(national) - keep))
                parsed = phonenumbers.parse(f"+{code}{drawn}")
                if phonenumbers.is_valid_number(parsed) and phonenumbers.number_type(parsed) in (
                        phonenumbers.PhoneNumberType.MOBILE,
                        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE):
                    return code + drawn
    return real[:3] + "".join(rnd.choice("0123456789") for _ in range(len(real) - 3))


# --- names and text ---------------------------------------------------------------------------


def name_locale(country: str) -> str:
    """The Faker locale the fake names of `country` come from (en_US when it has none)."""
    return _locale_of(country)


def _locale_of(country: str) -> str:
    known = WhatsAppProvider.countries.get(country)
    if known is not None:
        return known.locale
    from faker.config import AVAILABLE_LOCALES

    for locale in sorted(AVAILABLE_LOCALES):
        if locale.endswith("_" + country) and _name_lists(locale)[0]:
            return locale
    return "en_US"


@cache
def _name_lists(locale: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    from faker import Factory

    try:
        person: Any = Factory.create(locale).provider("faker.providers.person")
        first, last = tuple(person.first_names), tuple(person.last_names)
    except (AttributeError, ValueError):
        return (), ()
    return first, last


def _pick(names: Sequence[str], rnd: random.Random) -> str:
    return names[rnd.randrange(len(names))]


def _blend(names: Sequence[str], rnd: random.Random) -> str:
    """A new name in the locale's script: the start of one of its names, the end of another."""
    first, second = _pick(names, rnd), _pick(names, rnd)
    return first[:max(1, len(first) // 2)] + second[len(second) // 2:]


@cache
def _words() -> tuple[str, ...]:
    from faker import Factory

    lorem: Any = Factory.create("en_US").provider("faker.providers.lorem")
    return tuple(w for w in lorem.word_list if len(w) >= 3)


def fake_words(length: int, rnd: random.Random, avoid: frozenset[str] | set[str] = frozenset()
           ) -> str:
    """Words up to about `length` characters (none of `avoid`, casefolded)."""
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < length:
        word = rnd.choice(_words())
        if word.casefold() not in avoid:
            words.append(word)
    text = " ".join(words)
    if len(text) > length + 3 and len(words) > 1:
        text = " ".join(words[:-1])
    return text[:1].upper() + text[1:] if text else text


def _same_shape(real: str, rnd: random.Random) -> str:
    """Each digit a digit, each hex letter a hex letter of the same case, each other letter a
    letter of the same case; punctuation stays (a UUID stays a UUID)."""
    hex_only = all(c in "0123456789abcdefABCDEF-" for c in real)
    out: list[str] = []
    for char in real:
        if char.isdigit() and char.isascii():
            # no leading zero where the original had none (Meta ids, numbers)
            out.append(rnd.choice("123456789" if not out and char != "0" else "0123456789"))
        elif hex_only and char.isalpha():
            out.append(rnd.choice("abcdef" if char.islower() else "ABCDEF"))
        elif char.isalpha() and char.isascii():
            out.append(rnd.choice("abcdefghijklmnopqrstuvwxyz" if char.islower()
                                  else "ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
        elif char.isalpha():
            out.append(rnd.choice("abcdefghijklmnopqrstuvwxyz"))
        else:
            out.append(char)
    return "".join(out)


def _decimals(value: float) -> int:
    text = repr(value)
    return len(text.partition(".")[2]) if "." in text and "e" not in text else 0
