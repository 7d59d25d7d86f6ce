"""Chat sessions for the language-model policies.

`TokenSession` keeps token ids end to end: the prompt comes from the model's own chat template
once; each reply appends the ids the engine sampled; each tool response appends the ids of the
template's text for that message, cut after the assistant's stop token. History is never
re-tokenised. `OpenAISession` speaks the chat-completions API with tool calling.
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from simworkers.task import Task
from system.policies import ChatSession
from system.protocol import TOOL_NAME, tool_schema


class ChatFormat:
    """The token-level chat format of one tokenizer: the prompt and message suffixes."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.stop_id = tokenizer.eos_token_id
        self.stop_text = tokenizer.decode([self.stop_id])
        self._suffix_cache: dict[str, tuple[str, str]] = {}

    def prompt_ids(self, first_message: str, tools: list[dict]) -> list[int]:
        return list(
            self.tokenizer.apply_chat_template(
                [{"role": "user", "content": first_message}],
                tools=tools,
                add_generation_prompt=True,
                tokenize=True,
                return_dict=False,
            )
        )

    def _frame(self, role: str) -> tuple[str, str]:
        """The template's text around a `role` message that follows an assistant turn, from the
        assistant's stop token to the next generation prompt: (before content, after content)."""
        if role not in self._suffix_cache:
            marker = "\x00CONTENT\x00"
            base = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
            full = self.tokenizer.apply_chat_template(
                [*base, {"role": role, "content": marker}], tokenize=False, add_generation_prompt=True
            )
            head = self.tokenizer.apply_chat_template(base, tokenize=False)
            cut = head.rfind(self.stop_text)
            if cut < 0 or not full.startswith(head[: cut + len(self.stop_text)]):
                raise ValueError("the chat template does not end an assistant turn with the stop token")
            tail = full[cut + len(self.stop_text) :]
            before, _, after = tail.partition(marker)
            self._suffix_cache[role] = (before, after)
        return self._suffix_cache[role]

    def message_ids(self, role: str, content: str) -> list[int]:
        before, after = self._frame(role)
        return self.tokenizer.encode(before + content + after, add_special_tokens=False)


@dataclass
class TokenSession(ChatSession):
    engine: object  # actors.hf_engine.HFEngine or anything with .generate(ids, sampling)
    fmt: ChatFormat
    sampling: object
    ids: list[int] = field(default_factory=list)
    logprobs: list[float | None] = field(default_factory=list)  # None for prompt and tool tokens

    def __post_init__(self) -> None:
        self.logprobs = [None] * (len(self.ids) - len(self.logprobs)) + self.logprobs  # the prompt's

    def _extend(self, ids: list[int], logprobs: list[float] | None = None) -> None:
        self.ids += ids
        self.logprobs += logprobs if logprobs is not None else [None] * len(ids)

    async def reply(self) -> str:
        if asyncio.iscoroutinefunction(self.engine.generate):  # a remote engine (Ray actor, fleet)
            generation = await self.engine.generate(list(self.ids), self.sampling)
        else:
            generation = await asyncio.to_thread(self.engine.generate, list(self.ids), self.sampling)
        self._extend(generation.ids, generation.logprobs)
        if not generation.finished:  # cut at max tokens: close the turn as the template would
            self._extend([self.fmt.stop_id])
        return self.fmt.tokenizer.decode(generation.ids, skip_special_tokens=True)

    def add_tool_result(self, text: str) -> None:
        self._extend(self.fmt.message_ids("tool", text))

    def add_user(self, text: str) -> None:
        self._extend(self.fmt.message_ids("user", text))


def hf_session_factory(
    path: str, max_new_tokens: int = 256, temperature: float = 1.0, top_p: float = 0.95, seed: int | None = None, **_
):
    from actors.hf_engine import HFEngine, Sampling
    from actors.rollout import BatchingEngine

    model = HFEngine(path)
    engine = BatchingEngine(model, batch_window_s=0.01, max_batch=32)  # concurrent episodes share batches
    fmt = ChatFormat(model.tokenizer)
    sampling = Sampling(max_new_tokens, temperature, top_p, seed)

    def new_session(task: Task, first_message: str) -> TokenSession:
        return TokenSession(engine, fmt, sampling, fmt.prompt_ids(first_message, [tool_schema(task)]))

    return new_session


class EndpointError(RuntimeError):
    """The OpenAI-compatible endpoint refused or failed a request."""


@dataclass
class OpenAISession(ChatSession):
    base_url: str
    model: str
    tools: list[dict]
    messages: list[dict]
    api_key: str | None = None
    temperature: float = 1.0
    max_tokens: int = 1024
    timeout_s: float = 300.0
    ids: list[int] = field(default_factory=list)  # an API returns text, not token ids
    _last_call_id: str | None = None

    def _post(self, body: dict) -> dict:
        request = urllib.request.Request(
            self.base_url.rstrip("/") + "/chat/completions",
            data=json.dumps(body).encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                **({"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise EndpointError(f"{self.base_url}: HTTP {exc.code}: {exc.read()[:300]!r}") from None
        except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as exc:
            raise EndpointError(f"{self.base_url}: {exc}") from None

    async def reply(self) -> str:
        body = {
            "model": self.model,
            "messages": self.messages,
            "tools": self.tools,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        data = await asyncio.to_thread(self._post, body)
        try:
            message = data["choices"][0]["message"]
        except (KeyError, IndexError, TypeError):
            raise EndpointError(f"{self.base_url}: no choices[0].message in the reply") from None
        self.messages.append({k: v for k, v in message.items() if k in ("role", "content", "tool_calls")})
        text = message.get("content") or ""
        calls = message.get("tool_calls") or []
        self._last_call_id = calls[0].get("id", "call_0") if calls else None
        for call in calls:  # written back in the Hermes form, so that one parser reads both
            function = call.get("function", {})
            arguments = function.get("arguments", "{}")
            try:
                arguments = json.loads(arguments) if isinstance(arguments, str) else arguments
            except json.JSONDecodeError:
                pass
            text += (
                "\n<tool_call>"
                + json.dumps({"name": function.get("name", TOOL_NAME), "arguments": arguments}, default=str)
                + "</tool_call>"
            )
        return text

    def add_tool_result(self, text: str) -> None:
        if self._last_call_id is not None:
            self.messages.append({"role": "tool", "tool_call_id": self._last_call_id, "content": text})
        else:
            self.messages.append({"role": "user", "content": text})
        self._last_call_id = None

    def add_user(self, text: str) -> None:
        self.messages.append({"role": "user", "content": text})


def openai_session_factory(
    base_url: str,
    model: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    temperature: float = 1.0,
    max_tokens: int = 1024,
    **_,
):
    api_key = os.environ.get(api_key_env)

    def new_session(task: Task, first_message: str) -> OpenAISession:
        return OpenAISession(
            base_url,
            model or "default",
            [tool_schema(task)],
            [{"role": "user", "content": first_message}],
            api_key,
            temperature,
            max_tokens,
        )

    return new_session
