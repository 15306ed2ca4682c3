"""`wasim import`: a capture full of personal data becomes a scenario with none of it, that
runs and reproduces the capture's kinds, users per country, labels, redeliveries and threads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner

from simulator.anonymise import national_part, region_of
from simulator.capture import read_captures
from simulator.cli import cli
from simulator.errors import WasimError
from simulator.wamid import decode_wamid, encode_wamid

BUSINESS = "918068177179"
PNID, WABA = "104605889412733", "102290129340398"
# (number, profile name, BSUID or "", platform hex id of their first message)
PEOPLE = {
    "IN": ("919876543210", "Priyanka Venkataraman", "IN.1410018717833190"),
    "BR": ("5511987654321", "João Conceição", "BR.88172635441239"),
    "DE": ("4915123456789", "Jürgen Müller-Lüdenscheidt", ""),
    "AE": ("971501234567", "محمد العتيبي", "AE.93817264500017"),
}
HEX = {"IN": "025B5D36FC16D27C66256180B47D3646", "BR": "3A5F0C2B11D4E6A7B8C9",
       "DE": "3EB0A1B2C3D4E5F6A7B8C9", "AE": "7D3646025B5D36FC16D27C66256180B4"}
TEMPLATE_HEX = {"IN": "A1B2C3D4E5F6A7B8C9", "BR": "B1B2C3D4E5F6A7B8C9",
                "DE": "C1B2C3D4E5F6A7B8C9", "AE": "D1B2C3D4E5F6A7B8C9"}
REPLY_TO = {"IN": "48c38d78-4ec5-4b1e-abee-03aa11bb6c85",
            "BR": "5f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"}
TEXTS = {
    "IN": "My email is priya.venkat@gmail.com, order #ORD-558812, call me on +91 98765 43210",
    "AE": "مرحبا، طلبي رقم 99812 لم يصل بعد، بريدي mohd.otaibi@outlook.ae",
    "DE": "Bitte an Jürgen Müller, Hauptstraße 12, 10115 Berlin liefern",
}
NEW_NUMBER = "919812345678"
CAPTION = "Parcel for Priyanka at 12 MG Road, Bengaluru"
MEDIA_URL = "https://media.kaleyra.io/whatsapp/102290129340398/1234567890123456.jpg"
PLACE = {"latitude": -23.5613458, "longitude": -46.6565712, "name": "Casa da Conceição",
         "address": "Rua Augusta 1500, São Paulo", "url": "https://maps.example.org/casa-joao"}


def wamid(country: str, *, business: bool = False, serial: int = 0) -> str:
    """A real-looking wamid of the person from `country` (theirs, or the brand's to them)."""
    number = PEOPLE[country][0]
    hex_id = TEMPLATE_HEX[country] if business else HEX[country]
    if serial:
        hex_id = f"{serial:X}" + hex_id[len(f'{serial:X}'):]
    return encode_wamid(number, business, hex_id)


def contact(country: str, *, profile: bool = True) -> dict[str, Any]:
    number, name, bsuid = PEOPLE[country]
    entry: dict[str, Any] = {"profile": {"name": name}} if profile else {}
    entry["wa_id"] = number
    if bsuid:
        entry["user_id"] = bsuid
        entry["country_code"] = country
    return entry


def message(country: str, serial: int, kind: str, body: dict[str, Any], *,
            context: bool = False) -> dict[str, Any]:
    number, _, bsuid = PEOPLE[country]
    item: dict[str, Any] = {}
    if context:
        item["context"] = {"from": BUSINESS, "id": wamid(country, business=True)}
    item["from"] = number
    if bsuid:
        item["from_user_id"] = bsuid
    item.update({"id": wamid(country, serial=serial), "timestamp": str(1779372805 + serial * 7),
                 "type": kind, **body})
    return item


def kaleyra(country: str, item: dict[str, Any], *, trace: str, media_url: str = "",
            reply_to: str = "") -> dict[str, Any]:
    return {"meta_object": {"value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": BUSINESS, "phone_number_id": PNID},
        "contacts": [contact(country)], "messages": [item]}, "field": "messages"},
        "extra_info": {"media_url": media_url, "ref": "cust-Priyanka-0042",
                       "ref1": "summer sale campaign", "ref2": "crm:919876543210",
                       "reply_to": reply_to, "trace_id": trace, "waba_id": WABA}}


def kaleyra_status(country: str, status: str, serial: int, trace: str,
                   error: int | None = None) -> dict[str, Any]:
    number, _, bsuid = PEOPLE[country]
    item: dict[str, Any] = {"id": wamid(country, business=True), "status": status,
                            "timestamp": str(1779372700 + serial), "recipient_id": number}
    if bsuid:
        item["recipient_user_id"] = bsuid
    if error:
        item["errors"] = [{"code": error, "title": "Re-engagement message"}]
    return {"meta_object": {"value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": BUSINESS, "phone_number_id": PNID},
        "contacts": [contact(country, profile=False)], "statuses": [item]},
        "field": "messages"},
        "extra_info": {"trace_id": trace, "message_id": wamid(country, business=True),
                       "waba_id": WABA, "ref": "", "ref1": "", "ref2": "",
                       "enable_url_tracking_body": False, "enable_url_tracking_button": False},
        "status": status, "message_id": wamid(country, business=True)}


