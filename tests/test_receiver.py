"""The built-in receiver: a real server on 127.0.0.1 that records, checks and answers callbacks."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from simulator.errors import WasimError
from simulator.receiver import Arrival, Receiver, ReceiverOptions, describe
from simulator.render import RenderOptions, render_callbacks
from simulator.settings import flag_of
from simulator.taps import TapOptions

Serve = Callable[..., Receiver]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start receivers on any free port; every one is stopped after the test."""
    started: list[Receiver] = []

    def start(on_arrival: Callable[[Arrival], None] | None = None, **options: Any) -> Receiver:
        receiver = Receiver(ReceiverOptions(port=0, **options), on_arrival)
        started.append(receiver.start())
        return receiver

    yield start
    for receiver in started:
        receiver.stop()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """An HTTP client that ignores proxy settings from the environment."""
    with httpx.Client(trust_env=False, timeout=5) as client:
        yield client


def rendered(**options: Any) -> bytes:
    """The exact bytes of one rendered callback."""
    return next(render_callbacks(RenderOptions(TapOptions(**options)))).body


def test_the_exact_bytes_posted_are_the_bytes_recorded(serve: Serve,
                                                      client: httpx.Client) -> None:
    body = rendered(seed=1, countries=("FR",), ref="promo/été")
    assert b"\\/" in body and b"\\u00e9" in body
    receiver = serve()
    response = client.post(receiver.url + "webhook?src=kaleyra", content=body,
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert response.json() == {"received": True, "arrival": 1}
    (arrival,) = receiver.wait_for(1)
    assert arrival.body == body
    assert (arrival.number, arrival.method, arrival.path) == (1, "POST", "/webhook?src=kaleyra")
    assert ("Content-Type", "application/json") in arrival.headers


def test_a_valid_callback_is_summarised_by_name_button_and_campaign(serve: Serve,
                                                                   client: httpx.Client) -> None:
    body = rendered(seed=1)
    document = json.loads(body)
    value, extra = document["meta_object"]["value"], document["extra_info"]
    contact, button = value["contacts"][0], value["messages"][0]["button"]
    receiver = serve()
    client.post(receiver.url, content=body)
    (arrival,) = receiver.wait_for(1)
    assert arrival.problems == ()
    assert arrival.summary == (f'{contact["profile"]["name"]} ({contact["wa_id"]}) tapped '
                               f'"{button["text"]}" · {extra["ref1"]} / {extra["ref2"]}')
    line = describe(arrival)
    assert f"#1 POST /  {arrival.summary} · valid → 200" in line
    assert line[:8] == time.strftime("%H:%M:%S", time.localtime(arrival.received_at))


def test_an_invalid_callback_lists_its_problems(serve: Serve, client: httpx.Client) -> None:
    document = json.loads(rendered(seed=1))
    document["extra_info"]["trace_id"] = "not-a-uuid"
    del document["extra_info"]["ref2"]
    receiver = serve()
    assert client.post(receiver.url, json=document).status_code == 200
    (arrival,) = receiver.wait_for(1)
    assert arrival.problems == ("$.extra_info.ref2: missing (a documented field)",
                                '$.extra_info.trace_id: expected a lowercase version 4 UUID, '
                                'got "not-a-uuid"')
    assert "invalid (2 problems: $.extra_info.ref2: missing (a documented field); ...) → 200" \
        in describe(arrival)


def test_a_body_that_is_not_json_is_reported_and_still_answered(serve: Serve,
                                                               client: httpx.Client) -> None:
    receiver = serve()
    response = client.post(receiver.url, content=b"hello")
    assert response.status_code == 200 and response.json()["received"] is True
    (arrival,) = receiver.wait_for(1)
    assert arrival.body == b"hello"
    assert arrival.problems == ("not JSON: Expecting value (line 1, column 1)",)
    assert "not JSON" in arrival.summary
    assert "invalid (1 problem: not JSON: Expecting value" in describe(arrival)


@pytest.mark.parametrize("body", [
    b"", b"[1, 2]", b"null", b'"text"', b"12", b"\xff\xfe\x00garbage", b"[" * 100_000,
    b'{"meta_object": 5}',
    b'{"meta_object": {"value": {"messages": []}}}',
    b'{"meta_object": {"value": {"contacts": "x", "messages": [7]}}, "extra_info": []}',
    b'{"meta_object": {"value": {"contacts": [{"wa_id": 91}], '
    b'"messages": [{"button": {"text": ["x"], "payload": null}}]}}, "extra_info": {"ref1": 3}}',
    b'{"entry": [{"changes": [{"value": {"statuses": [{"status": "read"}]}}]}]}',
])
def test_odd_bodies_are_summarised_and_answered_without_raising(
        serve: Serve, client: httpx.Client, body: bytes) -> None:
    receiver = serve()
    assert client.post(receiver.url, content=body).status_code == 200
    (arrival,) = receiver.wait_for(1)
    assert arrival.body == body and arrival.summary and arrival.problems
    assert "\n" not in describe(arrival)


def test_a_callback_in_metas_own_envelope_is_still_summarised(serve: Serve,
                                                              client: httpx.Client) -> None:
    value = json.loads(rendered(seed=1))["meta_object"]["value"]
    meta = {"object": "whatsapp_business_account",
            "entry": [{"id": "1", "changes": [{"value": value, "field": "messages"}]}]}
    receiver = serve()
    client.post(receiver.url, json=meta)
    (arrival,) = receiver.wait_for(1)
    name = value["contacts"][0]["profile"]["name"]
    assert arrival.summary.startswith(f"{name} ({value['contacts'][0]['wa_id']}) tapped ")


def test_control_characters_in_a_payload_cannot_break_the_terminal_line(
        serve: Serve, client: httpx.Client) -> None:
    document = json.loads(rendered(seed=1))
    document["meta_object"]["value"]["contacts"][0]["profile"]["name"] = "Eve\n\x1b[31mred"
    receiver = serve()
    client.post(receiver.url, json=document)
    line = describe(receiver.wait_for(1)[0])
    assert "\n" not in line and "\x1b" not in line and "Eve\\n\\x1b[31mred" in line


def test_the_status_switch_sets_every_answer(serve: Serve, client: httpx.Client) -> None:
    receiver = serve(status=503)
    response = client.post(receiver.url, content=rendered(seed=1))
    assert response.status_code == 503
    assert response.json() == {"received": True, "arrival": 1}
    assert receiver.wait_for(1)[0].status == 503


def test_a_204_answer_has_no_body_and_the_connection_stays_usable(serve: Serve,
                                                                 client: httpx.Client) -> None:
    receiver = serve(status=204)
    for _ in range(3):
        response = client.post(receiver.url, content=b"{}")
        assert response.status_code == 204 and response.content == b""
    assert [a.status for a in receiver.wait_for(3)] == [204, 204, 204]


def test_the_delay_switch_holds_the_answer_back_until_the_wait_ends(
        client: httpx.Client) -> None:
    waiting, release = threading.Event(), threading.Event()
    waits: list[float] = []

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        waiting.set()
        return release.wait(10)

    answers: list[int] = []
    with Receiver(ReceiverOptions(port=0, delay=2.5), wait=wait) as receiver:
        sender = threading.Thread(target=lambda: answers.append(
            client.post(receiver.url, content=b"{}").status_code))
        sender.start()
        assert waiting.wait(10)
        assert receiver.wait_for(1) and answers == []  # recorded, but not answered yet
        release.set()
        sender.join(10)
    assert waits == [2.5] and answers == [200]


def test_a_fail_rate_of_one_answers_500_every_time(serve: Serve, client: httpx.Client) -> None:
    receiver = serve(fail_rate=1.0)
    for _ in range(5):
        response = client.post(receiver.url, content=b"{}")
        assert response.status_code == 500
        assert response.json() == {"received": False, "error": "simulated failure (--fail-rate)"}
    assert [a.status for a in receiver.wait_for(5)] == [500] * 5


def test_a_fail_rate_of_zero_never_fails(serve: Serve, client: httpx.Client) -> None:
    receiver = serve(fail_rate=0.0)
    assert {client.post(receiver.url, content=b"{}").status_code for _ in range(20)} == {200}


def test_a_seeded_fail_rate_fails_the_same_arrivals_run_after_run(serve: Serve,
                                                                  client: httpx.Client) -> None:
    patterns = []
    for _ in range(2):
        receiver = serve(fail_rate=0.5, seed=4)
        patterns.append([client.post(receiver.url, content=b"{}").status_code
                         for _ in range(20)])
    assert patterns[0] == patterns[1]
    assert set(patterns[0]) == {200, 500}


def test_metas_verification_get_is_answered_with_the_challenge_verbatim(
        serve: Serve, client: httpx.Client) -> None:
    receiver = serve()
    response = client.get(receiver.url, params={"hub.mode": "subscribe",
                                                "hub.challenge": "1158201444",
                                                "hub.verify_token": "any-token"})
    assert response.status_code == 200
    assert response.content == b"1158201444"
    assert response.headers["content-type"].startswith("text/plain")
    assert receiver.arrivals == []


def test_any_other_get_is_a_health_check_that_counts_arrivals(serve: Serve,
                                                              client: httpx.Client) -> None:
    receiver = serve()
    assert client.get(receiver.url + "healthz").json() == {"service": "wasim receiver",
                                                           "arrivals": 0}
    client.post(receiver.url, content=b"{}")
    assert client.get(receiver.url).json() == {"service": "wasim receiver", "arrivals": 1}
    assert len(receiver.arrivals) == 1


def test_a_chunked_post_is_read_whole(serve: Serve, client: httpx.Client) -> None:
    body = rendered(seed=2)
    pieces = [body[i:i + 100] for i in range(0, len(body), 100)]
    receiver = serve()
    assert client.post(receiver.url, content=iter(pieces)).status_code == 200
    (arrival,) = receiver.wait_for(1)
    assert ("Transfer-Encoding", "chunked") in arrival.headers
    assert arrival.body == body
    assert arrival.problems == ()


def test_a_body_cut_short_is_a_400_and_not_recorded(serve: Serve) -> None:
    receiver = serve()
    request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: nine\r\n\r\n{}"
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=5) as connection:
        connection.sendall(request)
        answer = connection.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"Connection: close" in answer
    assert receiver.arrivals == []


