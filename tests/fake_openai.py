"""A chat-completions server on loopback for the endpoint's unit tests (tests/test_openai_server.py
runs vLLM's real one): scripted tool calls, injected HTTP faults, a stated context length, and a
/tokenize + /detokenize pair that renders the chat the way a chosen template would."""

import contextlib
import json
import threading
import typing
from http.server import BaseHTTPRequestHandler, HTTPServer

MODELS = [{"id": "fake-model", "object": "model", "max_model_len": 8192}]


class FakeOpenAI(BaseHTTPRequestHandler):
    requests: typing.ClassVar[list] = []  # (path, Authorization, body) of every chat request but the probes
    faults: typing.ClassVar[list[int]] = []  # HTTP statuses to answer, one per chat request, before real answers
    models: typing.ClassVar[list[dict] | None] = MODELS  # None: no /models
    template: typing.ClassVar[dict | None] = None  # {"schema": bool, "calls": bool}; None: no /tokenize
    refuse_tools = False  # answer a request with `tools` by HTTP 400, as a stock vLLM server does
    usage_tokens = 100  # prompt tokens each reply reports

    def _send(self, status: int, payload: dict, headers: dict | None = None):
        body = json.dumps(payload).encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/v1/models" and FakeOpenAI.models is not None:
            self._send(200, {"object": "list", "data": FakeOpenAI.models})
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path in ("/tokenize", "/detokenize"):
            return self._tokenize(body)
        if body.get("tools") and FakeOpenAI.refuse_tools:
            return self._send(400, {"error": {"message": '"auto" tool choice requires --enable-auto-tool-choice'}})
        if body.get("max_tokens") == 1:  # a probe before the evaluation
            return self._send(200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": "a"}}]})
        FakeOpenAI.requests.append((self.path, self.headers.get("Authorization"), body))
        if FakeOpenAI.faults:
            status = FakeOpenAI.faults.pop(0)
            message = {"message": "This model's maximum context length is 2048 tokens."} if status == 400 else {}
            return self._send(status, {"error": message}, {"retry-after-ms": "10"})
        turn = sum(m["role"] == "assistant" for m in body["messages"])
        if turn < 2:
            message = {"role": "assistant", "content": "<Analyze>widen</Analyze>"}
            call = {"name": "simulate", "arguments": {"w_in": f"{30 + turn}u"}}
            if body.get("tools"):
                message["tool_calls"] = [
                    {
                        "id": f"call_{turn}",
                        "type": "function",
                        "function": {**call, "arguments": json.dumps(call["arguments"])},
                    }
                ]
            else:
                message["content"] += f"\n<tool_call>{json.dumps(call)}</tool_call>"
        else:
            message = {"role": "assistant", "content": "<Analyze>done</Analyze><Design End>"}
        usage = {"prompt_tokens": FakeOpenAI.usage_tokens, "completion_tokens": 20, "total_tokens": 0}
        self._send(200, {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}], "usage": usage})

    def _tokenize(self, body: dict):
        template = FakeOpenAI.template
        if template is None:
            return self._send(404, {"detail": "Not Found"})
        if self.path == "/detokenize":
            return self._send(200, {"prompt": FakeOpenAI.rendered})
        text = json.dumps(body.get("tools")) if template["schema"] else ""
        for m in body["messages"]:
            text += m.get("content") or ""
            if template["calls"]:
                text += json.dumps(m.get("tool_calls") or [])
        FakeOpenAI.rendered = text
        self._send(200, {"tokens": [1, 2, 3], "count": 3})

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def fake_openai(faults: list[int] = (), **settings):
    """The server's URL (…/v1); `settings` set FakeOpenAI's class attributes for this run."""
    defaults = {"models": MODELS, "template": None, "refuse_tools": False, "usage_tokens": 100}
    FakeOpenAI.faults[:] = faults
    FakeOpenAI.requests.clear()
    for key, value in {**defaults, **settings}.items():
        setattr(FakeOpenAI, key, value)
    server = HTTPServer(("127.0.0.1", 0), FakeOpenAI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1"
    finally:
        server.shutdown()
        for key, value in defaults.items():
            setattr(FakeOpenAI, key, value)
