"""A real OpenAI-compatible chat server on 127.0.0.1 that answers from a script.

Tests, the tour and offline demos point the real `OpenAIClient` at it: the client's HTTP
stack, retries, timeouts and the reply parser all run for real, only the model is scripted.
Each chat request consumes the next scripted reply; a reply can also inject a fault (a delay,
an HTTP error status, a body that is not JSON, a dropped connection).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """One scripted answer, optionally with a fault."""

    content: str = ""
    delay: float = 0.0  # seconds to wait before answering (a slow model)
    status: int = 200  # an error status (429, 500, 503, ...) sends an OpenAI-style error body
    malformed: bool = False  # answer 200 with a body that is not JSON
    drop: bool = False  # close the connection without answering
    retry_after: float | None = None  # seconds, sent as `retry-after-ms` on an error status


Script = Sequence[str | Reply] | Callable[[dict], str | Reply]


class ScriptedChatServer:
    """An HTTP server speaking `POST /v1/chat/completions` and `GET /v1/models`, answering
    chat requests from `script`: a list of replies used in order, or a callable that gets the
    request's JSON body and returns the reply. Received chat requests are kept in `requests`.

    Use it as a context manager (`with ScriptedChatServer([...]) as server: server.url`).
    When a list script runs out, the server answers HTTP 500 with `x-should-retry: false`, so
    a test that asks more often than it scripted fails with a clear message.
    """

    def __init__(self, script: Script, model: str = "scripted-model") -> None:
        self.script = script
        self.model = model
        self.requests: list[dict] = []  # JSON bodies of the chat requests, in arrival order
        self.request_headers: list[dict[str, str]] = []  # their HTTP headers (lower-case names)
        self._lock = threading.Lock()
        self._next = 0
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL a client takes: "http://127.0.0.1:PORT/v1"."""
        if self._server is None:
            raise RuntimeError("the scripted server is not running; use it in a `with` block")
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def n_requests(self) -> int:
        """How many chat requests arrived so far."""
        with self._lock:
            return len(self.requests)

    def start(self) -> ScriptedChatServer:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread."""
        if self._server is not None:
            return self
        handler = type("Handler", (_Handler,), {"owner": self})
        self._stopping.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="scripted-chat-server", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and free the port; delayed replies still pending are abandoned."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> ScriptedChatServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _take_reply(self, body: dict, headers: dict[str, str]) -> Reply | None:
        """Record the request and return its scripted reply (None once a list script ran out)."""
        with self._lock:
            self.requests.append(body)
            self.request_headers.append(headers)
            if callable(self.script):
                reply = self.script(body)
            elif self._next < len(self.script):
                reply = self.script[self._next]
                self._next += 1
            else:
                return None
        return Reply(content=reply) if isinstance(reply, str) else reply


def _count_words(text: str) -> int:
    """A stand-in for a token count in `usage` (the script has no tokenizer)."""
    return len(text.split())


class _Handler(BaseHTTPRequestHandler):
    owner: ScriptedChatServer
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do; every answer has a length

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log lines on stderr."""

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            created = int(time.time())
            models = [{"id": self.owner.model, "object": "model", "created": created}]
            self._send_json(200, {"object": "list", "data": models})
        else:
            self._send_error(404, f"no route GET {self.path}", "not_found_error")

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send_error(404, f"no route POST {self.path}", "not_found_error")
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send_error(400, "the request body is not JSON", "invalid_request_error")
            return
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self._send_error(400, "the request has no `messages` list", "invalid_request_error")
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.owner._take_reply(body, headers)
        if reply is None:
            used = len(self.owner.requests) - 1
            self._send_error(
                500, f"scripted server: the script is used up after {used} replies", "server_error",
                headers={"x-should-retry": "false"},
            )  # fmt: skip
            return
        if reply.delay > 0 and self.owner._stopping.wait(reply.delay):
            return
        if reply.drop:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if reply.status != 200:
            headers = {}
            if reply.retry_after is not None:
                headers["retry-after-ms"] = str(int(reply.retry_after * 1000))
            self._send_error(reply.status, "scripted fault", "server_error", headers=headers)
            return
        if reply.malformed:
            self._send_bytes(200, b'{"id": "chatcmpl-broken", "choices": [', "application/json")
            return
        self._send_json(200, self._completion(body, reply.content))

    def _completion(self, body: dict, content: str) -> dict:
        """A `chat.completion` object as OpenAI's API returns it."""
        prompt = " ".join(str(message.get("content", "")) for message in body["messages"])
        prompt_tokens, completion_tokens = _count_words(prompt), _count_words(content)
        return {
            "id": f"chatcmpl-scripted-{len(self.owner.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or self.owner.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def _send_error(
        self, status: int, message: str, kind: str, headers: dict[str, str] | None = None
    ) -> None:
        error = {"error": {"message": message, "type": kind, "code": status}}
        self._send_json(status, error, headers)

    def _send_json(self, status: int, obj: dict, headers: dict[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(obj).encode(), "application/json", headers)

    def _send_bytes(
        self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a timeout test): nothing to send