def test_every_arrival_reaches_the_watcher(serve: Serve, client: httpx.Client) -> None:
    seen: list[Arrival] = []
    receiver = serve(on_arrival=seen.append)
    client.post(receiver.url, content=b"{}")
    assert seen == receiver.wait_for(1)


def test_a_failing_watcher_is_logged_and_the_server_keeps_answering(
        serve: Serve, client: httpx.Client, capsys: pytest.CaptureFixture[str]) -> None:
    def broken(arrival: Arrival) -> None:
        raise ValueError(f"cannot handle #{arrival.number}")

    receiver = serve(on_arrival=broken)
    assert client.post(receiver.url, content=b"{}").status_code == 200
    assert client.post(receiver.url, content=b"{}").status_code == 200
    assert "on_arrival failed for arrival #1: ValueError: cannot handle #1" \
        in capsys.readouterr().err


def test_only_the_newest_arrivals_are_kept(serve: Serve, client: httpx.Client) -> None:
    receiver = serve(keep=2)
    for _ in range(3):
        client.post(receiver.url, content=b"{}")
    assert [a.number for a in receiver.wait_for(3)] == [2, 3]


def test_a_port_in_use_is_a_wasim_error_naming_the_port(serve: Serve) -> None:
    taken = serve().port
    with pytest.raises(WasimError) as caught:
        Receiver(ReceiverOptions(port=taken)).start()
    assert caught.value.what == f"port {taken} on 127.0.0.1 is in use"
    assert caught.value.field == "port"  # the command line names it --port
    assert "use --port 0" in caught.value.one_line(lambda field: f"--{field}")  # the face's name
    assert "use port 0" in caught.value.one_line()


