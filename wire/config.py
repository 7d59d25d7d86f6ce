"""The base of every config section, in every layer: typed, frozen, and strict, so that a YAML
string is never taken for a number and an unknown key is an error (system/config.py turns
pydantic's errors into one line naming the dotted key)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticCustomError


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, validate_default=True)


def rule(key: str, why: str) -> PydanticCustomError:
    """A rule across keys, broken: raise it from a model validator, naming the key (relative to
    the section) that must change and why."""
    return PydanticCustomError("config_rule", "{why}", {"key": key, "why": why})
