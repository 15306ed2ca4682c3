"""Generate the facts of button taps (who taps what, which ids, when) from a seeded Faker."""

from __future__ import annotations

import random
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

from faker import Faker

from simulator.errors import WasimError
from simulator.models import Business, Button, Tap, TemplateMessage, User
from simulator.providers import (
    draw_hex,
    draw_number,
    draw_profile_name,
    draw_user_message_id,
    draw_uuid4,
    make_faker,
    whatsapp_provider,
)
from simulator.wamid import BUSINESS_ID_LENGTH, USER_ID_LENGTHS, encode_wamid
from simulator.world import bsuid, user_country
from simulator.world import business_ids as business_ids  # re-exported: its old home

# The buttons of the default demo template, with developer payloads as real templates carry
# (a template's quick reply has a payload set by the brand; the label is for people).
DEFAULT_BUTTONS: tuple[Button, ...] = (
    Button("Shop now", "SHOP_NOW"),
    Button("Remind me later", "REMIND_LATER"),
    Button("Stop promotions", "STOP_PROMOTIONS"),
)

_CAMPAIGNS = ("summer sale campaign", "festive offers", "new arrivals", "weekend flash sale",
              "loyalty rewards", "back in stock")
_PRODUCTS = ("shoes campaign", "electronics", "fashion", "home decor", "beauty", "groceries")

# Seeded runs start at an instant drawn from this window (2026-01-01 to 2026-11-01 UTC),
# so the timestamp is part of the seed and output reproduces byte for byte.
SEEDED_EPOCH_RANGE = (1_767_225_600, 1_793_491_200)

# How a user is identified on the wire (wire-format.md section 10): `bsuid` is today's Meta
# shape (wa_id plus user_id), `phone` the seed page's (wa_id only), `username` a user who
# adopted a username (user_id only, no wa_id/from).
IDENTITIES = ("bsuid", "phone", "username")
# Number quirks real traffic has (section 10), opt-in by share: `mx521` Mexican mobiles as
# 521 + 10 digits, `br8` Brazilian wa_ids without the ninth digit.
QUIRKS = ("mx521", "br8")
PLATFORMS = ("android", "ios", "web")
# `mix`: each user's phone is drawn with these weights (a guess at WhatsApp's share of
# Android, iPhone and Web users, made explicit here).
PLATFORM_MIX = (("android", 70.0), ("ios", 25.0), ("web", 5.0))

Clock = Callable[[], int]


@dataclass(frozen=True)
class TapOptions:
    """What to vary when generating taps; None means "draw it from the seed"."""

    seed: int
    countries: tuple[str, ...] = ("IN",)
    business_country: str = "IN"
    buttons: tuple[Button, ...] = DEFAULT_BUTTONS
    ref: str | None = None
    ref1: str | None = None
    ref2: str | None = None
    platform: str = "mix"  # the users' phone: android, ios, web, or mix (drawn per user)
    start: int | None = None  # unix seconds of the first tap; None: seeded, or now if live
    # Stamp taps with the moment they are made (the live clock, moved by `start` if given)
    # instead of a seeded clock: what every face that delivers does.
    wall_clock: bool = False
    identity: tuple[tuple[str, float], ...] = (("bsuid", 1.0),)  # modes and their shares
    enterprise: float = 0.0  # share of BSUID users with an enterprise parent_user_id
    quirks: tuple[tuple[str, float], ...] = ()  # (quirk, share of the users it can apply to)
    # Your own ids, in place of generated ones ("reply to the message my app just sent").
    # Generated values are still drawn and then replaced, so the rest of the output is the
    # same with or without them.
    business_number: str | None = None
    phone_number_id: str | None = None
    waba_id: str | None = None
    user_number: str | None = None
    user_name: str | None = None
    context_id: str | None = None
    reply_to: str | None = None
    # Which share of the seeded source this generator draws: worker `partition` of a load
    # run split over processes (or Locust workers). Partition 0 is the plain seed, so one
    # process gives the same bytes as before; every other partition draws its own users and
    # ids, while the business and campaign (shared by every worker) stay the same.
    partition: int = 0
    # A new run's id (world.new_run_id): its message, trace and Kaleyra ids are drawn anew
    # while users and choices stay seeded. "" reproduces the seed's ids byte for byte.
    run: str = ""


