"""Meta-direct mode: Meta's webhook envelope, X-Hub-Signature-256 and the GET handshake."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from simulator.errors import WasimError, named
from simulator.wire import to_wire

Envelope = Literal["kaleyra", "meta"]
ENVELOPES: tuple[Envelope, ...] = ("kaleyra", "meta")
# How a request is signed: properly, or one of the ways a handler must refuse.
SIGNATURES = ("valid", "missing", "wrong-secret", "reserialized", "bad-format")
SIGNATURE_HEADER = "X-Hub-Signature-256"
META_USER_AGENT = "facebookexternalua"  # what Meta's webhook requests carry
MAX_SECRET = 1024  # characters; an app secret is 32 hex characters


def wrap(body: bytes, where: str | None = None) -> bytes:
    """A Kaleyra callback body as Meta would POST it; a body already in Meta's envelope as is.

    Kaleyra's `meta_object` is one element of Meta's `entry[].changes[]`, and the WABA id moves
    from `extra_info.waba_id` back to `entry[].id`. Serialized with the same wire encoder, so
    the value object keeps its bytes (escaped `/`, lowercase `\\u` escapes).
    """
    try:
        document = json.loads(body)
    except ValueError:
        raise WasimError("the body is not JSON, so it cannot go in Meta's envelope",
                         where=where, field="envelope",
                         hint=f"Use {named('envelope')} kaleyra for raw bodies.") from None
    if is_meta_document(document):
        return body
    if not isinstance(document, dict) or not isinstance(document.get("meta_object"), dict):
        raise WasimError("the body has no meta_object to put in Meta's envelope", where=where,
                         field="envelope",
                         hint="Meta's envelope wraps Kaleyra callbacks (meta_object + "
                              f"extra_info); use {named('envelope')} kaleyra for other bodies.")
    extra = document.get("extra_info")
    waba_id = extra.get("waba_id", "") if isinstance(extra, dict) else ""
    return to_wire({"object": "whatsapp_business_account",
                    "entry": [{"id": str(waba_id), "changes": [document["meta_object"]]}]})


BATCH_SHAPES = ("messages", "changes", "entries")
MAX_BATCH = 100  # Meta batches a handful; a hundred is already far past what handlers meet


def batch(bodies: list[bytes], shape: str = "messages", where: str | None = None) -> bytes:
    """Several Kaleyra callbacks as one body, the ways Meta batches: every message (and its
    contact) in one value object (`messages`, still Kaleyra's envelope), one `changes` item
    each (`changes`), or one `entry` item each (`entries`; both Meta's envelope)."""
    documents = []
    for body in bodies:
        document = json.loads(body)
        if not isinstance(document, dict) or not isinstance(document.get("meta_object"), dict):
            raise WasimError("only Kaleyra callbacks (meta_object + extra_info) can be batched",
                             where=where, field="batch")
        documents.append(document)
    if len(documents) == 1:
        return bodies[0]
    first = documents[0]
    if shape == "messages":
        value = dict(first["meta_object"].get("value") or {})
        contacts: list[Any] = []
        messages: list[Any] = []
        for document in documents:
            inner = document["meta_object"].get("value") or {}
            contacts += [c for c in inner.get("contacts") or [] if c not in contacts]
            messages += inner.get("messages") or []
        if "contacts" in value:
            value["contacts"] = contacts
        value["messages"] = messages
        meta_object = {**first["meta_object"], "value": value}
        return to_wire({**first, "meta_object": meta_object})

    def waba(document: dict[str, Any]) -> str:
        extra = document.get("extra_info")
        return str(extra.get("waba_id", "")) if isinstance(extra, dict) else ""

    if shape == "changes":
        entries = [{"id": waba(first), "changes": [d["meta_object"] for d in documents]}]
    elif shape == "entries":
        entries = [{"id": waba(d), "changes": [d["meta_object"]]} for d in documents]
    else:
        raise WasimError(f"unknown batch shape {shape[:40]!r}", where=where, field="batch",
                         hint=f"Use one of {', '.join(BATCH_SHAPES)}.")
    return to_wire({"object": "whatsapp_business_account", "entry": entries})


def is_meta_document(document: Any) -> bool:
    """Whether a parsed body is in Meta's envelope (`object` + `entry`)."""
    return isinstance(document, dict) and document.get("object") == "whatsapp_business_account" \
        and isinstance(document.get("entry"), list)


def values_of(document: Any) -> list[Any]:
    """Every value object in a parsed body of either envelope (Meta's may carry several)."""
    if is_meta_document(document):
        return [change.get("value") for entry in document["entry"] if isinstance(entry, dict)
                for change in entry.get("changes") or [] if isinstance(change, dict)]
    if isinstance(document, dict) and isinstance(document.get("meta_object"), dict):
        return [document["meta_object"].get("value")]
    return []


def sign(secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 value of `body` under the app secret: `sha256=<hex>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_for(secret: str | None, body: bytes, mode: str = "valid") -> str | None:
    """The signature header value to send for `body` in `mode` (None: send no header)."""
    if mode == "missing" or secret is None:
        return None
    if mode == "wrong-secret":
        # Another secret of the same shape: only the key differs, never the bytes.
        return sign(hashlib.sha256(b"wasim-wrong:" + secret.encode()).hexdigest()[:32], body)
    if mode == "reserialized":
        # What a relay or a careless verifier signs: Python's default json.dumps of the same
        # document (spaces after , and :, `/` unescaped). Never equal to the wire bytes.
        try:
            again = json.dumps(json.loads(body)).encode()
        except ValueError:
            again = body + b" "
        return sign(secret, again)
    if mode == "bad-format":
        # The legacy X-Hub-Signature's format (HMAC-SHA1, `sha1=`) in the SHA-256 header:
        # right secret, right bytes, wrong algorithm. (A bare hex digest would not do: pywa
        # and others strip an optional `sha256=` and accept it.)
        return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return sign(secret, body)


def check_signature(secret: str, header: str | None, body: bytes) -> str | None:
    """Why `header` does not sign `body` under `secret`, or None when it does."""
    if header is None:
        return f"no {SIGNATURE_HEADER} header"
    if not header.startswith("sha256="):
        return f"{SIGNATURE_HEADER} is not sha256=<hex>: {header.split('=', 1)[0][:16]!r}="
    if not hmac.compare_digest(header.encode("latin-1", "replace"), sign(secret, body).encode()):
        return f"{SIGNATURE_HEADER} does not match the body (wrong secret or changed bytes)"
    return None


def parse_envelope(value: Any, where: str) -> Envelope:
    """Read `--envelope` / `envelope:`."""
    text = str(value).strip().lower()
    if text == "kaleyra":
        return "kaleyra"
    if text == "meta":
        return "meta"
    raise WasimError(f"unknown envelope {str(value)[:40]!r}", where=where,
                     hint="Use kaleyra (Kaleyra's callback, the default) or meta (Meta's "
                          "webhook: object, entry, changes).")


def parse_signature(value: Any, where: str) -> str:
    """Read `--signature` / `signature:`."""
    text = str(value).strip().lower()
    if text not in SIGNATURES:
        raise WasimError(f"unknown signature case {str(value)[:40]!r}", where=where,
                         hint=f"Use one of {', '.join(SIGNATURES)}.")
    return text


def check_secret(value: Any, where: str) -> str:
    """An app secret that can key an HMAC; errors never show it."""
    if not isinstance(value, str) or not value or len(value) > MAX_SECRET \
            or not value.isprintable():
        raise WasimError("the app secret must be 1 to 1024 printable characters", where=where,
                         hint="It is the App Secret of your Meta app (App settings > Basic).")
    return value


# --- the verification handshake --------------------------------------------------------------


@dataclass(frozen=True)
class HandshakeCheck:
    """One GET of the handshake and what came of it."""

    name: str  # "right token" / "wrong token"
    status: int | None
    echoed: bool  # the answer body was the challenge, verbatim
    passed: bool
    error: str | None = None

    def line(self) -> str:
        """One line for people."""
        got = f"HTTP {self.status}" if self.status is not None else (self.error or "no answer")
        echo = "echoed the challenge" if self.echoed else "did not echo the challenge"
        return f"{'ok  ' if self.passed else 'FAIL'} {self.name}: {got}, {echo}"


def new_challenge() -> str:
    """A random challenge like Meta's (digits)."""
    return str(secrets.randbelow(9 * 10**9) + 10**9)


def handshake_params(token: str, challenge: str) -> dict[str, str]:
    """The query Meta sends when a webhook is registered."""
    return {"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": challenge}


def wrong_token(token: str) -> str:
    """A token that is certainly not `token`."""
    return "wasim-wrong-" + hashlib.sha256(token.encode()).hexdigest()[:8]


def judge(name: str, status: int | None, body: bytes, challenge: str, *, right: bool,
          error: str | None = None) -> HandshakeCheck:
    """Whether an answer is right: 200 + the challenge for the token, refused otherwise."""
    echoed = status is not None and body.strip() == challenge.encode()
    passed = (status == 200 and echoed) if right else not (status == 200 and echoed)
    if not right and status is None:
        passed = False  # no answer is not a refusal: the handler is broken or away
    return HandshakeCheck(name, status, echoed, passed, error)


@dataclass(frozen=True)
class Handshake:
    """Both GETs of the handshake: the right token answered, a wrong one refused."""

    url: str
    checks: tuple[HandshakeCheck, ...]

    @property
    def passed(self) -> bool:
        """Whether the handler echoed the challenge for its token and refused a wrong one."""
        return all(check.passed for check in self.checks)

    @property
    def unreachable(self) -> bool:
        """Whether no GET got any answer because nothing is listening."""
        return all(check.error == "connection refused: nothing is listening"
                   for check in self.checks)

    def lines(self) -> list[str]:
        """One line per check, for people."""
        return [check.line() for check in self.checks]


HANDSHAKE_BODY_LIMIT = 4096  # bytes of an answer read; a challenge is ten digits


async def verify_handshake(options: Any, token: str, challenge: str | None = None, *,
                           client: Any = None) -> Handshake:
    """Meta's GET handshake against `options.target` (a DeliveryOptions): loopback-guarded
    like every delivery, bounded by its timeout; no signature, as Meta sends none.
    `client` is the runner's seam (an httpx.AsyncClient a test answers); None: a real one."""
    import asyncio
    import contextlib

    import httpx

    from simulator.transports import (
        LifespanASGITransport,
        client_for,
        read_bounded,
        transport_for,
    )

    if not token or len(token) > MAX_SECRET or not token.isprintable():
        raise WasimError("the verify token must be 1 to 1024 printable characters",
                         field="verify_token")
    challenge = challenge or new_challenge()
    if not challenge.isprintable() or len(challenge) > 256:
        raise WasimError("the challenge must be at most 256 printable characters",
                         field="challenge")
    target = options.target
    transport = None if client is not None else transport_for(
        target, options.timeout, options.allow_remote, options.resolver, options.remote_hosts)
    checks = []
    async with contextlib.nullcontext(client) if client is not None else client_for(
            target, options.timeout, transport) as client:
        if isinstance(transport, LifespanASGITransport):
            await transport.start_lifespan()
        for name, sent, right in (("right token", token, True),
                                  ("wrong token", wrong_token(token), False)):
            request = client.build_request(
                "GET", target.url, params=handshake_params(sent, challenge),
                headers={"User-Agent": META_USER_AGENT})

            async def exchange(request: httpx.Request = request) -> tuple[int, bytes]:
                response = await client.send(request, stream=True)
                try:
                    body, _ = await read_bounded(response, HANDSHAKE_BODY_LIMIT)
                finally:
                    await response.aclose()
                return response.status_code, body

            try:
                status, body = await asyncio.wait_for(exchange(), options.timeout)
            except (TimeoutError, httpx.TimeoutException):
                checks.append(judge(name, None, b"", challenge, right=right,
                                    error=f"no answer within {options.timeout:g} s"))
                continue
            except httpx.ConnectError:
                checks.append(judge(name, None, b"", challenge, right=right,
                                    error="connection refused: nothing is listening"))
                continue
            except httpx.TransportError as exc:
                checks.append(judge(name, None, b"", challenge, right=right,
                                    error=f"{type(exc).__name__}"))
                continue
            checks.append(judge(name, status, body, challenge, right=right))
    return Handshake(target.label, tuple(checks))
