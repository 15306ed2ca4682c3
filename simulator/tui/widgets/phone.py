"""The phone pane: the template message as a WhatsApp chat bubble, its quick replies, replies,
the app's own messages (from the local send API) with their buttons, and a composer."""

from __future__ import annotations

from typing import ClassVar, Literal

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import Button, Input, Static

from simulator.models import Button as TemplateButton
from simulator.sendapi import SentMessage
from simulator.terminal import visible
from simulator.tui.replies import LABEL_CHARS, TICKS, bubble_text, failure_text, is_list, shown

Tone = Literal["sending", "ok", "retry", "bad"]
_TONE_STYLE: dict[Tone, str] = {"sending": "dim", "ok": "bold $text-success",
                                "retry": "bold $text-warning", "bad": "bold $text-error"}


class QuickReply(Button):
    """One quick-reply button under the template message; number key N fires button N too.

    Not a focus stop: its number key taps it, so Tab never lands here and an Enter meant
    for the log can never become a tap.
    """

    class Armed(Message):
        """The pointer or the focus is on a quick reply: the preview should show its bytes."""

        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def __init__(self, index: int, button: TemplateButton) -> None:
        label = Content.assemble((f"{index + 1}  ", "dim"), "↩ ", visible(button.text))
        super().__init__(label, id=f"quick-reply-{index + 1}", classes="quick-reply",
                         compact=True)
        self.can_focus = False
        self.index = index
        self.tooltip = visible(f"Tap {button.text!r} (payload {button.payload!r}) · "
                               f"key {index + 1}")

    def on_enter(self, event: events.Enter) -> None:
        """Arm this button when the mouse comes over it."""
        self.post_message(self.Armed(self.index))

    def on_focus(self, event: events.Focus) -> None:
        """Arm this button when the keyboard focus comes to it."""
        self.post_message(self.Armed(self.index))


def ticks(status: str) -> Content:
    """A status as the sender's ticks: ✓ sent, ✓✓ delivered, blue ✓✓ read, ✗ failed."""
    style = {"read": "bold $text-primary", "failed": "bold $text-error",
             "not-sent": "bold $text-warning"}.get(status, "$foreground 70%")
    return Content.styled(TICKS.get(status, status), style)


class AppButton(Button):
    """A quick reply, reply button or list menu inside a message the app sent.

    Tapped with the mouse or its number key (shown on it, numbered after the template's own),
    never by the focus: like QuickReply, it is not a focus stop.
    """

    def __init__(self, number: int, index: int, label: Content, tooltip: str) -> None:
        super().__init__(label, classes="app-button", compact=True)
        self.can_focus = False
        self.number = number  # the SentMessage's number
        self.index = index  # which button; -1 opens the list's rows
        self.text = label  # the label without its key
        self.key = 0  # the number key that taps it (0: none, past 9)
        self.tooltip = Content(tooltip)  # the app's words: text, never markup

    def show_key(self, key: int) -> None:
        """Show the number key that taps this button (0: no key)."""
        if key != self.key:
            self.key = key
            self.label = Content.assemble((f"{key}  ", "dim"), self.text) if key else self.text


class AppMessage(Vertical):
    """A message the app sent to the user (text, template, media, interactive), as received.

    One the send API accepted but Meta fails (`error`, e.g. 132001: no such template) never
    reaches a real phone: it is drawn marked failed, with its error and no buttons to tap.
    """

    def __init__(self, message: SentMessage, when: str) -> None:
        super().__init__(classes="app-message", id=f"app-message-{message.number}")
        self.set_class(bool(message.error), "-failed")
        self.message = message
        self.chat = message.to
        self.when = when
        self.status = ""
        self.reaction = ""

    def compose(self) -> ComposeResult:
        """The bubble: text, then time and ticks, then its buttons or its list's menu."""
        message = self.message
        failed = failure_text(message)
        with Vertical(classes="app-bubble"):
            yield Static(Content(bubble_text(message)), classes="app-body")
            if failed:
                yield Static(Content.assemble(
                    (failed, "bold $text-error"), "\n",
                    ("not delivered: the shopper never sees it", "italic")),
                    classes="app-failure")
            yield Static(classes="app-meta")
        if message.buttons and not failed:
            with Vertical(classes="app-buttons"):
                if is_list(message):
                    yield AppButton(message.number, -1, Content.assemble("≡ ", "choose a row"),
                                    f"Pick one of its {len(message.buttons)} rows")
                else:
                    for index, button in enumerate(message.buttons):
                        yield AppButton(message.number, index, Content.assemble(
                            "↩ ", shown(button.text, LABEL_CHARS)),
                            f"Tap {shown(button.text, LABEL_CHARS)!r} "
                            f"(id {shown(button.payload, LABEL_CHARS)!r})")

    def on_mount(self) -> None:
        """Show the time before any status came; number the buttons (they exist now)."""
        self.show_meta()
        for phone in self.ancestors:
            if isinstance(phone, Phone):
                phone.number_app_buttons()

    def show_meta(self, status: str | None = None, reaction: str | None = None) -> None:
        """Redraw the time line with the newest status's ticks and the user's reaction."""
        if status is not None:
            self.status = status
        if reaction is not None:
            self.reaction = reaction
        parts: list[Content | str | tuple[str, str]] = [(self.when, "dim")]
        if self.status:
            parts += ["  ", ticks(self.status)]
        if self.reaction:
            parts += ["  ", self.reaction]
        # Before the bubble is composed there is nothing to draw yet: on_mount draws it.
        for meta in self.query(".app-meta").results(Static):
            meta.update(Content.assemble(*parts))


