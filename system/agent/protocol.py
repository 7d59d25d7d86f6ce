"""The agent protocol: the `simulate` tool, the prompts, and the reply parser.

A turn's reply should reason inside <Analyze>...</Analyze>, then either call `simulate` in the
Hermes form (`<tool_call>{"name": "simulate", "arguments": {...}}</tool_call>`) or finish with
<Design End>. `parse_reply` accepts what real models write (think blocks, code fences, SI
strings, whitespace) and never raises: anything else becomes a structured error.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from simworkers.query import Query
from simworkers.result import SimResult
from simworkers.task import Task
from simworkers.units import format_si
from system.agent.feedback import result_lines, spec_rule
from system.agent.reward import score_result

TOOL_NAME = "simulate"
MAX_REPLY_CHARS = 200_000  # longer replies are cut before parsing: parsing stays cheap

_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.S | re.I)
_ANALYZE = re.compile(r"<analy[sz]e>(.*?)</analy[sz]e>", re.S | re.I)
_TOOL_CALL = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.S | re.I)
_FENCE = re.compile(r"```(?:json|tool_call)?\s*(\{.*?\})\s*```", re.S | re.I)
_DESIGN_END = re.compile(r"<\s*design[ _]?end\s*/?\s*>", re.I)


# ---------------------------------------------------------------------------------------------
# The tool and the prompts


def tool_schema(task: Task) -> dict:
    """The `simulate` tool as a JSON-schema function, its arguments the task's parameters."""
    properties = {
        p.name: {
            "type": ["number", "string"],
            "description": f"{p.description or p.name}; {p.unit or 'no unit'}, "
            f"{format_si(p.lo, p.unit)} to {format_si(p.hi, p.unit)} ({p.scale} scale)",
        }
        for p in task.params
    }
    return {
        "type": "function",
        "function": {
            "name": TOOL_NAME,
            "description": f"Simulate one design of {task.name} with ngspice and return every metric, "
            "each spec met or missed, and the score. Omitted parameters keep their current values.",
            "parameters": {"type": "object", "properties": properties, "required": []},
        },
    }


def design_text(task: Task, design: Mapping[str, float]) -> str:
    return ", ".join(f"{name}={format_si(design[name], task.param(name).unit, 4)}" for name in task.param_names)


def observation_text(task: Task, query: Query, result: SimResult) -> str:
    """Every metric, each spec (of this query) met or missed by how much, and the score."""
    return "\n".join(result_lines(task, result, score_result(query.specs, result)))


def first_message(
    task: Task,
    query: Query,
    budget: int,
    design: Mapping[str, float],
    result: SimResult,
    *,
    turns_left: int | None = None,
) -> str:
    """The query: the task, parameters, specs, budget, rules, and a design with its result.

    In the multi-turn protocol `design` is the initial design (turn 0). ST-iter rebuilds this
    message each turn around the most recent design, with `turns_left` simulations left."""
    left = budget if turns_left is None else turns_left
    params = "\n".join(
        f"- {p.name} ({p.unit or 'no unit'}): {format_si(p.lo, p.unit)} to {format_si(p.hi, p.unit)}, "
        f"{p.scale} scale. {p.description}".rstrip()
        for p in task.params
    )
    specs = "\n".join(f"- {spec_rule(task, s)}" for s in query.specs)
    which = "Initial design (turn 0)" if turns_left is None else "Most recent design"
    parts = [
        f"Task: {task.name}. {task.description}",
        f"Parameters (name, unit, range):\n{params}",
        f"Specs to meet:\n{specs}",
        f"{which}: {design_text(task, design)}",
        f"Its simulation:\n{observation_text(task, query, result)}",
        f"Budget: you may call `{TOOL_NAME}` {left} more time{'s' if left != 1 else ''}.",
        "Rules: in every turn first reason inside <Analyze>...</Analyze>, then call the "
        f"`{TOOL_NAME}` tool with a design (parameters you omit keep their current values; write "
        'numbers in SI units or strings with SI prefixes such as "2.5u"). When you are done, answer '
        "<Design End>: the best design you simulated is your answer.",
    ]
    if task.show_netlist:
        parts.insert(1, f"Netlist:\n{task.circuit.strip()}")
    return "\n\n".join(parts)