def meta(countries: list[str], items: list[dict[str, Any]], *,
         statuses: bool = False) -> dict[str, Any]:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": BUSINESS, "phone_number_id": PNID},
        "contacts": [contact(c, profile=not statuses) for c in countries]}
    value["statuses" if statuses else "messages"] = items
    return {"object": "whatsapp_business_account",
            "entry": [{"id": WABA, "changes": [{"value": value, "field": "messages"}]}]}


def php_json(document: Any) -> str:
    """PHP's json_encode: \\uXXXX for non-ASCII, `\\/` for `/`, compact."""
    return json.dumps(document, separators=(",", ":")).replace("/", "\\/")


def raw_json(document: Any) -> str:
    """A logger that writes raw UTF-8, unescaped `/`, with spaces."""
    return json.dumps(document, ensure_ascii=False)


def uuid(n: int) -> str:
    return f"{n:08x}-1111-4222-8333-{n:012x}"


TAP_IN = kaleyra("IN", message("IN", 3, "button", {"button": {
    "payload": "SHOP_NOW", "text": "Shop now"}}, context=True), trace=uuid(3),
    reply_to=REPLY_TO["IN"])
BATCH = meta(["DE", "AE"], [
    message("DE", 11, "interactive", {"interactive": {"type": "list_reply", "list_reply": {
        "id": "row_2", "title": "Sandals", "description": "Summer collection"}}}, context=True),
    message("AE", 12, "text", {"text": {"body": TEXTS["AE"]}})])


def write_capture(folder: Path) -> list[Path]:
    """Three files: Kaleyra bodies logged PHP-style, Meta envelopes logged as raw UTF-8 in a
    JSON array, and wasim's own history."""
    kaleyra_lines = [
        kaleyra_status("IN", "sent", 1, uuid(1)),
        kaleyra_status("IN", "delivered", 2, uuid(2)),
        TAP_IN,
        TAP_IN,  # redelivered: the same body twice
        kaleyra("IN", message("IN", 5, "text", {"text": {"body": TEXTS["IN"]}}), trace=uuid(5)),
        kaleyra("IN", message("IN", 6, "image", {"image": {
            "caption": CAPTION, "mime_type": "image/jpeg",
            "sha256": "Qm9va2luZ1Bob3RvT2ZQcml5YW5rYQ==", "id": "1234567890123456"}}),
            trace=uuid(6), media_url=MEDIA_URL),
        kaleyra("IN", message("IN", 7, "reaction", {"reaction": {
            "message_id": wamid("IN", business=True), "emoji": "\U0001f44d"}}), trace=uuid(7)),
        kaleyra("BR", message("BR", 8, "button", {"button": {
            "payload": "STOP_PROMO", "text": "Stop promotions"}}, context=True), trace=uuid(8),
            reply_to=REPLY_TO["BR"]),
        kaleyra("BR", message("BR", 9, "location", {"location": PLACE}), trace=uuid(9)),
        kaleyra_status("BR", "read", 10, uuid(10)),
        kaleyra_status("DE", "failed", 11, uuid(11), error=131047),
        kaleyra("BR", message("BR", 20, "video", {"video": {
            "caption": "Vídeo do João na Conceição", "mime_type": "video/mp4",
            "sha256": "VmlkZW9Eb0pvYW9OYUNhc2E=", "id": "4455667788990011"}}),
            trace=uuid(20), media_url=MEDIA_URL.replace("1234567890123456", "4455667788990011")),
        kaleyra("IN", message("IN", 21, "sticker", {"sticker": {
            "mime_type": "image/webp", "sha256": "U3RpY2tlck9mUHJpeWFua2E=",
            "id": "3344556677889900", "animated": False}}), trace=uuid(21)),
        kaleyra("BR", message("BR", 22, "unsupported", {"errors": [{
            "code": 131051, "title": "Message type unknown"}]}), trace=uuid(22)),
        kaleyra_status("AE", "not-sent", 23, uuid(23)),
    ]
    first = folder / "kaleyra.jsonl"
    first.write_text("".join(php_json(d) + "\n" for d in kaleyra_lines), encoding="utf-8")
    meta_items = [
        BATCH,
        meta(["AE"], [message("AE", 13, "audio", {"audio": {
            "mime_type": "audio/ogg; codecs=opus", "sha256": "dm9pY2Vub3RlT2ZNb2hk",
            "id": "9988776655443322", "voice": True}})]),
        meta(["DE"], [message("DE", 14, "document", {"document": {
            "caption": TEXTS["DE"], "filename": "Rechnung-Jürgen-Müller.pdf",
            "mime_type": "application/pdf", "sha256": "UmVjaG51bmdKdWVyZ2Vu",
            "id": "5566778899001122"}})]),
        meta(["AE"], [message("AE", 15, "contacts", {"contacts": [{
            "name": {"first_name": "Fatima", "formatted_name": "Fatima Al Zahra",
                     "last_name": "Al Zahra"},
            "phones": [{"phone": "+971 55 123 4567", "type": "MOBILE",
                        "wa_id": "971551234567"}],
            "emails": [{"email": "fatima.zahra@example.ae", "type": "HOME"}]}]})]),
        BATCH,  # the batch redelivered
        meta(["AE"], [{"id": wamid("AE", business=True), "status": "delivered",
                       "timestamp": "1779372900", "recipient_id": PEOPLE["AE"][0],
                       "recipient_user_id": PEOPLE["AE"][2]}], statuses=True),
        meta(["DE"], [message("DE", 17, "interactive", {"interactive": {
            "type": "button_reply", "button_reply": {"id": "talk_agent",
                                                     "title": "Talk to us"}}},
            context=True)]),
        meta(["DE"], [message("DE", 18, "order", {"order": {
            "catalog_id": "778899665544", "text": "Bitte schnell, Jürgen",
            "product_items": [{"product_retailer_id": "SKU-1", "quantity": 2,
                               "item_price": 49.5, "currency": "EUR"}]}})]),
        meta(["IN"], [message("IN", 24, "system", {"system": {
            "body": f"User {PEOPLE['IN'][1]} changed from {PEOPLE['IN'][0]} to {NEW_NUMBER}",
            "new_wa_id": NEW_NUMBER, "type": "user_changed_number"}})]),
    ]
    second = folder / "meta.json"
    second.write_text("[\n" + ",\n".join(raw_json(d) for d in meta_items) + "\n]\n",
                      encoding="utf-8")
    history_body = php_json(kaleyra("AE", message("AE", 19, "button", {"button": {
        "payload": "SHOP_NOW", "text": "Shop now"}}, context=True), trace=uuid(19)))
    records = [{"v": 1, "kind": "sent", "at": 1779372600.0, "version": "v2",
                "business": BUSINESS, "to": PEOPLE["AE"][0], "type": "template",
                "text": "", "template": "summer_sale_2026", "buttons": [], "context_id": "",
                "message_id": "", "wamid": "", "to_kind": "number", "error": 0},
               {"v": 1, "event": "evt_1", "delivery": "d1", "attempt": 1, "final": True,
                "at": 1779373000.5, "outcome": "delivered", "body": history_body},
               {"v": 1, "event": "evt_1", "delivery": "d1", "attempt": 2, "final": True,
                "at": 1779373001.5, "outcome": "delivered", "body": history_body}]
    third = folder / "history.jsonl"
    third.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return [first, second, third]


