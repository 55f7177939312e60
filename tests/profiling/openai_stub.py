"""A small OpenAI-compatible streaming server for the load driver's tests, bound to 127.0.0.1.

It behaves like a batching engine at the level the profiler can see: a request waits
prompt_tokens / prefill_tokens_per_s before its first token, then gets one token every
`base_step_ms + step_ms_per_running * running` ms, where `running` is the number of requests
being served at that moment, so inter-token latency grows with concurrency as in vLLM.
With `max_running`, requests beyond it wait in a queue before their prefill, as vLLM's --max-num-seqs holds them.
With `fail_at_running`, a request that arrives while that many are served is answered HTTP 500, as an engine
that ran out of memory at a large batch answers.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class StubBehaviour:
    served_model: str = "stub-model"
    base_step_ms: float = 4.0
    step_ms_per_running: float = 0.5
    prefill_tokens_per_s: float = 4000.0
    max_running: int | None = None
    """Requests served at once; the rest queue, sending nothing (None: no limit)."""
    fail_at_running: int | None = None
    """Requests served at once from which a new one is answered HTTP 500 (None: never)."""
    running: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[dict[str, Any]] = field(default_factory=list)
    slots: threading.BoundedSemaphore | None = None

    def __post_init__(self) -> None:
        if self.max_running is not None:
            self.slots = threading.BoundedSemaphore(self.max_running)

    def step_seconds(self) -> float:
        with self.lock:
            running = self.running
        return (self.base_step_ms + self.step_ms_per_running * running) / 1000.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _StubServer

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _json(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        if self.path == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": self.server.behaviour.served_model}]})
        else:
            self._json(404, {"error": {"message": f"no route {self.path}"}})

    def _chunk(self, data: str) -> None:
        payload = f"data: {data}\n\n".encode()
        self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
        self.wfile.flush()

    def do_POST(self) -> None:
        behaviour = self.server.behaviour
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        chat = self.path == "/v1/chat/completions"
        if self.path not in ("/v1/completions", "/v1/chat/completions"):
            self._json(404, {"error": {"message": f"no route {self.path}"}})
            return
        if body.get("model") != behaviour.served_model:
            self._json(404, {"error": {"message": f"The model `{body.get('model')}` does not exist."}})
            return
        behaviour.requests.append(body)
        if behaviour.fail_at_running is not None and behaviour.running >= behaviour.fail_at_running:
            self._json(500, {"error": {"message": "CUDA out of memory"}})
            return
        if chat:
            prompt_tokens = len(body["messages"][-1]["content"].split())
        else:
            prompt = body["prompt"]
            prompt_tokens = len(prompt) if isinstance(prompt, list) else len(prompt.split())
        max_tokens = int(body["max_tokens"])
        options = body.get("stream_options") or {}
        continuous = bool(options.get("continuous_usage_stats"))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if behaviour.slots is not None:
            behaviour.slots.acquire()
        with behaviour.lock:
            behaviour.running += 1
        try:
            time.sleep(prompt_tokens / behaviour.prefill_tokens_per_s)
            for generated in range(1, max_tokens + 1):
                if generated > 1:
                    time.sleep(behaviour.step_seconds())
                choice = {"index": 0, "delta": {"content": " tok"}} if chat else {"index": 0, "text": " tok"}
                chunk: dict[str, Any] = {"id": "cmpl-stub", "choices": [choice]}
                if continuous:
                    chunk["usage"] = {"prompt_tokens": prompt_tokens, "completion_tokens": generated}
                self._chunk(json.dumps(chunk))
            if options.get("include_usage"):
                usage = {"prompt_tokens": prompt_tokens, "completion_tokens": max_tokens}
                self._chunk(json.dumps({"id": "cmpl-stub", "choices": [], "usage": usage}))
            self._chunk("[DONE]")
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client hung up, as the profiler does when a window ends
        finally:
            with behaviour.lock:
                behaviour.running -= 1
            if behaviour.slots is not None:
                behaviour.slots.release()


class _StubServer(ThreadingHTTPServer):
    daemon_threads = True
    # The default listen backlog of 5 drops connections when a level opens many at once.
    request_queue_size = 256
    behaviour: StubBehaviour


class OpenAIStub:
    """`with OpenAIStub(StubBehaviour(...)) as stub:` serves on stub.url until the block ends."""

    def __init__(self, behaviour: StubBehaviour | None = None) -> None:
        self.behaviour = behaviour or StubBehaviour()
        self._server = _StubServer(("127.0.0.1", 0), _Handler)
        self._server.behaviour = self.behaviour
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> OpenAIStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