def tool_message(task: Task, query: Query, result: SimResult, turns_left: int) -> str:
    text = observation_text(task, query, result)
    if turns_left <= 0:
        return text + "\n\nThe simulation budget is spent. Answer with <Design End>."
    return text + f"\n\nSimulations left: {turns_left}."


# ---------------------------------------------------------------------------------------------
# The parser

Action = Literal["call", "end", "none"]


@dataclass(frozen=True)
class ParsedReply:
    """What a reply asked for. `errors` lists every format problem; `format_ok` is the verdict
    the training reward uses (an <Analyze> block, one valid action, no errors)."""

    action: Action
    arguments: dict[str, Any] = field(default_factory=dict)
    analysis: str = ""
    errors: tuple[str, ...] = ()

    @property
    def format_ok(self) -> bool:
        return bool(self.analysis) and self.action != "none" and not self.errors


def _decode_call(text: str) -> tuple[dict | None, str]:
    text = text.strip()
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1)
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):  # ValueError: also an integer longer than int() takes
        try:  # models sometimes write Python dict syntax (single quotes)
            with warnings.catch_warnings():  # a model's text is no source code to warn about
                warnings.simplefilter("ignore", SyntaxWarning)
                obj = ast.literal_eval(text) if len(text) < 20_000 else None
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            obj = None
    if not isinstance(obj, dict):
        return None, "the tool call is not a JSON object"
    return obj, ""


def _call_arguments(obj: dict) -> tuple[dict, list[str]]:
    errors = []
    name = obj.get("name", TOOL_NAME)
    if name != TOOL_NAME:
        errors.append(f"unknown tool {str(name)[:40]!r} (the only tool is {TOOL_NAME})")
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError:
            args = None
    if not isinstance(args, dict):
        return {}, [*errors, "the tool call's arguments are not an object"]
    return {str(k): v for k, v in args.items()}, errors


def parse_reply(text: object, task: Task | None = None) -> ParsedReply:
    """Parse one assistant reply. Never raises, whatever `text` is."""
    if not isinstance(text, str):
        return ParsedReply("none", errors=("the reply is not text",))
    text = _THINK.sub("", text[:MAX_REPLY_CHARS])
    match = _ANALYZE.search(text)
    analysis = match.group(1).strip() if match else ""
    errors: list[str] = [] if analysis else ["no <Analyze>...</Analyze> block"]
    calls = _TOOL_CALL.findall(text)
    if not calls:
        fenced = [m for m in _FENCE.findall(text) if f'"{TOOL_NAME}"' in m or "'simulate'" in m]
        calls = fenced
    ends = bool(_DESIGN_END.search(text))
    if calls:
        if len(calls) > 1:
            errors.append(f"{len(calls)} tool calls in one turn; only the first counts")
        if ends:
            errors.append("both a tool call and <Design End>; the tool call counts")
        obj, problem = _decode_call(calls[0])
        if obj is None:
            return ParsedReply("none", analysis=analysis, errors=(*errors, problem))
        arguments, call_errors = _call_arguments(obj)
        errors += call_errors
        if task is not None:
            unknown = [k for k in arguments if k not in task.param_names]
            if unknown:
                errors.append(f"unknown parameters: {', '.join(u[:40] for u in unknown[:5])}")
        return ParsedReply("call", arguments, analysis, tuple(errors))
    if ends:
        return ParsedReply("end", analysis=analysis, errors=tuple(errors))
    return ParsedReply("none", analysis=analysis, errors=(*errors, "no tool call and no <Design End>"))


def merged_design(current: Mapping[str, float], arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The design a call asks for: its arguments over the current design (omitted ones stay)."""
    return {**dict(current), **dict(arguments)}


__all__ = [
    "TOOL_NAME",
    "ParsedReply",
    "design_text",
    "first_message",
    "merged_design",
    "parse_reply",
    "tool_message",
    "tool_schema",
]