class Composer(Input):
    """The phone's message box: type a text, enter sends it as the selected user."""

    class Send(Message):
        """Send `text` as a typed message."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class Left(Message):
        """Escape: the focus goes back where it was."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "leave", "Leave", show=False),
    ]

    def action_leave(self) -> None:
        """Give the focus back without sending."""
        self.post_message(self.Left())

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip():  # the app empties the box once the text is on its way
            self.post_message(self.Send(event.value))


class Reply(Static):
    """The user's reply in the chat: the tapped label, when, and what became of the delivery."""

    def __init__(self, label: str, when: str, chat: str = "", *, id: str | None = None) -> None:
        super().__init__(classes="reply", id=id)
        self.label = visible(label)  # the tapped button's text, from a file or the app
        self.when = when
        self.chat = chat  # whose conversation it belongs to (the user's number)
        self.show_status("✓", "sending")

    def show_status(self, status: str, tone: Tone) -> None:
        """Replace the tick with the handler's answer (or why there was none)."""
        self.set_class(tone == "bad", "-failed")
        content = Content.assemble(self.label, "\n", (f"{self.when}  ", "dim"),
                                   (status, _TONE_STYLE[tone]))
        self.update(content)
        # An explicit width: an auto one kept the first status's, cutting a longer final one.
        self.styles.width = max(line.cell_length for line in content.split("\n")) + 2