def originals() -> set[str]:
    """Every personal value in the capture, and the national part of every number."""
    values: set[str] = {BUSINESS, PNID, WABA, CAPTION, MEDIA_URL, "1234567890123456",
                        "9988776655443322", "5566778899001122", "Rechnung-Jürgen-Müller.pdf",
                        "Fatima Al Zahra", "Al Zahra", "971551234567", "+971 55 123 4567",
                        "fatima.zahra@example.ae", "priya.venkat@gmail.com",
                        "mohd.otaibi@outlook.ae", "ORD-558812", "99812", "98765 43210",
                        "cust-Priyanka-0042", "crm:919876543210", "778899665544",
                        "Bitte schnell, Jürgen", "Hauptstraße 12",
                        PLACE["name"], PLACE["address"], PLACE["url"],
                        repr(PLACE["latitude"]), repr(PLACE["longitude"]), "-23.5613",
                        "-46.6565", *REPLY_TO.values(), *TEXTS.values(),
                        "Qm9va2luZ1Bob3RvT2ZQcml5YW5rYQ==", "dm9pY2Vub3RlT2ZNb2hk"}
    for country, (number, name, bsuid) in PEOPLE.items():
        values |= {number, national_part(number), name, *name.replace("-", " ").split(),
                   wamid(country, business=True), TEMPLATE_HEX[country], HEX[country]}
        if bsuid:
            values.add(bsuid)
            values.add(bsuid.split(".")[1])
    values |= {national_part(BUSINESS), national_part("971551234567"), NEW_NUMBER,
               national_part(NEW_NUMBER)}
    values |= {uuid(n) for n in range(1, 30)}
    values |= {"4455667788990011", "3344556677889900", "VmlkZW9Eb0pvYW9OYUNhc2E=",
               "U3RpY2tlck9mUHJpeWFua2E=", "Vídeo do João na Conceição"}
    for country in PEOPLE:
        for serial in range(1, 30):
            values.add(wamid(country, serial=serial))
    return {v for v in values if len(v) >= 4}