def test_a_host_that_is_not_this_machine_is_a_wasim_error() -> None:
    with pytest.raises(WasimError) as caught:
        Receiver(ReceiverOptions(host="192.0.2.1", port=0)).start()
    assert caught.value.field == "host"


@pytest.mark.parametrize(("options", "flag"), [
    ({"status": 99}, "--status"), ({"status": 600}, "--status"), ({"status": 100}, "--status"),
    ({"delay": -0.1}, "--delay"), ({"delay": math.inf}, "--delay"),
    ({"delay": math.nan}, "--delay"),
    ({"fail_rate": 1.5}, "--fail-rate"), ({"fail_rate": -0.1}, "--fail-rate"),
    ({"fail_rate": math.nan}, "--fail-rate"),
    ({"port": 70_000}, "--port"), ({"keep": 0}, "--keep"),
])
def test_invalid_options_are_a_wasim_error_naming_the_flag(options: dict[str, Any],
                                                           flag: str) -> None:
    with pytest.raises(WasimError) as caught:
        ReceiverOptions(**options)
    # The core names the field; the command line spells it as its flag.
    assert caught.value.field == next(iter(options)) and flag_of(caught.value.field) == flag


def test_waiting_for_arrivals_that_never_come_times_out(serve: Serve) -> None:
    receiver = serve()
    with pytest.raises(TimeoutError, match=r"0 of 1 arrivals within 0\.1 s"):
        receiver.wait_for(1, timeout=0.1)