class ReplyRow(Horizontal):
    """The full-width row a reply sits in, on the right: the chat's children are aligned as
    one block, so a narrow reply would otherwise follow the widest bubble to the left."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply, classes="reply-row")
        self.reply = reply


class Phone(Vertical):
    """A phone showing the brand's template message to one user, who taps its quick replies."""

    DEFAULT_CSS = """
    Phone {
        height: 1fr;
        #phone-header { height: 2; padding: 0 1; }
        #message { height: auto; max-height: 70%; overflow-y: auto; }
        #bubble-time { width: 1fr; text-align: right; }
        #quick-replies { height: auto; }
        QuickReply { width: 1fr; }
        #chat { height: 1fr; min-height: 3; align-horizontal: right; }
        ReplyRow { width: 100%; height: auto; align-horizontal: right; }
        Reply { width: auto; max-width: 90%; text-align: right; }
        AppMessage { width: 100%; height: auto; padding-right: 3; }
        .app-bubble, .app-buttons { height: auto; }
        .app-body, .app-meta, .app-failure { height: auto; }
        AppButton { width: 1fr; }
        #as-user { height: auto; max-height: 2; padding: 0 1; }
        Composer { height: 1; }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.app_keys: dict[int, AppButton] = {}  # number key -> the app's button it taps

    class Tapped(Message):
        """The user tapped quick reply `index` (0-based) with the mouse or Enter."""

        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    chat = ""  # the conversation shown: one user's, as on a real phone
    template_buttons = 0  # how many quick replies the template has: keys 1..N are theirs

    def number_app_buttons(self) -> None:
        """Give the app's buttons in the chat shown the number keys after the template's own,
        newest message first (the one the user is looking at gets the lowest keys)."""
        keys: dict[int, AppButton] = {}
        key = self.template_buttons + 1
        for bubble in reversed(list(self.query(AppMessage))):
            for button in bubble.query(AppButton):
                if bubble.chat == self.chat and not bubble.message.error and key <= 9:
                    keys[key] = button
                    button.show_key(key)
                    key += 1
                else:
                    button.show_key(0)
        if keys.keys() != self.app_keys.keys():
            self.app.refresh_bindings()  # the footer's 1-N follows
        self.app_keys = keys

    def compose(self) -> ComposeResult:
        """The chat header, the template message and its buttons, the replies, the user."""
        yield Static(id="phone-header")
        with VerticalScroll(id="message", can_focus=False):
            with Vertical(id="bubble"):
                yield Static(id="bubble-body")
                yield Static(id="bubble-time")
            yield Vertical(id="quick-replies")
        yield VerticalScroll(id="chat", can_focus=False)
        yield Static(id="as-user")
        yield Composer(placeholder="c types · m sends more", id="composer", compact=True)

    def show_header(self, business: str, template: str) -> None:
        """Name the chat: the brand's number and the template's name."""
        self.query_one("#phone-header", Static).update(Content.assemble(
            ("◉ ", "$text-success"), (visible(business), "bold"),
            ("  ✓ business", "dim $text-success"),
            "\n", ("  template ", "dim"), (visible(template), "dim italic")))

    async def show_template(self, body: str, when: str,
                            buttons: tuple[TemplateButton, ...]) -> None:
        """Draw the brand's template message with its quick-reply buttons."""
        self.query_one("#bubble-body", Static).update(
            Content(visible(body, newlines=True)) if body
            else Content.styled("(the scenario gives no body text)", "dim italic"))
        self.query_one("#bubble-time", Static).update(Content.styled(when, "dim"))
        holder = self.query_one("#quick-replies", Vertical)
        await holder.remove_children()  # first: the new buttons reuse the old ones' ids
        await holder.mount_all(QuickReply(i, b) for i, b in enumerate(buttons))
        self.template_buttons = len(buttons)
        self.number_app_buttons()

    def show_template_meta(self, when: str, status: str = "", reaction: str = "") -> None:
        """The template bubble's time line: its time, its status's ticks, the reaction."""
        parts: list[Content | str | tuple[str, str]] = [(when, "dim")]
        if status:
            parts += ["  ", ticks(status)]
        if reaction:
            parts += ["  ", reaction]
        self.query_one("#bubble-time", Static).update(Content.assemble(*parts))

    def add_app_message(self, message: SentMessage, when: str, keep: int = 200) -> None:
        """Show a message the app sent, in its recipient's chat (the oldest beyond `keep` go)."""
        holder = self.query_one("#chat", VerticalScroll)
        bubble = AppMessage(message, when)
        bubble.display = message.to == self.chat
        holder.mount(bubble)
        shown = list(self.query(AppMessage))
        for old in shown[:max(0, len(shown) - keep)]:
            old.remove()
        holder.scroll_end(animate=False, immediate=False)  # AppMessage.on_mount numbers

    def app_message(self, number: int) -> AppMessage | None:
        """The bubble of the app's message `number`, if it is still shown."""
        for bubble in self.query(f"#app-message-{number}").results(AppMessage):
            return bubble
        return None

    def last_app_message(self) -> AppMessage | None:
        """The newest message the app sent in the chat shown that reached the phone."""
        found = [b for b in self.query(AppMessage) if b.chat == self.chat
                 and not b.message.error]
        return found[-1] if found else None

    def show_user(self, text: Content | str) -> None:
        """Say who is tapping."""
        self.query_one("#as-user", Static).update(text)

    def add_reply(self, key: str, label: str, when: str, chat: str = "") -> None:
        """Show the user's tap in their chat, with a tick until the handler answers."""
        self.chat = chat
        holder = self.query_one("#chat", VerticalScroll)
        holder.mount(ReplyRow(Reply(label, when, chat, id=f"reply-{key}")))
        holder.scroll_end(animate=False, immediate=False)


    def show_chat(self, chat: str) -> None:
        """Show only `chat`'s replies: every user has a conversation of their own."""
        if chat == self.chat:
            return
        self.chat = chat
        for row in self.query(ReplyRow):
            row.display = row.reply.display = row.reply.chat == chat
        for bubble in self.query(AppMessage):
            bubble.display = bubble.chat == chat
        self.number_app_buttons()
        self.query_one("#chat", VerticalScroll).scroll_end(animate=False, immediate=False)

    async def clear_chats(self) -> None:
        """Forget every conversation (another scenario: another brand, other people)."""
        await self.query(ReplyRow).remove()
        await self.query(AppMessage).remove()
        self.app_keys = {}

    def settle(self, key: str, status: str, tone: Tone) -> None:
        """Turn the tick of reply `key` into the delivery's status."""
        for reply in self.query(f"#reply-{key}").results(Reply):
            reply.show_status(status, tone)

    class AppTapped(Message):
        """The user tapped button `index` of the app's message `number` (-1: its list)."""

        def __init__(self, number: int, index: int) -> None:
            super().__init__()
            self.number = number
            self.index = index

    @on(Button.Pressed, ".app-button")
    def _app_tapped(self, event: Button.Pressed) -> None:
        event.stop()
        assert isinstance(event.button, AppButton)
        self.post_message(self.AppTapped(event.button.number, event.button.index))

    @on(Button.Pressed, ".quick-reply")
    def _tapped(self, event: Button.Pressed) -> None:
        event.stop()
        assert isinstance(event.button, QuickReply)
        self.post_message(self.Tapped(event.button.index))