# The families every partition shares: one business and one campaign per run.
SHARED_FAMILIES = frozenset({"business_number", "refs"})
# The families a new run draws anew (new traffic: the ids a de-duplicating app keys on and
# Kaleyra's per-callback ids), while users, names and choices stay seeded.
RUN_FAMILIES = frozenset({"message_id", "trace_id", "context_id", "reply_to"})


class Streams:
    """One Random per id family, each derived from the seed and the family's name.

    So drawing one more (or one less) value of a family never shifts another's: a run that
    differs in its buttons still gets the same users, trace ids and message ids.
    """

    def __init__(self, seed: int, partition: int = 0, run: str = "") -> None:
        self.seed = seed
        self.partition = partition
        self.run = run
        self._streams: dict[str, random.Random] = {}

    def __getitem__(self, family: str) -> random.Random:
        stream = self._streams.get(family)
        if stream is None:
            name = f"wasim:{self.seed}:{family}"
            if self.partition and family not in SHARED_FAMILIES:
                name = f"wasim:{self.seed}:p{self.partition}:{family}"
            if self.run and family in RUN_FAMILIES:
                name = f"{name}:run:{self.run}"
            stream = self._streams[family] = random.Random(name)
        return stream


def seeded_clock(rnd: random.Random | Faker, start: int | None) -> Clock:
    """A clock that starts at `start` (or a seeded instant) and advances 1-30 s per reading."""
    if isinstance(rnd, Faker):
        rnd = rnd.random
    current = start if start is not None else rnd.randrange(*SEEDED_EPOCH_RANGE)
    first = True

    def now() -> int:
        nonlocal current, first
        if not first:
            current += rnd.randrange(1, 31)
        first = False
        return current

    return now


def wall_clock() -> int:
    """The real time in unix seconds."""
    return int(time.time())


def live_clock(start: int | None = None, now: Callable[[], float] | None = None) -> Clock:
    """The moment of each reading (`now`, else `time.time`); with `start`, shifted so the
    first reading is it.

    `--now` moves a whole run this way: the taps keep their real spacing. `time.time` is
    looked up when read, so a test that replaces it gives every face its clock.
    """
    read = now if now is not None else lambda: time.time()
    offset = 0.0 if start is None else start - read()
    return lambda: int(read() + offset)


