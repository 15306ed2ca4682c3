"""Generate the facts of button taps (who taps what, which ids, when) from a seeded Faker."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from faker import Faker

from simulator.models import Business, Button, Tap, TemplateMessage, User
from simulator.providers import make_faker, whatsapp_provider

# The buttons of the default demo template: the two from Kaleyra's own marketing examples
# and a neutral third. With no payload set at send time, Meta echoes the label as payload.
DEFAULT_BUTTONS: tuple[Button, ...] = (
    Button("Shop now", "Shop now"),
    Button("Remind me later", "Remind me later"),
    Button("Stop promotions", "Stop promotions"),
)

_CAMPAIGNS = ("summer sale campaign", "festive offers", "new arrivals", "weekend flash sale",
              "loyalty rewards", "back in stock")
_PRODUCTS = ("shoes campaign", "electronics", "fashion", "home decor", "beauty", "groceries")

# Seeded runs start at an instant drawn from this window (2026-01-01 to 2026-11-01 UTC),
# so the timestamp is part of the seed and output reproduces byte for byte.
SEEDED_EPOCH_RANGE = (1_767_225_600, 1_793_491_200)

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
    platform: str = "android"  # which phone the users tap from: android, ios or web
    start: int | None = None  # unix seconds of the first tap; None: drawn from the seed
    wall_clock: bool = False  # stamp taps with the real time instead of a seeded clock
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


def seeded_clock(fake: Faker, start: int | None) -> Clock:
    """A clock that starts at `start` (or a seeded instant) and advances 1-30 s per reading."""
    rnd = fake.random
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


class TapFactory:
    """Makes taps for one run: one business and campaign, a new user per tap."""

    def __init__(self, options: TapOptions, fake: Faker | None = None,
                 clock: Clock | None = None) -> None:
        self.options = options
        self.fake = fake if fake is not None else make_faker(options.seed)
        self.wa = whatsapp_provider(self.fake)
        self.rnd = self.wa.generator.random  # every draw of the run comes from this one Random
        # Resolve every country before drawing anything, so a typo fails at once.
        self.countries = tuple(self.wa.whatsapp_country(c).code for c in options.countries)
        business_country = self.wa.whatsapp_country(options.business_country).code
        business = make_business(self.fake, business_country)
        self.business = Business(options.business_number or business.display_phone_number,
                                 options.phone_number_id or business.phone_number_id,
                                 options.waba_id or business.waba_id)
        rnd = self.rnd
        self.refs = (
            options.ref if options.ref is not None else f"ref-{rnd.randrange(10**6):06d}",
            options.ref1 if options.ref1 is not None else rnd.choice(_CAMPAIGNS),
            options.ref2 if options.ref2 is not None else rnd.choice(_PRODUCTS),
        )
        if clock is not None:
            self.clock = clock
        elif options.wall_clock:
            self.clock = wall_clock
        else:
            self.clock = seeded_clock(self.fake, options.start)

    def new_user(self, country: str | None = None) -> User:
        """A new user from `country`, or one of the run's countries at random."""
        code = country or self.rnd.choice(self.countries)
        number = self.options.user_number
        if number is not None and country is None:
            code = self.wa.whatsapp_country_of(number) or code
        user = User(self.wa.whatsapp_number(code), self.wa.whatsapp_profile_name(code), code)
        if number is None and self.options.user_name is None:
            return user
        return User(number or user.wa_id, self.options.user_name or user.name, code)

    def send_template(self, user: User) -> TemplateMessage:
        """The brand's template message to `user`: its wamid, Kaleyra UUID and refs."""
        ref, ref1, ref2 = self.refs
        wamid, reply_to = self.wa.whatsapp_business_wamid(user.wa_id), self.wa.whatsapp_uuid4()
        return TemplateMessage(self.options.context_id or wamid,
                               self.options.reply_to or reply_to, ref, ref1, ref2)

    def tap(self, user: User, sent: TemplateMessage, button: Button | None = None) -> Tap:
        """`user` taps `button` (or one at random) under the template message `sent`."""
        chosen = button if button is not None else self.rnd.choice(self.options.buttons)
        return Tap(
            business=self.business,
            user=user,
            template=sent,
            button=chosen,
            message_id=self.wa.whatsapp_user_wamid(user.wa_id, self.options.platform),
            timestamp=str(self.clock()),
            trace_id=self.wa.whatsapp_uuid4(),
        )

    def taps(self, count: int) -> Iterator[Tap]:
        """`count` taps, each by a new user on their own template message."""
        for _ in range(count):
            user = self.new_user()
            yield self.tap(user, self.send_template(user))


def make_business(fake: Faker, country: str = "IN") -> Business:
    """A business number with its Meta phone_number_id and WABA id."""
    wa = whatsapp_provider(fake)
    return Business(wa.whatsapp_number(country), wa.whatsapp_numeric_id(), wa.whatsapp_numeric_id())


def buttons_from_labels(labels: Sequence[str], payloads: Sequence[str] = ()) -> tuple[Button, ...]:
    """Buttons for `labels`; a missing payload defaults to the label, as Meta does."""
    return tuple(Button(label, payloads[i] if i < len(payloads) else label)
                 for i, label in enumerate(labels))
