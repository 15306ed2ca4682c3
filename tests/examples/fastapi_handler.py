"""A FastAPI webhook for Kaleyra button taps: a reply to every tap, an opt-out on STOP."""

from fastapi import FastAPI, Request

app = FastAPI()
handled: set[str] = set()  # message ids already acted on
opted_out: set[str] = set()  # numbers that tapped a button with the STOP payload
replies_sent: list[str] = []  # numbers we answered (a stand-in for a call to the send API)


@app.post("/webhook")
async def webhook(request: Request) -> dict[str, str]:
    """Act on a button tap once, however many times Kaleyra delivers it."""
    message = (await request.json())["meta_object"]["value"]["messages"][0]
    if message["id"] in handled:  # Kaleyra delivers at least once: this is a repeat
        return {"status": "duplicate"}
    handled.add(message["id"])
    if message["button"]["payload"] == "STOP":
        opted_out.add(message["from"])
    replies_sent.append(message["from"])
    return {"status": "ok"}