def parse_shares(text: str, known: Sequence[str], where: str) -> tuple[tuple[str, float], ...]:
    """Read `name=share,...` (or `name` alone: all of it), e.g. `bsuid=90,username=10`.

    Shares are weights for identities and probabilities (0-1) for quirks; each name must be
    one of `known`.
    """
    found: list[tuple[str, float]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, eq, value = part.partition("=")
        name = name.strip().lower()
        if name not in known:
            raise WasimError(f"unknown value {name!r}", where=where,
                             hint=f"Use {', '.join(known)}, e.g. {known[0]}=0.5.")
        share = 1.0
        if eq:
            try:
                share = float(value)
            except ValueError:
                raise WasimError(f"{value.strip()!r} is not a number", where=where,
                                 hint=f"Give a share, e.g. {name}=0.5.") from None
            if not share >= 0 or share == float("inf"):
                raise WasimError(f"the share of {name} must be 0 or more", where=where)
        found.append((name, share))
    if not found:
        raise WasimError("nothing given", where=where, hint=f"Use {', '.join(known)}.")
    return tuple(found)


def username_from(name: str, rnd: random.Random) -> str:
    """A WhatsApp username in the style people pick: their name in ASCII, a dot, digits."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    words = ["".join(ch for ch in word if ch.isalnum()) for word in folded.split()]
    base = ".".join(w for w in words if w)[:24] or "user"
    return f"{base}.{rnd.randrange(10, 10_000)}"


class TapFactory:
    """Makes taps for one run: one business and campaign, a new user per tap."""

    def __init__(self, options: TapOptions, fake: Faker | None = None,
                 clock: Clock | None = None) -> None:
        self.options = options
        self.fake = fake if fake is not None else make_faker(options.seed)
        self.wa = whatsapp_provider(self.fake)
        if not 0 <= options.partition < 1 << 16:
            raise WasimError(f"partition {options.partition} is out of range", field="partition",
                             hint="Use a worker index from 0 to 65535.")
        self.streams = Streams(options.seed, options.partition, options.run)
        # Draws that belong to no id family (the scenario's who-taps-what, chaos) use this.
        self.rnd = self.streams["plan"]
        if options.platform not in (*PLATFORMS, "mix"):
            raise WasimError(f"unknown platform {options.platform!r}", field="platform",
                             hint="Use android, ios, web or mix.")
        # Resolve every country before drawing anything, so a typo fails at once.
        self.countries = tuple(self.wa.whatsapp_country(c).code for c in options.countries)
        business_country = self.wa.whatsapp_country(options.business_country)
        number = draw_number(self.streams["business_number"], business_country)
        number = options.business_number or number
        self.business = Business(number,
                                 options.phone_number_id or business_ids(number)[0],
                                 options.waba_id or business_ids(number)[1])
        rnd = self.streams["refs"]
        self.refs = (
            options.ref if options.ref is not None else f"ref-{rnd.randrange(10**6):06d}",
            options.ref1 if options.ref1 is not None else rnd.choice(_CAMPAIGNS),
            options.ref2 if options.ref2 is not None else rnd.choice(_PRODUCTS),
        )
        if clock is not None:
            self.clock = clock
        elif options.wall_clock:
            self.clock = live_clock(options.start)
        else:
            self.clock = seeded_clock(self.streams["clock"], options.start)

    def new_user(self, country: str | None = None, *, number: str | None = None,
                 name: str | None = None) -> User:
        """A new user from `country` (or one of the run's countries at random).

        `number` and `name` replace the generated ones (the rest is drawn all the same);
        without them, `--user`/`--name` apply to a user of no given country.
        """
        streams, options = self.streams, self.options
        if country is None and number is None and name is None:
            number, name = options.user_number, options.user_name
        code = country or streams["country"].choice(self.countries)
        if number is not None and country is None:
            code = self.wa.whatsapp_country_of(number) or code
        spec = self.wa.whatsapp_country(code)
        drawn = draw_number(streams["user_number"], spec)
        drawn_name = draw_profile_name(streams["profile_name"], spec)
        # One draw per family per user, used or not, so the streams stay in step.
        identity = _weighted(streams["identity"].random(), options.identity)
        platform = options.platform
        platform_draw = streams["platform"].random()
        if platform == "mix":
            platform = _weighted(platform_draw, PLATFORM_MIX)
        quirk_draws = [streams[f"quirk:{quirk}"].random() for quirk in QUIRKS]
        enterprise = streams["enterprise"].random() < options.enterprise
        wire = drawn if number is None else number
        if number is None and options.quirks:
            draws = dict(zip(QUIRKS, quirk_draws, strict=True))
            wire = _with_quirks(drawn, spec.code,
                                {q: draws[q] < share for q, share in options.quirks})
        name = name or drawn_name
        key = drawn if number is None else number
        # The number's own country (libphonenumber: a +1 416 number is Canadian), as the
        # BSUID and contacts[].country_code carry it in every face (world.user_country).
        country_code = user_country(key) or spec.code
        return User(wire, name, country_code, *self._identity(
            country_code, name, identity, enterprise, key), platform=platform)

    def with_identity(self, user: User, identity: str, *, enterprise: bool | None = None,
                      key: str | None = None) -> User:
        """`user` as identity mode `identity` shows them (bsuid, phone or username).

        The BSUID is derived from the business and the user's number (`key`, the number
        before any wire quirk), the username from the seed and the number, so a user keeps
        them whatever else changes.
        """
        if identity not in IDENTITIES:
            raise WasimError(f"unknown identity {identity!r}", field="identity",
                             hint=f"Use {', '.join(IDENTITIES)}.")
        if enterprise is None:
            enterprise = bool(user.parent_user_id)
        user_id, parent, username = self._identity(user.country, user.name, identity,
                                                   enterprise, key or user.wa_id)
        return replace(user, user_id=user_id, parent_user_id=parent, username=username)

    def _identity(self, country: str, name: str, identity: str, enterprise: bool,
                  key: str) -> tuple[str, str, str]:
        """user_id, parent_user_id and username of a user of identity mode `identity`."""
        if identity == "phone":
            return "", "", ""
        seed = self.options.seed
        # One function of (business, user) everywhere (world.bsuid): the send API's statuses
        # and record derive the same id for the same person.
        business = self.business.display_phone_number
        user_id = bsuid(business, key, country=country)
        parent = bsuid(business, key, parent=True, country=country) if enterprise else ""
        username = username_from(name, random.Random(f"wasim:{seed}:username:{key}")) \
            if identity == "username" else ""
        return user_id, parent, username

    def send_template(self, user: User) -> TemplateMessage:
        """The brand's template message to `user`: its wamid, Kaleyra UUID and refs."""
        ref, ref1, ref2 = self.refs
        streams = self.streams
        wamid = encode_wamid(user.wa_id, True,
                             draw_hex(streams["context_id"], BUSINESS_ID_LENGTH))
        reply_to = draw_uuid4(streams["reply_to"])
        return TemplateMessage(self.options.context_id or wamid,
                               self.options.reply_to or reply_to, ref, ref1, ref2)

    def tap(self, user: User, sent: TemplateMessage, button: Button | None = None) -> Tap:
        """`user` taps `button` (or one at random) under the template message `sent`."""
        streams = self.streams
        drawn = streams["button"].choice(self.options.buttons)
        platform = user.platform if user.platform in USER_ID_LENGTHS else "android"
        return Tap(
            business=self.business,
            user=user,
            template=sent,
            button=button if button is not None else drawn,
            message_id=encode_wamid(user.wa_id, False,
                                    draw_user_message_id(streams["message_id"], platform)),
            timestamp=str(self.clock()),
            trace_id=draw_uuid4(streams["trace_id"]),
        )

    def taps(self, count: int) -> Iterator[Tap]:
        """`count` taps, each by a new user on their own template message."""
        for _ in range(count):
            user = self.new_user()
            yield self.tap(user, self.send_template(user))


def _weighted(draw: float, shares: Sequence[tuple[str, float]]) -> str:
    """The name whose slice of the total weight `draw` (0-1) falls in."""
    total = sum(share for _, share in shares)
    if total <= 0:
        return shares[0][0]
    point, running = draw * total, 0.0
    for name, share in shares:
        running += share
        if point < running:
            return name
    return shares[-1][0]


def _with_quirks(number: str, country: str, applied: dict[str, bool]) -> str:
    """The number as the wire carries it when a quirk applies to the user."""
    if country == "MX" and applied.get("mx521") and number.startswith("52"):
        return "521" + number[2:]  # the legacy mobile form (52 1 + ten digits)
    if country == "BR" and applied.get("br8") and len(number) == 13 and number[4] == "9":
        return number[:4] + number[5:]  # the wa_id without the ninth digit
    return number


def make_business(fake: Faker, country: str = "IN") -> Business:
    """A business number (a valid mobile of `country`) with its Meta phone_number_id and WABA id."""
    wa = whatsapp_provider(fake)
    number = wa.whatsapp_number(country)
    return Business(number, *business_ids(number))


def buttons_from_labels(labels: Sequence[str], payloads: Sequence[str] = ()) -> tuple[Button, ...]:
    """Buttons for `labels`; a missing payload defaults to the label, as Meta does."""
    return tuple(Button(label, payloads[i] if i < len(payloads) else label)
                 for i, label in enumerate(labels))
