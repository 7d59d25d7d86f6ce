"""An OpenAI-compatible chat server (vLLM's, SGLang's, a hosted API), through the official `openai`
SDK: its retries with backoff and Retry-After, its timeouts, its typed replies. What stays ours is
what the evaluation needs to know about a server before and while it talks to it:

- which faults stop an evaluation: a refused request or key (400, 401, 403, 404, 422) fails every
  episode alike, so it is raised at once as a fatal `EndpointError`; a fault that persists after
  the SDK's retries (a connection, a timeout, 408, 409, 429, 5xx) ends only its episode, kept as
  an infrastructure failure that `--resume` runs again;
- the served model's context (`max_model_len`, where /models gives it): a history that no longer
  fits ends its episode (`ContextFull`), and a 400 that names the context length is that case;
- the tool mode (`connect`): `native` sends the `simulate` schema as `tools` and reads the
  server's parsed tool calls; `text` puts the Hermes tool block in a system message, sends no
  `tools`, and lets our parser read the model's raw text, as the local engines do. `auto` takes
  `native` only where the server accepts tools and the model's chat template renders the schema
  and the calls made, and says which it took and why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

ToolMode = Literal["auto", "native", "text"]
TOOL_MODES: tuple[ToolMode, ...] = get_args(ToolMode)
RETRIES = 5  # the SDK's retries of a transient fault, with its exponential backoff (0.5 s to 8 s) or Retry-After
TRANSIENT_HTTP = frozenset({408, 409, 429})  # what the SDK retries, with every 5xx
MIN_ROOM = 16  # fewer tokens than this left in the context: the episode ends rather than ask for a stub


class EndpointError(RuntimeError):
    """The server refused or failed a request (after the SDK's retries, when the fault was transient)."""

    def __init__(self, message: str, *, transient: bool = False):
        super().__init__(message)
        self.transient = transient


class ContextFull(Exception):
    """The conversation no longer fits the served model's context: its episode ends there."""


_CONTEXT = re.compile(r"context.length|maximum context|context_length_exceeded|too many tokens", re.IGNORECASE)
# vLLM: "your prompt contains at least 2049 input tokens"; OpenAI: "(3100 in the messages, ...)"
_PROMPT_TOKENS = re.compile(r"prompt contains (?:at least )?(\d+)|(\d+) in the messages|prompt has (\d+)")


def names_context(message: str) -> bool:
    return bool(_CONTEXT.search(message))


def prompt_tokens_named(message: str) -> int | None:
    """The prompt's token count where a context-length refusal states it."""
    match = _PROMPT_TOKENS.search(message)
    return int(next(g for g in match.groups() if g)) if match else None


def _reason(exc) -> str:
    """One line from an SDK error: the status and the server's own message, never the key."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        detail = body.get("message") or (body.get("error") or {}).get("message") if body else None
        text = str(detail or exc.message or "").replace("\n", " ")
        return f"HTTP {exc.status_code}: {text[:300]}"
    if isinstance(exc, openai.APITimeoutError):
        return "the request timed out"
    cause = exc.__cause__
    return f"{exc}{f' ({cause})' if cause else ''}".replace("\n", " ")[:300]


def classify(exc, base_url: str) -> Exception:
    """An SDK error as ours: ContextFull, a fatal EndpointError, or a transient one (retried already)."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        reason = _reason(exc)
        if exc.status_code == 400 and names_context(reason):
            return ContextFull(f"{base_url}: {reason}")
        if exc.status_code in TRANSIENT_HTTP or exc.status_code >= 500:
            return EndpointError(f"{base_url}: {reason} (after {RETRIES + 1} attempts)", transient=True)
        return EndpointError(f"{base_url}: {reason}")
    if isinstance(exc, openai.APIConnectionError):  # refused, reset, timed out: retried by the SDK
        return EndpointError(f"{base_url}: {_reason(exc)} (after {RETRIES + 1} attempts)", transient=True)
    return EndpointError(f"{base_url}: {type(exc).__name__}: {exc}")


def async_client(base_url: str, api_key: str | None, timeout_s: float = 300.0, retries: int = RETRIES):
    import openai

    # a server without keys still wants the header filled; the key itself is never printed or logged
    return openai.AsyncOpenAI(base_url=base_url, api_key=api_key or "none", timeout=timeout_s, max_retries=retries)


@dataclass(frozen=True)
class Served:
    """What `connect` learned of a server before the evaluation starts."""

    base_url: str
    model: str
    max_model_len: int | None  # None: the server does not say
    tool_mode: Literal["native", "text"]
    tool_role: Literal["tool", "user"]  # the role a tool's answer is sent in (text mode)
    echo_calls: bool  # native mode, a template that drops `tool_calls`: the calls go back as text too
    why: str  # one line: the mode taken and why

    def line(self) -> str:
        context = f"context {self.max_model_len} tokens" if self.max_model_len else "context not reported"
        return f"openai:{self.base_url} model {self.model} ({context}): tool mode {self.tool_mode}: {self.why}"


_PROBE_TOOL = {
    "type": "function",
    "function": {
        "name": "zq_probe_tool",
        "description": "zq_schema_marker",
        "parameters": {"type": "object", "properties": {"zq_arg": {"type": "string"}}},
    },
}
_PROBE_CALL = {
    "id": "call_zq",
    "type": "function",
    "function": {"name": "zq_probe_tool", "arguments": '{"zq_arg": "zq_call_marker"}'},
}


def _root(base_url: str) -> str:
    """vLLM serves /tokenize beside /v1, not under it."""
    url = base_url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


@dataclass(frozen=True)
class Template:
    """What the served model's chat template does with tools, read through the server's /tokenize
    and /detokenize (vLLM's); None where the server cannot say."""

    renders_schema: bool | None
    renders_calls: bool | None  # an assistant message's `tool_calls` appear in the rendered history
    why: str


def read_template(client, base_url: str, model: str) -> Template:
    import httpx

    messages = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "", "tool_calls": [_PROBE_CALL]},
        {"role": "tool", "tool_call_id": "call_zq", "content": "r"},
    ]
    try:
        with httpx.Client(timeout=30.0, headers={"Authorization": f"Bearer {client.api_key}"}) as http:
            body = {"model": model, "messages": messages, "tools": [_PROBE_TOOL]}
            tokens = http.post(_root(base_url) + "/tokenize", json=body)
            tokens.raise_for_status()
            text = http.post(_root(base_url) + "/detokenize", json={"model": model, "tokens": tokens.json()["tokens"]})
            text.raise_for_status()
            prompt = text.json()["prompt"]
    except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
        unknown = "so whether the model's template renders tools cannot be known"
        return Template(None, None, f"the server has no usable /tokenize ({type(exc).__name__}), {unknown}")
    schema, calls = "zq_schema_marker" in prompt, "zq_call_marker" in prompt
    why = (
        "the model's chat template "
        + ("renders the tool schema" if schema else "does not render the tool schema")
        + (" and the calls made" if calls else ", and drops the calls made from the history")
    )
    return Template(schema, calls, why)