def test_stop_is_idempotent_and_frees_the_port(client: httpx.Client) -> None:
    with Receiver(ReceiverOptions(port=0)) as receiver:
        port = receiver.port
        assert receiver.url == f"http://127.0.0.1:{port}/"
        client.post(receiver.url, content=b"{}")  # leaves a kept-alive connection open
    receiver.stop()
    with pytest.raises(httpx.TransportError):
        client.post(receiver.url, content=b"{}")
    with Receiver(ReceiverOptions(port=port)) as again:
        assert client.get(again.url).json()["arrivals"] == 0


def test_serve_forever_serves_in_the_calling_thread_until_stopped(client: httpx.Client) -> None:
    receiver = Receiver(ReceiverOptions(port=0))
    serving = threading.Thread(target=receiver.serve_forever)
    serving.start()
    deadline = time.monotonic() + 5
    while receiver.port == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert client.post(receiver.url, content=b"{}").status_code == 200
    receiver.stop()
    serving.join(timeout=5)
    assert not serving.is_alive()


def test_importing_the_receiver_loads_neither_faker_nor_jinja_nor_textual() -> None:
    code = "import sys, simulator.receiver; print(sorted(m for m in ('faker', 'jinja2', " \
           "'textual') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_kind_is_summarised_as_the_phone_shows_it(serve: Serve,
                                                        client: httpx.Client) -> None:
    from simulator.kinds import KIND_SPECS, KindArgs, render_kind, summarize
    from simulator.meta import wrap

    receiver = serve()
    bodies = [next(render_kind(name, RenderOptions(TapOptions(seed=2)), KindArgs())).body
              for name in KIND_SPECS]
    bodies.append(wrap(next(render_kind("text", RenderOptions(TapOptions(seed=2)),
                                        KindArgs(text="hi there"))).body))
    for body in bodies:
        client.post(receiver.url, content=body)
    for body, arrival in zip(bodies, receiver.wait_for(len(bodies)), strict=True):
        document = json.loads(body)
        shown = summarize(document)
        assert shown not in ("", "?") and "None" not in shown
        if "status" in document:
            recipient = document["meta_object"]["value"]["statuses"][0]["recipient_id"]
            assert arrival.summary == f"{shown} of a message to {recipient}"
        else:
            assert f"): {shown}" in arrival.summary and "sent a " not in arrival.summary
    assert arrival.summary.split(" · ")[0].endswith("): hi there")  # Meta's envelope too


def test_a_long_text_is_cut_to_one_line_in_the_summary(serve: Serve,
                                                       client: httpx.Client) -> None:
    from simulator.kinds import KindArgs, render_kind

    receiver = serve()
    body = next(render_kind("text", RenderOptions(TapOptions(seed=2)),
                            KindArgs(text="word " * 800))).body
    client.post(receiver.url, content=body)
    (arrival,) = receiver.wait_for(1)
    assert len(arrival.summary) < 200 and "…" in arrival.summary
