"""The one internal record, and conversion to and from the four dataset formats.

Every format maps onto `Example`; fields a format does not use are kept in `metadata["extra"]` and
written back, so converting a file to its own format loses nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

FORMATS = ("alpaca", "sharegpt", "openai", "prompt_completion")
Format = Literal["alpaca", "sharegpt", "openai", "prompt_completion"]
ROLES = ("system", "user", "assistant")
FIELDS = ("system", "instruction", "input", "output", "text")

_SHAREGPT_ROLE = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "model": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
}
_SHAREGPT_NAME = {"system": "system", "user": "human", "assistant": "gpt"}
_OPENAI_ROLE = {r: r for r in ROLES}
_FIELD_ROLE = {"system": "system", "instruction": "user", "output": "assistant"}
# The top-level fields each format reads; anything else in a record is kept in metadata["extra"].
FORMAT_KEYS: dict[str, frozenset[str]] = {
    "alpaca": frozenset({"system", "history", "instruction", "input", "output"}),
    "sharegpt": frozenset({"conversations", "system"}),
    "openai": frozenset({"messages", "system"}),
    "prompt_completion": frozenset({"prompt", "completion"}),
}


class RecordError(ValueError):
    """A record that cannot become an Example; the message says what is wrong with it."""


@dataclass(slots=True)
class Example:
    """One training example.

    `input` is the context given with the final instruction (alpaca's `input`; alpaca's `history` turns come
    before it), kept apart from the instruction because curation treats it differently (placeholders,
    "the following text" checks).
    """

    id: str
    messages: list[dict[str, Any]]
    input: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def contents(self, role: str) -> list[str]:
        return [m["content"] for m in self.messages if m["role"] == role]

    def field(self, name: str) -> str:
        """Text of a named field: system, instruction (user turns), input, output (assistant turns), text."""
        if name == "input":
            return self.input
        if name == "text":
            return "\n".join(self.field(f) for f in ("system", "instruction", "input", "output"))
        role = _FIELD_ROLE.get(name)
        if role is None:
            raise ValueError(f"unknown field {name!r}; choose from {', '.join(FIELDS)}")
        return "\n".join(self.contents(role))

    def fields(self, names: list[str]) -> str:
        return "\n".join(self.field(n) for n in names)

    def meta(self, name: str) -> Any:
        """A metadata value, else the source field of that name the reader kept (metadata["extra"]); None
        where neither holds a value other than None or ""."""
        for where in (self.metadata, self.metadata.get("extra") or {}):
            if where.get(name) not in (None, ""):
                return where[name]
        return None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "messages": self.messages, "input": self.input, "metadata": self.metadata}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Example:
        return cls(data["id"], data["messages"], data.get("input", ""), data.get("metadata", {}))

    def copy(self) -> Example:
        return Example.from_json(json.loads(json.dumps(self.to_json())))


def detect_format(record: Any) -> Format | None:
    """The format a raw record is in, judged by its keys; None when it fits none."""
    if not isinstance(record, dict):
        return None
    if "messages" in record:
        return "openai"
    if "conversations" in record:
        return "sharegpt"
    if "instruction" in record and "output" in record:
        return "alpaca"
    if "prompt" in record and "completion" in record:
        return "prompt_completion"
    return None


def _text(record: dict[str, Any], key: str, *, required: bool = True) -> str:
    if key not in record or record[key] is None:
        if required:
            raise RecordError(f"missing field {key!r}")
        return ""
    value = record[key]
    if not isinstance(value, str):
        raise RecordError(f"field {key!r} must be a string, got {type(value).__name__}")
    return value


def _message(raw: Any, where: str, role_key: str, content_key: str, roles: dict[str, str]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise RecordError(f"{where} must be an object, got {type(raw).__name__}")
    role = _text(raw, role_key)
    if role not in roles:
        raise RecordError(f"{where} has unknown {role_key} {role!r}; expected one of {sorted(roles)}")
    content = _text(raw, content_key)
    extra = {k: v for k, v in raw.items() if k not in (role_key, content_key)}
    if clash := sorted(extra.keys() & {"role", "content"}):
        raise RecordError(f"{where} has both {role_key!r}/{content_key!r} and {clash}; keep one naming")
    return {"role": roles[role], "content": content, **extra}


def _turns(
    record: dict[str, Any], key: str, role_key: str, content_key: str, roles: dict[str, str]
) -> list[dict[str, Any]]:
    turns = record.get(key)
    if turns is None:
        raise RecordError(f"missing field {key!r}")
    if not isinstance(turns, list):
        raise RecordError(f"field {key!r} must be a list, got {type(turns).__name__}")
    if not turns:
        raise RecordError(f"field {key!r} is empty")
    return [_message(t, f"{key}[{i}]", role_key, content_key, roles) for i, t in enumerate(turns)]


def to_example(record: Any, fmt: Format, id: str, metadata: dict[str, Any]) -> Example:
    """Convert a raw record in `fmt`; raises RecordError naming the problem."""
    if fmt not in FORMAT_KEYS:
        raise RecordError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    if not isinstance(record, dict):
        raise RecordError(f"expected an object, got {type(record).__name__}")
    messages: list[dict[str, Any]] = []
    inp = ""
    if "system" in FORMAT_KEYS[fmt] and (system := _text(record, "system", required=False)):
        messages.append({"role": "system", "content": system})
    if fmt == "alpaca":
        history = record.get("history") or []
        if not isinstance(history, list):
            raise RecordError(f"field 'history' must be a list of [instruction, output] pairs, got {history!r:.40}")
        for i, turn in enumerate(history):
            pair = isinstance(turn, list | tuple) and len(turn) == 2
            if not (pair and all(isinstance(t, str) for t in turn)):
                raise RecordError(f"history[{i}] must be a pair of strings, got {turn!r:.60}")
            messages += [{"role": "user", "content": turn[0]}, {"role": "assistant", "content": turn[1]}]
        messages.append({"role": "user", "content": _text(record, "instruction")})
        inp = _text(record, "input", required=False)
        messages.append({"role": "assistant", "content": _text(record, "output")})
    elif fmt == "sharegpt":
        messages += _turns(record, "conversations", "from", "value", _SHAREGPT_ROLE)
    elif fmt == "openai":
        messages += _turns(record, "messages", "role", "content", _OPENAI_ROLE)
    else:
        messages = [
            {"role": "user", "content": _text(record, "prompt")},
            {"role": "assistant", "content": _text(record, "completion")},
        ]
    if not any(m["role"] == "assistant" for m in messages):
        raise RecordError("has no assistant turn to learn from")
    extra = {k: v for k, v in record.items() if k not in FORMAT_KEYS[fmt]}
    meta = dict(metadata)
    if extra:
        meta["extra"] = extra
    return Example(id=id, messages=messages, input=inp, metadata=meta)


def _strip(message: dict[str, Any], role_key: str, content_key: str, names: dict[str, str]) -> dict[str, Any]:
    extra = {k: v for k, v in message.items() if k not in ("role", "content")}
    if clash := sorted(extra.keys() & {role_key, content_key}):
        raise RecordError(f"a {message['role']} turn has extra fields {clash}, named like the format's own")
    return {role_key: names[message["role"]], content_key: message["content"], **extra}


def _plain(ex: Example, fmt: str) -> None:
    """Alpaca and prompt/completion hold only each turn's text: refuse rather than drop per-turn fields."""
    if fields := sorted({k for m in ex.messages for k in m} - {"role", "content"}):
        raise RecordError(f"{ex.id}: {fmt} has no place for the per-turn fields {fields}")