def _accepts(client, model: str, **body) -> tuple[bool, str]:
    import openai

    try:
        client.chat.completions.create(model=model, max_tokens=1, temperature=0.0, **body)
        return True, ""
    except openai.BadRequestError as exc:
        return False, _reason(exc)


def connect(
    base_url: str, model: str | None, api_key: str | None, tools: ToolMode = "auto", timeout_s: float = 30.0
) -> Served:
    """Reach the server, name its model (the only one it serves when none is given), read its
    context length, and settle the tool mode. Raises ValueError with one line on what is wrong."""
    import openai

    if tools not in TOOL_MODES:
        raise ValueError(f"--tools {tools!r}: use one of {', '.join(TOOL_MODES)}")
    client = openai.OpenAI(base_url=base_url, api_key=api_key or "none", timeout=timeout_s, max_retries=1)
    served: list = []
    try:
        served = list(client.models.list())
    except openai.APIConnectionError as exc:
        raise ValueError(
            f"openai:{base_url}: the endpoint cannot be reached ({_reason(exc)}); is the server up?"
        ) from None
    except openai.AuthenticationError as exc:
        raise ValueError(
            f"openai:{base_url}: the key was refused ({_reason(exc)}); set it in the --api-key-env variable"
        ) from None
    except openai.APIStatusError:  # not every server offers /models
        pass
    ids = [m.id for m in served]
    if model is None:
        if len(ids) != 1:
            named = f"it serves {', '.join(ids)}" if ids else "it does not list its models"
            raise ValueError(f"openai:{base_url}: give --model ({named})")
        model = ids[0]
    elif ids and model not in ids:
        raise ValueError(f"openai:{base_url}: no model {model!r} there (it serves {', '.join(ids)})")
    listed = next((m for m in served if m.id == model), None)
    length = (listed.model_extra or {}).get("max_model_len") if listed is not None else None
    max_model_len = int(length) if isinstance(length, int | float) and length > 0 else None

    try:
        mode, role, echo_calls, why = _settle_tools(client, base_url, model, tools)
    except openai.APIError as exc:
        raise ValueError(f"openai:{base_url}: the model {model!r} failed a probe request ({_reason(exc)})") from None
    return Served(base_url, model, max_model_len, mode, role, echo_calls, why)


def _settle_tools(client, base_url: str, model: str, tools: ToolMode) -> tuple[str, str, bool, str]:
    template = read_template(client, base_url, model)
    mode, why = tools, f"as asked; {template.why.removeprefix('the ')}"
    if tools == "auto":
        mode, why = "text", template.why
        if template.renders_schema:
            question = [{"role": "user", "content": "q"}]
            accepted, refusal = _accepts(client, model, messages=question, tools=[_PROBE_TOOL])
            if accepted:
                mode, why = "native", f"the server accepts tools and {template.why}"
            else:
                flags = "vLLM wants --enable-auto-tool-choice --tool-call-parser hermes"
                why = f"the server refuses tools ({refusal}; {flags})"
    # a template that drops `tool_calls` would show the model its own calls as empty turns: the
    # calls are then written into the assistant message's text as well, as the model wrote them
    echo_calls = mode == "native" and template.renders_calls is False
    if echo_calls:
        why += "; the calls made go back in the assistant's text"
    role = "tool"
    if mode == "text":  # a tool's answer goes back as role `tool`, as the local engines send it, where accepted
        accepted, refusal = _accepts(
            client,
            model,
            messages=[
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": "a"},
                {"role": "tool", "tool_call_id": "call_0", "content": "r"},
            ],
        )
        if not accepted:
            role, why = "user", f"{why}; tool answers go back as user messages (a tool message was refused: {refusal})"
    return mode, role, echo_calls, why
