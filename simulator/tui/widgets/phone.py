"""The phone pane: the template message as a WhatsApp chat bubble, its quick replies, replies."""

from __future__ import annotations

from typing import Literal

from textual import events, on
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import Button, Static

from simulator.models import Button as TemplateButton

Tone = Literal["sending", "ok", "retry", "bad"]
_TONE_STYLE: dict[Tone, str] = {"sending": "dim", "ok": "bold $text-success",
                                "retry": "bold $text-warning", "bad": "bold $text-error"}


class QuickReply(Button):
    """One quick-reply button under the template message; number key N fires button N too."""

    class Armed(Message):
        """The pointer or the focus is on a quick reply: the preview should show its bytes."""

        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def __init__(self, index: int, button: TemplateButton) -> None:
        label = Content.assemble((f"{index + 1}  ", "dim"), "↩ ", button.text)
        super().__init__(label, id=f"quick-reply-{index + 1}", classes="quick-reply",
                         compact=True)
        self.index = index
        self.tooltip = f"Tap {button.text!r} (payload {button.payload!r}) · key {index + 1}"

    def on_enter(self, event: events.Enter) -> None:
        """Arm this button when the mouse comes over it."""
        self.post_message(self.Armed(self.index))

    def on_focus(self, event: events.Focus) -> None:
        """Arm this button when the keyboard focus comes to it."""
        self.post_message(self.Armed(self.index))


class Reply(Static):
    """The user's reply in the chat: the tapped label, when, and what became of the delivery."""

    def __init__(self, label: str, when: str, chat: str = "", *, id: str | None = None) -> None:
        super().__init__(classes="reply", id=id)
        self.label = label
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
        Reply { width: auto; max-width: 90%; text-align: right; }
        #as-user { height: auto; max-height: 2; padding: 0 1; }
    }
    """

    class Tapped(Message):
        """The user tapped quick reply `index` (0-based) with the mouse or Enter."""

        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

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

    def show_header(self, business: str, template: str) -> None:
        """Name the chat: the brand's number and the template's name."""
        self.query_one("#phone-header", Static).update(Content.assemble(
            ("◉ ", "$text-success"), (business, "bold"), ("  ✓ business", "dim $text-success"),
            "\n", ("  template ", "dim"), (template, "dim italic")))

    async def show_template(self, body: str, when: str,
                            buttons: tuple[TemplateButton, ...]) -> None:
        """Draw the brand's template message with its quick-reply buttons."""
        self.query_one("#bubble-body", Static).update(
            Content(body) if body else Content.styled("(the scenario gives no body text)",
                                                      "dim italic"))
        self.query_one("#bubble-time", Static).update(Content.styled(when, "dim"))
        holder = self.query_one("#quick-replies", Vertical)
        await holder.remove_children()  # first: the new buttons reuse the old ones' ids
        await holder.mount_all(QuickReply(i, b) for i, b in enumerate(buttons))

    def show_user(self, text: Content | str) -> None:
        """Say who is tapping."""
        self.query_one("#as-user", Static).update(text)

    def add_reply(self, key: str, label: str, when: str, chat: str = "") -> None:
        """Show the user's tap in their chat, with a tick until the handler answers."""
        self.chat = chat
        holder = self.query_one("#chat", VerticalScroll)
        holder.mount(Reply(label, when, chat, id=f"reply-{key}"))
        holder.scroll_end(animate=False, immediate=False)

    chat = ""  # the conversation shown: one user's, as on a real phone

    def show_chat(self, chat: str) -> None:
        """Show only `chat`'s replies: every user has a conversation of their own."""
        if chat == self.chat:
            return
        self.chat = chat
        for reply in self.query(Reply):
            reply.display = reply.chat == chat
        self.query_one("#chat", VerticalScroll).scroll_end(animate=False, immediate=False)

    async def clear_chats(self) -> None:
        """Forget every conversation (another scenario: another brand, other people)."""
        await self.query(Reply).remove()

    def settle(self, key: str, status: str, tone: Tone) -> None:
        """Turn the tick of reply `key` into the delivery's status."""
        for reply in self.query(f"#reply-{key}").results(Reply):
            reply.show_status(status, tone)

    @on(Button.Pressed, ".quick-reply")
    def _tapped(self, event: Button.Pressed) -> None:
        event.stop()
        assert isinstance(event.button, QuickReply)
        self.post_message(self.Tapped(event.button.index))
