"""The user picker: tap as someone from the scenario's cast, or as a new user from a country."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option

from simulator.models import User
from simulator.providers import WhatsAppProvider
from simulator.tui.session import display_number

UserChoice = User | str  # a user, or the country code of a new one
_SHOWN = 500  # a 10,000-user cast is searched by typing, not scrolled


class UserScreen(ModalScreen[UserChoice | None]):
    """Pick who taps next: type to filter by name, number or country."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close", tooltip="Keep the current user"),
        Binding("down", "focus_list", "List", show=False),
    ]

    def __init__(self, users: Sequence[User], current: User) -> None:
        super().__init__()
        self.users = list(users)
        self.current = current
        self._matched: list[User] = []

    def compose(self) -> ComposeResult:
        """A filter box over the cast and the countries."""
        with Vertical(id="dialog", classes="users") as dialog:
            dialog.border_title = "Who taps?"
            dialog.border_subtitle = "type to filter · enter picks · esc closes"
            yield Input(placeholder="name, number or country", id="user-filter", compact=True)
            yield OptionList(id="user-list")

    def on_mount(self) -> None:
        """Fill the list, the current user highlighted."""
        self._fill("")

    def _fill(self, text: str) -> None:
        needle = text.strip().lower().lstrip("+")
        options: list[Option | None] = []
        matched = [u for u in self.users
                   if not needle or needle in u.name.lower() or needle in u.wa_id
                   or needle == u.country.lower()]
        for index, user in enumerate(matched[:_SHOWN]):
            label = Content.assemble((f"{user.name:<24}", "bold" if user == self.current else ""),
                                     (f" {display_number(user.wa_id, user.country):<18}", "dim"),
                                     f" {user.country}")
            options.append(Option(label, id=f"user-{index}"))
        if len(matched) > _SHOWN:
            options.append(Option(Content.styled(f"… {len(matched) - _SHOWN:,} more: type to "
                                                 "narrow down", "dim"), disabled=True))
        countries = [c for c in WhatsAppProvider.countries.values()
                     if not needle or needle in c.name.lower() or needle == c.code.lower()]
        # A country's exact code (BR) beats a name that merely contains it (Abraham): first,
        # and highlighted, so enter picks a new user from there.
        exact = [c for c in countries if needle and needle == c.code.lower()]
        new_users = [Option(Content.assemble(("+ new user from ", "$text-accent"),
                                             f"{country.name} ({country.code})"),
                            id=f"country-{country.code}")
                     for country in sorted(countries, key=lambda c: c not in exact)]
        if exact:
            options = [*new_users[:len(exact)], None, *options, *new_users[len(exact):]]
            options = [o for i, o in enumerate(options) if o is not None or
                       (0 < i < len(options) - 1 and options[i + 1] is not None)]
        elif new_users:
            if options:
                options.append(None)
            options += new_users
        self._matched = matched
        listing = self.query_one("#user-list", OptionList)
        listing.clear_options()
        listing.add_options(options)
        if exact:
            listing.highlighted = 0
        elif matched and self.current in matched[:_SHOWN]:
            listing.highlighted = matched.index(self.current)
        elif listing.option_count:
            listing.highlighted = 0

    @on(Input.Changed, "#user-filter")
    def _filter(self, event: Input.Changed) -> None:
        self._fill(event.value)

    @on(Input.Submitted, "#user-filter")
    def _pick_highlighted(self) -> None:
        listing = self.query_one("#user-list", OptionList)
        if listing.highlighted is not None:
            self._choose(listing.get_option_at_index(listing.highlighted).id)

    @on(OptionList.OptionSelected, "#user-list")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self._choose(event.option.id)

    def _choose(self, option_id: str | None) -> None:
        if option_id is None:
            return
        kind, _, value = option_id.partition("-")
        self.dismiss(value if kind == "country" else self._matched[int(value)])

    def action_focus_list(self) -> None:
        """From the filter box down into the list."""
        self.query_one("#user-list", OptionList).focus()