@pytest.fixture
def capture(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "capture"
    folder.mkdir()
    return write_capture(folder)


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def imported(capture: list[Path], out: Path, *extra: str) -> Any:
    result = invoke("import", *map(str, capture), "--out", str(out), *extra)
    assert result.exit_code == 0, result.output
    return result


def test_no_original_value_survives_in_any_output_in_any_encoding(
        capture: list[Path], tmp_path: Path) -> None:
    out_dir = tmp_path / "scenarios"
    out_dir.mkdir()
    report = tmp_path / "report.txt"
    result = imported(capture, out_dir / "shop.yaml", "--seed", "7", "--report", str(report))
    files = [*out_dir.iterdir(), report]
    assert {f.name for f in out_dir.iterdir()} == {"shop.yaml", "shop.order.json.j2",
                                                   "shop.system.json.j2"}
    texts = {f.name: f.read_text(encoding="utf-8") for f in files}
    texts["stdout"] = result.stdout
    secret = originals()
    assert len(secret) > 100
    for name, text in texts.items():
        for value in secret:
            escaped = json.dumps(value)[1:-1]  # \u00e3, as json_encode and Python write it
            forms = {value, escaped, json.dumps(value, ensure_ascii=False)[1:-1],
                     escaped.replace("/", "\\/"), value.replace("/", "\\/")}  # PHP's \/
            for form in forms:
                assert form not in text, f"{value!r} ({form!r}) survives in {name}"
    scenario = texts["shop.yaml"]
    # The brand's values are kept: labels, payloads, row ids and titles, the template name.
    for kept in ("Shop now", "SHOP_NOW", "STOP_PROMO", "row_2", "Sandals", "talk_agent",
                 "summer_sale_2026", "131047"):
        assert kept in scenario
    assert "duplicate: true" in scenario
    assert "replaced" in texts["report.txt"] and "wamid" in texts["report.txt"]


def test_keep_text_keeps_words_but_not_emails_numbers_or_names(
        capture: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "kept.yaml"
    imported(capture, out, "--keep-text")
    text = out.read_text(encoding="utf-8")
    assert "My email is" in text and "call me on" in text
    for value in ("priya.venkat@gmail.com", "558812", "98765 43210", "99812",
                  "mohd.otaibi@outlook.ae", "Jürgen", "Müller", "Priyanka"):
        assert value not in text
    plain = tmp_path / "plain.jsonl"
    plain.write_text(php_json(kaleyra("IN", message("IN", 5, "text", {"text": {
        "body": "Thanks a lot, see you soon"}}), trace=uuid(5))) + "\n", encoding="utf-8")
    imported([plain], tmp_path / "plain.yaml", "--keep-text")
    assert "Thanks a lot, see you soon" in (tmp_path / "plain.yaml").read_text(encoding="utf-8")


def test_the_same_capture_and_seed_give_identical_files(capture: list[Path],
                                                        tmp_path: Path) -> None:
    outputs = []
    for run in ("a", "b", "c"):
        folder = tmp_path / run
        folder.mkdir()
        imported(capture, folder / "s.yaml", "--seed", "3" if run != "c" else "4")
        outputs.append({f.name: f.read_bytes() for f in folder.iterdir()})
    assert outputs[0] == outputs[1]
    assert outputs[0]["s.yaml"] != outputs[2]["s.yaml"]


def test_the_imported_scenario_passes_dry_run(capture: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "dry.yaml"
    imported(capture, out)
    result = invoke("run", str(out), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "payload(s) valid" in result.output


class _Recorder(BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        type(self).bodies.append(self.rfile.read(length))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[bytes]]]:
    bodies: list[bytes] = []
    handler = type("Recorder", (_Recorder,), {"bodies": bodies})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/webhook", bodies
    finally:
        server.shutdown()
        server.server_close()


def traffic(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """What a run must reproduce: kinds, users per country, labels and payloads, copies and
    threads (per user: how many callbacks answer a message, and how many messages)."""
    from simulator.capture import _callbacks_of_body

    kinds: Counter[str] = Counter()
    labels: Counter[tuple[str, str]] = Counter()
    users: dict[str, str] = {}
    seen: Counter[str] = Counter()
    threads: dict[str, Counter[str]] = {}
    for document in documents:
        for callback in _callbacks_of_body(document, "-", None):
            kind = callback.kind()
            seen[callback.fingerprint] += 1
            if seen[callback.fingerprint] > 1:
                kinds[f"copy of {kind}"] += 1
                continue
            kinds[kind] += 1
            message, status = callback.message, callback.status
            number = message.get("from") or status.get("recipient_id")
            users[number] = region_of(number)
            button = message.get("button") or message.get("interactive", {}).get(
                message.get("interactive", {}).get("type", ""), {})
            if button:
                labels[(str(button.get("text") or button.get("title")),
                        str(button.get("payload") or button.get("id")))] += 1
            target = (message.get("context", {}).get("id")
                      or message.get("reaction", {}).get("message_id") or status.get("id"))
            if target:
                decoded = decode_wamid(target)
                assert decoded.from_business and decoded.customer == number
                threads.setdefault(number, Counter())[target] += 1
    per_country = Counter(users.values())
    shapes = sorted((users[n], sorted(c.values())) for n, c in threads.items())
    return {"kinds": kinds, "labels": labels, "users": per_country, "threads": shapes}


def test_a_run_of_the_import_reproduces_the_capture(
        capture: list[Path], tmp_path: Path, recorder: tuple[str, list[bytes]]) -> None:
    out = tmp_path / "replayed.yaml"
    imported(capture, out, "--seed", "11")
    url, bodies = recorder
    result = invoke("run", str(out), "--url", url, "--fast", "--history",
                    str(tmp_path / "h.jsonl"))
    assert result.exit_code == 0, result.output
    run = traffic([json.loads(b) for b in bodies])
    captured_documents: list[dict[str, Any]] = []
    for path in capture:
        for callback in read_captures([path]).callbacks:
            body: dict[str, Any] = {"meta_object": {"value": callback.value,
                                                    "field": "messages"}}
            captured_documents.append(body)
    # The history's retry (attempt 2) is not a callback of its own: read_captures drops it.
    captured = traffic(captured_documents)
    # The order message no kind renders is sent as `unsupported` (its shape is a template).
    for shape in ("order", "system"):
        captured["kinds"]["unsupported"] += captured["kinds"].pop(shape)
    assert run["kinds"] == captured["kinds"]
    assert run["users"] == captured["users"] == Counter({"IN": 1, "BR": 1, "DE": 1, "AE": 1})
    assert run["labels"] == captured["labels"]
    assert run["threads"] == captured["threads"]


@pytest.mark.parametrize(("content", "line", "what"), [
    ('{"meta_object": {"value": {"messages": []}}}\nnot json\n', 1, "not a callback"),
    ('\n\n{"x": 1', 3, "not JSON"),
    ('{"entry": [{"changes": [{"value": {"statuses": [{"id": "a"}]}}]}]}\n[1, 2]\n', 2,
     "not a callback"),
    ('[\n  {"meta_object": {"value": {"messages": [{}]}}},\n  {"nothing": 1}\n]\n', 3,
     "not a callback"),
    ('[\n' + json.dumps(TAP_IN) + '\n' + json.dumps(TAP_IN) + '\n]\n', 3, "expected , or ]"),
    ('[' + json.dumps(TAP_IN) + ',\n\n', 3, "not closed"),
], ids=["no messages", "not JSON", "a list of numbers", "array element", "array comma",
        "array not closed"])
def test_bad_input_is_one_line_with_file_and_line_and_nothing_written(
        tmp_path: Path, content: str, line: int, what: str) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content, encoding="utf-8")
    out = tmp_path / "out.yaml"
    done = subprocess.run([sys.executable, "-m", "simulator", "import", str(bad), "--out",
                           str(out)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NO_COLOR": "1"})
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"{bad}:{line}:" in done.stderr and what in done.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]


def test_caps_on_line_length_and_callbacks(tmp_path: Path) -> None:
    long_line = tmp_path / "long.jsonl"
    long_line.write_text(json.dumps(TAP_IN) + "\n" + "x" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(WasimError) as caught:
        read_captures([long_line], max_line=4096)
    assert caught.value.where == f"{long_line}:2" and "longer than" in caught.value.what
    many = tmp_path / "many.jsonl"
    many.write_text((json.dumps(TAP_IN) + "\n") * 20, encoding="utf-8")
    with pytest.raises(WasimError) as caught:
        read_captures([many], max_callbacks=10)
    assert caught.value.where == f"{many}:11" and "10 callbacks" in caught.value.what
    line = len(json.dumps(TAP_IN)) + 1
    with pytest.raises(WasimError) as caught:
        read_captures([long_line, many], max_total=line * 5 + 10)
    assert caught.value.where == f"{long_line}:2" and "in all" in caught.value.what
    with pytest.raises(WasimError) as caught:
        read_captures([many, many], max_total=line * 25)
    assert caught.value.where == f"{many}:6" and "in all" in caught.value.what


def test_never_writes_through_a_link(capture: list[Path], tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me", encoding="utf-8")
    link = tmp_path / "link.yaml"
    link.symlink_to(victim)
    result = invoke("import", *map(str, capture), "--out", str(link))
    assert result.exit_code == 2
    assert victim.read_text(encoding="utf-8") == "keep me" and link.is_symlink()


def test_a_fake_user_keeps_the_country_and_gets_a_valid_mobile(capture: list[Path],
                                                               tmp_path: Path) -> None:
    import phonenumbers
    import yaml

    out = tmp_path / "cast.yaml"
    imported(capture, out)
    users = yaml.safe_load(out.read_text(encoding="utf-8"))["cast"]["users"]
    assert len(users) == 4
    for user in users:
        number = phonenumbers.parse("+" + user["wa_id"])
        assert phonenumbers.is_valid_number(number)
        assert phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE
    countries = sorted(region_of(u["wa_id"]) for u in users)
    assert countries == ["AE", "BR", "DE", "IN"]
    arabic = next(u for u in users if region_of(u["wa_id"]) == "AE")
    assert any("\u0600" <= ch <= "\u06ff" for ch in arabic["name"])


def test_a_shape_no_kind_renders_becomes_a_working_template(capture: list[Path],
                                                            tmp_path: Path) -> None:
    from simulator.render import CallbackTemplate
    from simulator.taps import TapFactory, TapOptions

    imported(capture, tmp_path / "shop.yaml")
    template = CallbackTemplate(tmp_path / "shop.order.json.j2")
    tap = next(TapFactory(TapOptions(seed=1)).taps(1))
    document = template.document(tap)
    message = document["meta_object"]["value"]["messages"][0]
    assert message["type"] == "order" and message["from"] == tap.user.wa_id
    assert message["id"] == tap.message_id
    assert message["order"]["product_items"][0]["quantity"] == 2


def test_users_of_countries_wasim_does_not_draw_still_run(
        tmp_path: Path, recorder: tuple[str, list[bytes]]) -> None:
    """An Israeli user (and business) beside an Indian one: each keeps their country, the
    run gives each a BSUID of their own number's country, and the report says so."""
    number, bsuid, business = "972526111549", "IL.831795919964525", "97237654321"
    body = kaleyra("IN", message("IN", 1, "text", {"text": {"body": "shalom, Noa here"}}),
                   trace=uuid(1))
    value = body["meta_object"]["value"]
    value["contacts"] = [{"profile": {"name": "Noa Levi"}, "wa_id": number,
                          "user_id": bsuid, "country_code": "IL"}]
    value["metadata"]["display_phone_number"] = business
    value["messages"][0].update({"from": number, "from_user_id": bsuid,
                                 "id": encode_wamid(number, False, HEX["IN"])})
    indian = kaleyra("IN", message("IN", 2, "text", {"text": {"body": "namaste"}}),
                     trace=uuid(2))
    indian["meta_object"]["value"]["metadata"]["display_phone_number"] = business
    capture = tmp_path / "il.jsonl"
    capture.write_text(php_json(body) + "\n" + php_json(indian) + "\n", encoding="utf-8")
    out = tmp_path / "il.yaml"
    result = imported([capture], out)
    assert "users from countries wasim does not draw (IL): listed with a fake mobile of " \
           "their own country" in result.stdout
    assert "a business number of a country wasim does not draw (IL)" in result.stdout
    text = out.read_text(encoding="utf-8")
    for value_ in (number, "526111549", bsuid, "Noa", "Levi", "shalom", business,
                   national_part(business)):
        assert value_ not in text
    dry = invoke("run", str(out), "--dry-run")
    assert dry.exit_code == 0, dry.output
    import yaml

    document = yaml.safe_load(text)
    assert sorted(region_of(u["wa_id"]) for u in document["cast"]["users"]) == ["IL", "IN"]
    assert region_of(document["business"]["display_phone_number"]) == "IL"
    url, bodies = recorder
    run = invoke("run", str(out), "--url", url, "--fast", "--no-history")
    assert run.exit_code == 0, run.output
    countries = []
    for raw in bodies:
        value = json.loads(raw)["meta_object"]["value"]
        person, sent = value["contacts"][0], value["messages"][0]
        country = region_of(person["wa_id"])
        assert person["user_id"].startswith(f"{country}.") and sent["from_user_id"] == \
            person["user_id"] and person["country_code"] == country
        assert region_of(value["metadata"]["display_phone_number"]) == "IL"
        countries.append(country)
    assert sorted(countries) == ["IL", "IN"]


def test_a_payload_holding_a_number_is_caught_and_nothing_is_written(tmp_path: Path) -> None:
    body = kaleyra("IN", message("IN", 3, "button", {"button": {
        "payload": f"CALLBACK_{PEOPLE['IN'][0]}", "text": "Call me"}}, context=True),
        trace=uuid(3))
    capture = tmp_path / "c.jsonl"
    capture.write_text(php_json(body) + "\n", encoding="utf-8")
    out = tmp_path / "out.yaml"
    result = invoke("import", str(capture), "--out", str(out))
    assert result.exit_code == 1
    assert "wa_id" in result.output and "nothing was written" in result.output
    assert not out.exists()


def test_the_scan_catches_an_original_that_slips_through(
        capture: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from simulator.anonymise import Anonymiser

    careless = Anonymiser.text

    def keeps_captions(self: Anonymiser, real: str, field: str = "text") -> str:
        return real if field == "caption" else careless(self, real, field)

    monkeypatch.setattr(Anonymiser, "text", keeps_captions)
    out = tmp_path / "out.yaml"
    result = invoke("import", *map(str, capture), "--out", str(out))
    assert result.exit_code == 1 and "nothing was written" in result.output
    assert list(tmp_path.iterdir()) == [tmp_path / "capture"]


def test_a_wamid_is_re_encoded_for_the_fake_number_same_direction_length_platform() -> None:
    from simulator.anonymise import Anonymiser

    anon = Anonymiser(5)
    for country in PEOPLE:
        number = PEOPLE[country][0]
        fake_number = anon.number(number)
        for business in (False, True):
            real = wamid(country, business=business)
            fake = anon.wamid(real)
            before, after = decode_wamid(real), decode_wamid(fake)
            assert after.customer == fake_number != number
            assert after.from_business == business
            assert len(after.message_id) == len(before.message_id)
            platform = {"BR": "3A", "DE": "3EB0"}.get(country, "")  # iOS, web
            assert business or after.message_id.startswith(platform)
            assert after.message_id != before.message_id and len(fake) == len(real)
            assert anon.wamid(real) == fake  # one fake per original


def test_the_report_says_when_a_user_answered_several_messages(tmp_path: Path) -> None:
    first = kaleyra("IN", message("IN", 1, "button", {"button": {
        "payload": "SHOP_NOW", "text": "Shop now"}}, context=True), trace=uuid(1))
    second = json.loads(json.dumps(first))
    item = second["meta_object"]["value"]["messages"][0]
    item["context"]["id"] = wamid("IN", business=True, serial=9)
    item["id"] = wamid("IN", serial=2)
    capture = tmp_path / "two.jsonl"
    capture.write_text(php_json(first) + "\n" + php_json(second) + "\n", encoding="utf-8")
    result = imported([capture], tmp_path / "two.yaml")
    assert "users answering several of the brand's messages" in result.stdout


def test_a_capture_of_meta_envelopes_runs_as_meta_envelopes(
        tmp_path: Path, recorder: tuple[str, list[bytes]]) -> None:
    capture = tmp_path / "meta.jsonl"
    capture.write_text(raw_json(BATCH) + "\n", encoding="utf-8")
    out = tmp_path / "meta.yaml"
    imported([capture], out)
    assert "envelope: meta" in out.read_text(encoding="utf-8")
    url, bodies = recorder
    result = invoke("run", str(out), "--url", url, "--fast", "--no-history")
    assert result.exit_code == 0, result.output
    assert [json.loads(b)["object"] for b in bodies] == ["whatsapp_business_account"] * 2
    assert traffic([json.loads(b) for b in bodies])["kinds"] == Counter(
        {"list_reply": 1, "text": 1})


def test_brand_values_with_jinja_quotes_and_odd_characters_arrive_unchanged(
        tmp_path: Path, recorder: tuple[str, list[bytes]]) -> None:
    label, payload = "{{ 7*7 }} \"Buy\" {% raw %}#1", "PAY\u2028LOAD\n{#x#}\\u0041\t\u00e9"
    body = kaleyra("IN", message("IN", 1, "button", {"button": {
        "payload": payload, "text": label}}, context=True), trace=uuid(1))
    capture = tmp_path / "odd.jsonl"
    capture.write_text(php_json(body) + "\n", encoding="utf-8")
    out = tmp_path / "odd.yaml"
    imported([capture], out)
    url, bodies = recorder
    result = invoke("run", str(out), "--url", url, "--fast", "--no-history")
    assert result.exit_code == 0, result.output
    button = json.loads(bodies[0])["meta_object"]["value"]["messages"][0]["button"]
    assert button == {"payload": payload, "text": label}


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    yield path


def test_any_value_of_any_type_anywhere_is_imported_or_refused_in_one_line(
        tmp_path: Path) -> None:
    """Every node of every kind of callback replaced by values of other types: the import
    either succeeds (and its scan passes) or is a WasimError, never a traceback."""
    import random

    from simulator.importer import import_capture

    documents = [TAP_IN, BATCH, kaleyra_status("DE", "failed", 1, uuid(1), error=131047),
                 kaleyra("BR", message("BR", 9, "location", {"location": PLACE}),
                         trace=uuid(9))]
    odd_values: list[Any] = [None, 5, -1.5, True, "", "x" * 300, [], {}, [1, "a"],
                             {"id": "{{ x }}"}, "wamid.xyz", "\u202e\u0000"]
    rnd = random.Random(25)
    capture = tmp_path / "fuzz.jsonl"
    outcomes: Counter[str] = Counter()
    for document in documents:
        for path in list(_leaves(document)):
            if not path:
                continue
            mutated = json.loads(json.dumps(document))
            node = mutated
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = rnd.choice(odd_values)
            capture.write_text(json.dumps(mutated) + "\n", encoding="utf-8")
            try:
                import_capture([capture], "fuzz", seed=1)
                outcomes["imported"] += 1
            except WasimError as exc:
                assert "\n" not in exc.one_line()
                outcomes["refused"] += 1
    assert outcomes["imported"] > 50 and outcomes["refused"] > 5


def test_out_must_name_a_yaml_file_in_an_existing_folder(capture: list[Path],
                                                         tmp_path: Path) -> None:
    for out, what in ((tmp_path / "scenario.txt", "does not end in .yaml"),
                      (tmp_path / "missing" / "s.yaml", "no such folder")):
        result = invoke("import", *map(str, capture), "--out", str(out))
        assert result.exit_code == 2 and what in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["capture"]


def test_a_gzipped_log_is_read_and_a_gzip_bomb_stops_at_the_cap(capture: list[Path],
                                                                 tmp_path: Path) -> None:
    import gzip

    packed = tmp_path / "kaleyra.jsonl.gz"
    packed.write_bytes(gzip.compress(capture[0].read_bytes()))
    plain, unpacked = read_captures([capture[0]]), read_captures([packed])
    assert [c.fingerprint for c in plain.callbacks] == [c.fingerprint for c in
                                                        unpacked.callbacks]
    bomb = tmp_path / "bomb.jsonl.gz"
    bomb.write_bytes(gzip.compress(b"\n" * 5_000_000))  # 5 KB that inflate to 5 MB
    with pytest.raises(WasimError) as caught:
        read_captures([bomb], max_total=100_000)
    assert "in all" in caught.value.what
    damaged = tmp_path / "damaged.jsonl.gz"
    damaged.write_bytes(packed.read_bytes()[:40])
    with pytest.raises(WasimError) as caught:
        read_captures([damaged])
    assert "damaged" in caught.value.what and caught.value.where == str(damaged)


def test_replies_to_several_brand_messages_and_a_quote_keep_their_threads(
        tmp_path: Path, recorder: tuple[str, list[bytes]]) -> None:
    """One user taps two different template messages, reacts to the second and types a text
    quoting the first: the run gives each message its own fake wamid, and the quote the
    first's. An importer that threads every answer to one message, or drops the quote,
    fails here."""
    first, second = wamid("IN", business=True), wamid("IN", business=True, serial=9)
    quote = "About the first offer: is it still on? priya.venkat@gmail.com"
    tap_second = kaleyra("IN", message("IN", 2, "button", {"button": {
        "payload": "STOP_PROMO", "text": "Stop promotions"}}, context=True), trace=uuid(2))
    tap_second["meta_object"]["value"]["messages"][0]["context"]["id"] = second
    text = kaleyra("IN", message("IN", 4, "text", {"text": {"body": quote}}, context=True),
                   trace=uuid(4))
    react = kaleyra("IN", message("IN", 5, "reaction", {"reaction": {
        "message_id": second, "emoji": "\u2764"}}), trace=uuid(5))
    other = kaleyra("BR", message("BR", 6, "button", {"button": {
        "payload": "SHOP_NOW", "text": "Shop now"}}, context=True), trace=uuid(6))
    lines = [kaleyra_status("IN", "read", 1, uuid(1)), TAP_IN, tap_second, text, react, other]
    capture = tmp_path / "threads.jsonl"
    capture.write_text("".join(php_json(d) + "\n" for d in lines), encoding="utf-8")
    out = tmp_path / "threads.yaml"
    result = imported([capture], out, "--seed", "2")
    scenario = out.read_text(encoding="utf-8")
    secret = originals() | {first, second, quote}
    for name, output in (("scenario", scenario), ("report", result.stdout)):
        for value in secret:
            assert value not in output and json.dumps(value)[1:-1] not in output, \
                f"{value!r} survives in the {name}"
    assert "users answering several of the brand's messages" in result.stdout
    dry = invoke("run", str(out), "--dry-run")
    assert dry.exit_code == 0, dry.output
    url, bodies = recorder
    run = invoke("run", str(out), "--url", url, "--fast", "--no-history")
    assert run.exit_code == 0, run.output
    documents = [json.loads(b) for b in bodies]
    items = [d["meta_object"]["value"].get("messages", d["meta_object"]["value"].get(
        "statuses"))[0] for d in documents]
    asha = [i for i in items if region_of(i.get("from") or i.get("recipient_id")) == "IN"]
    # Deliveries of a fast run may overlap: told apart by what they are, not their order.
    by_what = {i["button"]["payload"] if i.get("type") == "button"
               else i.get("type") or i.get("status"): i for i in asha}
    assert len(asha) == len(by_what) == 5
    status, tap_a, tap_b, quoted, reaction = (by_what[k] for k in (
        "read", "SHOP_NOW", "STOP_PROMO", "text", "reaction"))
    ids = {tap_a["context"]["id"], tap_b["context"]["id"]}
    assert len(ids) == 2  # two brand messages, two fake wamids
    assert quoted["context"]["id"] == tap_a["context"]["id"] == status["id"]
    assert reaction["reaction"]["message_id"] == tap_b["context"]["id"]
    assert all(decode_wamid(i).from_business for i in ids)
    assert not ids & {first, second}
    brazil = [i for i in items if i not in asha]
    assert len(brazil) == 1 and brazil[0]["context"]["id"] not in ids
    # The same threads as the capture: per user, how many callbacks answer each message.
    captured = traffic([{"meta_object": {"value": c.value, "field": "messages"}}
                        for c in read_captures([capture]).callbacks])
    assert traffic(documents)["threads"] == captured["threads"]
