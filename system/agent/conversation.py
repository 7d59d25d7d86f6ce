"""Conversations with a model: token conversations for engines we run, message conversations for
OpenAI-compatible endpoints. Every turn loop (rollout plans, evaluation, the format warm-up)
talks through this one interface (system/agent/dialogue.py).

`TokenConversation` keeps token ids end to end: the prompt comes from the model's own chat
template once; each reply appends the ids the engine sampled (their span and log-probs are kept);
each message appends the ids of the template's text for that message, cut after the assistant's
stop token. History is never re-tokenised. `OpenAIConversation` speaks the chat-completions API
with tool calling and writes tool calls back in the Hermes form, so one parser reads both.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from simworkers.task import Task
from system.agent.endpoint import MIN_ROOM, ContextFull, EndpointError, Served, classify, prompt_tokens_named
from system.agent.protocol import TOOL_NAME, tool_schema
from system.agent.turns import AgentState
from wire.sampling import Generation, Sampling


@dataclass(frozen=True)
class Span:
    """Where one reply's sampled tokens lie in a token conversation's ids."""

    start: int
    end: int
    logprobs: list[float]
    version: int  # the weights version that sampled them


@dataclass(frozen=True)
class Reply:
    text: str  # what the parser reads
    span: Span | None = None  # None for conversations that hold no token ids
    served: dict | None = None  # a server's reply as it came: content, parsed tool calls, finish reason
    cut: bool = False  # it ran to the token limit without ending its turn


class Conversation(ABC):
    """One dialogue: the first message, then replies and the messages that answer them."""

    ids: list[int]  # token ids end to end; empty where the other side keeps them (an API)

    @abstractmethod
    async def reply(self, state: AgentState) -> Reply:
        """The next assistant reply, kept in the conversation. `state` is where the dialogue
        stands; a model reads only the conversation, a scripted speaker may read the state."""

    @abstractmethod
    def add(self, role: str, text: str) -> None:
        """A `tool` response or a `user` message after the last reply."""

    @abstractmethod
    def fork(self) -> Conversation:
        """An independent copy from here on (TL-GRPO's branches share the history up to now)."""


# Opens a conversation for a task around its first user message.
Opener = Callable[[Task, str], Conversation]
# Produces the next reply's token ids from the conversation's ids.
Speaker = Callable[[list[int], AgentState], Awaitable[Generation]]


def hermes_system_message(tools: list[dict]) -> str:
    """The tool schema and the `<tool_call>` convention in the Hermes wording that Qwen-family
    templates render, for templates that have no tools block of their own."""
    schemas = "\n".join(json.dumps(tool, ensure_ascii=False) for tool in tools)
    return (
        "You are a function calling AI model. You are provided with function signatures within "
        "<tools></tools> XML tags. You may call one or more functions to assist with the user query. "
        "Don't make assumptions about what values to plug into functions. Here are the available "
        f"tools: <tools>\n{schemas}\n</tools>\nFor each function call, return a json object with "
        "function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
        '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
    )


class ChatFormat:
    """The token-level chat format of one tokenizer: the prompt and message suffixes."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.stop_id = tokenizer.eos_token_id
        self.stop_text = tokenizer.decode([self.stop_id])
        self._suffix_cache: dict[str, tuple[str, str]] = {}

    @functools.cached_property
    def renders_tools(self) -> bool:
        """Whether the template writes a tool schema given as `tools=` (Qwen's does; SmolLM2's
        ChatML template drops it silently)."""
        probe = {"type": "function", "function": {"name": "zq_probe_tool", "parameters": {"type": "object"}}}
        text = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": "q"}], tools=[probe], tokenize=False, add_generation_prompt=True
        )
        return "zq_probe_tool" in text

    def prompt_ids(self, first_message: str, tools: list[dict]) -> list[int]:
        messages = [{"role": "user", "content": first_message}]
        if tools and not self.renders_tools:  # the schema goes where the model will read it
            messages.insert(0, {"role": "system", "content": hermes_system_message(tools)})
            tools = None
        return list(
            self.tokenizer.apply_chat_template(
                messages, tools=tools, add_generation_prompt=True, tokenize=True, return_dict=False
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


class TokenConversation(Conversation):
    def __init__(self, speaker: Speaker, fmt: ChatFormat, ids: list[int]):
        self.speaker, self.fmt, self.ids = speaker, fmt, ids
        self.spans: list[Span] = []
        self._open_turn = False  # the last reply was cut at max tokens: no stop token yet

    def fork(self) -> TokenConversation:
        twin = TokenConversation(self.speaker, self.fmt, list(self.ids))
        twin.spans, twin._open_turn = list(self.spans), self._open_turn
        return twin

    async def reply(self, state: AgentState) -> Reply:
        generation = await self.speaker(list(self.ids), state)
        span = Span(len(self.ids), len(self.ids) + len(generation.ids), list(generation.logprobs), generation.version)
        self.ids += generation.ids
        self.spans.append(span)
        self._open_turn = not generation.finished
        return Reply(self.fmt.tokenizer.decode(generation.ids, skip_special_tokens=True), span, cut=self._open_turn)

    def add(self, role: str, text: str) -> None:
        if self._open_turn:  # close the cut reply as the template would
            self.ids.append(self.fmt.stop_id)
            self._open_turn = False
        self.ids += self.fmt.message_ids(role, text)


def engine_speaker(engine, sampling: Sampling) -> Speaker:
    """Replies from an engine: a Ray-backed one (async `generate`) or a local one (run in a thread)."""

    async def speak(ids: list[int], state: AgentState) -> Generation:
        if asyncio.iscoroutinefunction(engine.generate):
            return await engine.generate(ids, sampling)
        return await asyncio.to_thread(engine.generate, ids, sampling)

    return speak


def token_opener(speaker: Speaker, fmt: ChatFormat) -> Opener:
    """Token conversations that start from the chat template's prompt with the `simulate` tool."""

    def open_conversation(task: Task, first_message: str) -> TokenConversation:
        return TokenConversation(speaker, fmt, fmt.prompt_ids(first_message, [tool_schema(task)]))

    return open_conversation


@dataclass
class OpenAIConversation(Conversation):
    """Chat completions with a served model (system/agent/endpoint.py). In `native` mode the
    schema goes as `tools` and the server's parsed calls are written back in the Hermes form, so
    one parser reads both; in `text` mode the schema is a Hermes system message, no `tools` go, and
    the model's raw text is the reply. Either way a reply keeps what the server returned
    (`Reply.served`). The history is capped by the served context: `max_tokens` never asks past
    it, and a history that no longer fits raises ContextFull, which ends the episode."""

    client: object  # openai.AsyncOpenAI, shared by every conversation of the evaluation
    served: Served
    messages: list[dict]
    tools: list[dict]  # sent only in native mode
    temperature: float = 1.0
    top_p: float | None = None  # None: the server's own
    max_tokens: int = 1024
    ids: list[int] = field(default_factory=list)  # an API returns text, not token ids
    used_tokens: int = 0  # prompt + reply tokens of the last exchange: the next prompt is longer
    _last_call_id: str | None = None

    def _room(self) -> int:
        if self.served.max_model_len is None:
            return self.max_tokens
        room = self.served.max_model_len - self.used_tokens
        if room < MIN_ROOM:
            raise ContextFull(f"the history holds {self.used_tokens} of {self.served.max_model_len} tokens")
        return min(self.max_tokens, room)

    async def _complete(self, max_tokens: int):
        import openai

        body = {"model": self.served.model, "messages": self.messages, "temperature": self.temperature}
        if self.top_p is not None:
            body["top_p"] = self.top_p
        if self.served.tool_mode == "native":
            body["tools"] = self.tools
        try:
            return await self.client.chat.completions.create(**body, max_tokens=max_tokens)
        except openai.APIError as exc:
            raise classify(exc, self.served.base_url) from None

    async def reply(self, state: AgentState) -> Reply:
        max_tokens = self._room()
        try:
            completion = await self._complete(max_tokens)
        except ContextFull as full:  # asked for more than the room left: once more with exactly that room
            prompt = prompt_tokens_named(str(full))
            room = (self.served.max_model_len or 0) - (prompt or 0)
            if prompt is None or room < MIN_ROOM or room >= max_tokens:
                raise
            completion = await self._complete(room)
        if not completion.choices or completion.choices[0].message is None:
            raise EndpointError(f"{self.served.base_url}: no choices[0].message in the reply")
        choice = completion.choices[0]
        message = choice.message
        content = message.content or ""
        calls = list(message.tool_calls or [])
        served = {"content": message.content, "finish_reason": choice.finish_reason}
        if completion.usage is not None:
            usage = completion.usage
            self.used_tokens = usage.prompt_tokens + usage.completion_tokens
            served |= {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens}
        if calls:
            served["tool_calls"] = [{"name": c.function.name, "arguments": c.function.arguments} for c in calls]
        text = content
        for call in calls:  # written back in the Hermes form, so that one parser reads both
            try:
                arguments = json.loads(call.function.arguments)
            except (ValueError, TypeError):  # not JSON, or an integer longer than int() takes: the parser says so
                arguments = call.function.arguments
            text += (
                ("\n" if text else "")
                + "<tool_call>"
                + json.dumps({"name": call.function.name or TOOL_NAME, "arguments": arguments}, default=str)
                + "</tool_call>"
            )
        if calls:  # the protocol's form: the calls as the server parsed them, answered by id
            shown = text if self.served.echo_calls else content  # a template that drops the calls sees them
            self.messages.append({"role": "assistant", "content": shown, "tool_calls": [c.model_dump() for c in calls]})
            self._last_call_id = calls[0].id
        else:
            self.messages.append({"role": "assistant", "content": content})
            self._last_call_id = None
        return Reply(text, served=served, cut=choice.finish_reason == "length")

    def add(self, role: str, text: str) -> None:
        if role == "tool" and self._last_call_id is not None:
            self.messages.append({"role": "tool", "tool_call_id": self._last_call_id, "content": text})
        elif role == "tool" and self.served.tool_role == "tool":  # text mode: as the local engines send it
            self.messages.append({"role": "tool", "tool_call_id": "call_0", "content": text})
        else:
            self.messages.append({"role": "user", "content": text})
        self._last_call_id = None

    def fork(self) -> OpenAIConversation:
        return replace(self, messages=copy.deepcopy(self.messages), ids=[])


def openai_conversation(client, served: Served, task: Task, first_message: str, **sampling) -> OpenAIConversation:
    """The first message, with the schema where the mode puts it."""
    tools = [tool_schema(task)]
    messages = [{"role": "user", "content": first_message}]
    if served.tool_mode == "text":
        messages.insert(0, {"role": "system", "content": hermes_system_message(tools)})
    return OpenAIConversation(client, served, messages, tools, **sampling)