def merged_input(ex: Example, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fold `input` into the last user turn (the instruction it goes with) for formats without the field."""
    if not ex.input:
        return messages
    users = [i for i, m in enumerate(messages) if m["role"] == "user"]
    if not users:
        raise RecordError(f"{ex.id}: has an input but no user turn to attach it to")
    out = [dict(m) for m in messages]
    out[users[-1]]["content"] = f"{out[users[-1]]['content']}\n\n{ex.input}"
    return out


def from_example(ex: Example, fmt: Format) -> dict[str, Any]:
    """Convert back to a raw record in `fmt`; raises RecordError when the format cannot hold it."""
    extra = ex.metadata.get("extra", {})
    msgs = ex.messages
    if fmt == "alpaca":
        _plain(ex, fmt)
        system = [m["content"] for m in msgs[:1] if m["role"] == "system"]
        turns = msgs[len(system) :]
        roles = [m["role"] for m in turns]
        if roles != ["user", "assistant"] * (len(turns) // 2) or not turns:
            raise RecordError(
                f"{ex.id}: alpaca needs an optional system turn, then alternating "
                f"user/assistant turns, got {[m['role'] for m in msgs]}"
            )
        pairs = [[turns[i]["content"], turns[i + 1]["content"]] for i in range(0, len(turns), 2)]
        out: dict[str, Any] = {"instruction": pairs[-1][0], "input": ex.input, "output": pairs[-1][1]}
        if system:
            out["system"] = system[0]
        if len(pairs) > 1:
            out["history"] = pairs[:-1]
    elif fmt == "sharegpt":
        out = {"conversations": [_strip(m, "from", "value", _SHAREGPT_NAME) for m in merged_input(ex, msgs)]}
    elif fmt == "openai":
        out = {"messages": [_strip(m, "role", "content", _OPENAI_ROLE) for m in merged_input(ex, msgs)]}
    elif fmt == "prompt_completion":
        _plain(ex, fmt)
        merged = merged_input(ex, msgs)
        if [m["role"] for m in merged] != ["user", "assistant"]:
            raise RecordError(f"{ex.id}: prompt/completion holds one user and one assistant turn")
        out = {"prompt": merged[0]["content"], "completion": merged[1]["content"]}
    else:
        raise RecordError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    record = {**extra, **out}
    # An extra field named like a format field would be read back as that field (or as another format).
    if extra.keys() & FORMAT_KEYS[fmt] or detect_format(record) != fmt:
        clash = sorted(extra.keys() & frozenset().union(*FORMAT_KEYS.values()))
        raise RecordError(f"{ex.id}: its extra fields {clash} would be read back as format fields")
    return record
