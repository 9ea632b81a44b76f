"""The scripted chat server speaks the protocol over real HTTP and injects its faults."""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.error
import urllib.request

import pytest

from autofm.fe.scripted_server import Reply, ScriptedChatServer

MESSAGES = [{"role": "user", "content": "propose two features"}]


def post(url: str, body: object, timeout: float = 5.0) -> tuple[int, dict, bytes]:
    """(status, headers, body bytes) of a POST to `url`/chat/completions."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{url}/chat/completions", data=data, headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_replies_in_order_as_chat_completions():
    with ScriptedChatServer(["first", "second"], model="m") as server:
        assert server.url.startswith("http://127.0.0.1:") and server.url.endswith("/v1")
        replies = []
        for _ in range(2):
            status, headers, body = post(server.url, {"model": "asked", "messages": MESSAGES})
            assert status == 200 and headers["content-type"] == "application/json"
            replies.append(json.loads(body))
    first = replies[0]
    assert first["object"] == "chat.completion"
    assert first["model"] == "asked"
    assert first["choices"][0]["message"] == {"role": "assistant", "content": "first"}
    assert first["choices"][0]["finish_reason"] == "stop"
    usage = first["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert replies[1]["choices"][0]["message"]["content"] == "second"
    assert server.n_requests == 2
    assert server.requests[0] == {"model": "asked", "messages": MESSAGES}


def test_models_route_lists_the_model():
    with ScriptedChatServer([], model="tiny") as server:
        with urllib.request.urlopen(f"{server.url}/models", timeout=5) as response:
            listing = json.loads(response.read())
    assert listing["object"] == "list"
    assert [entry["id"] for entry in listing["data"]] == ["tiny"]


def test_callable_script_sees_each_request():
    def echo(request: dict) -> str:
        return f"{request['messages'][-1]['content']} / seed {request.get('seed')}"

    with ScriptedChatServer(echo) as server:
        _, _, body = post(server.url, {"messages": MESSAGES, "seed": 7})
    assert json.loads(body)["choices"][0]["message"]["content"] == "propose two features / seed 7"


def test_error_status_with_retry_after_and_openai_error_body():
    with ScriptedChatServer([Reply(status=429, retry_after=0.25), "ok"]) as server:
        status, headers, body = post(server.url, {"messages": MESSAGES})
        assert status == 429
        assert headers["retry-after-ms"] == "250"
        assert json.loads(body)["error"]["code"] == 429
        assert post(server.url, {"messages": MESSAGES})[0] == 200


def test_malformed_body_is_not_json():
    with ScriptedChatServer([Reply(malformed=True)]) as server:
        status, _, body = post(server.url, {"messages": MESSAGES})
    assert status == 200
    with pytest.raises(ValueError):
        json.loads(body)


def test_dropped_connection_sends_nothing():
    with ScriptedChatServer([Reply(drop=True)]) as server:
        with pytest.raises(
            (http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError)
        ):
            post(server.url, {"messages": MESSAGES})
        assert server.n_requests == 1


def test_delay_holds_the_reply_back():
    with ScriptedChatServer([Reply("late", delay=0.4)]) as server:
        started = time.perf_counter()
        status, _, _ = post(server.url, {"messages": MESSAGES})
        assert status == 200 and time.perf_counter() - started >= 0.4


def test_used_up_script_says_so_and_asks_not_to_retry():
    with ScriptedChatServer(["only"]) as server:
        post(server.url, {"messages": MESSAGES})
        status, headers, body = post(server.url, {"messages": MESSAGES})
    assert status == 500 and headers["x-should-retry"] == "false"
    assert "used up after 1 replies" in json.loads(body)["error"]["message"]


def test_bad_requests_are_refused():
    with ScriptedChatServer(["unused"]) as server:
        assert post(server.url, b"{not json")[0] == 400
        assert post(server.url, {"prompt": "no messages"})[0] == 400
        assert server.n_requests == 0  # nothing consumed the script


def test_close_frees_the_port_and_url_needs_a_running_server():
    server = ScriptedChatServer(["x"])
    with pytest.raises(RuntimeError):
        _ = server.url
    with server:
        port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_close_does_not_wait_for_a_slow_reply():
    import threading

    outcome: list[object] = []

    def call(url: str) -> None:
        try:
            outcome.append(post(url, {"messages": MESSAGES}, timeout=10))
        except (OSError, http.client.HTTPException) as err:
            outcome.append(err)

    server = ScriptedChatServer([Reply("never", delay=30)]).start()
    caller = threading.Thread(target=call, args=(server.url,))
    caller.start()
    while server.n_requests == 0:
        time.sleep(0.01)
    started = time.perf_counter()
    server.close()
    assert time.perf_counter() - started < 3
    caller.join(timeout=15)
    assert len(outcome) == 1 and not isinstance(outcome[0], tuple)  # no reply was sent
