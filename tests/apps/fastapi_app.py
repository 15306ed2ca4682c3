"""A FastAPI webhook that keeps what it receives and can be scripted to fail or ask for a token."""

from __future__ import annotations

from fastapi import FastAPI, Form, Request, Response

app = FastAPI()
received: list[bytes] = []
authorizations: list[str] = []
statuses: list[int] = []  # answers to use, in order, before falling back to 200
tokens_issued: list[str] = []


@app.post("/webhook")
async def webhook(request: Request) -> Response:
    """Record the raw body and answer the next scripted status."""
    received.append(await request.body())
    authorizations.append(request.headers.get("authorization", ""))
    status = statuses.pop(0) if statuses else 200
    return Response('{"ok":true}', status_code=status, media_type="application/json")


@app.post("/token")
async def token(client_id: str = Form(), client_secret: str = Form()) -> dict[str, object]:
    """Issue a new bearer token to the one known client."""
    if (client_id, client_secret) != ("brand", "s3cr3t-XYZ"):
        return {"error": "invalid_client"}
    tokens_issued.append(f"tok-{len(tokens_issued) + 1}-QWERTY")
    return {"access_token": tokens_issued[-1], "expires_in": 3600}
