"""Chat templates: how an instruct model expects its prompts, and where its answers begin and end.

An instruct model was tuned on conversations rendered by its tokenizer's Jinja template
(``<|im_start|>user ... <|im_end|><|im_start|>assistant``); a raw "Instruction: ... Answer:"
prompt is text it never saw, and it answers badly. Every place fintune builds a prompt for a
causal LM asks :class:`ChatFormat` for the text before and after the user's input, so the
input can still be cut to ``max_length`` between them, and for the text that closes an
assistant turn, so training teaches the model to stop and generation stops there.

``model.chat_template``: ``auto`` uses the tokenizer's template when it has one (instruct
models), ``none`` keeps raw prompts (base models), a path names a Jinja file to use instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fintune.errors import FintuneError

# Stand-ins rendered through the template, then split on: no template alters them.
_INPUT = "\u2063FINTUNE-INPUT\u2063"
_ANSWER = "\u2063FINTUNE-ANSWER\u2063"

# For conversations with a base model (no template of its own): plain role lines.
PLAIN_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] }}\n\n"
    "{% elif m['role'] == 'user' %}User: {{ m['content'] }}\n"
    "{% else %}Assistant: {{ m['content'] }}{{ eos_token }}\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}Assistant: {% endif %}"
)


def chat_template_of(tokenizer: Any, setting: str) -> str | None:
    """The Jinja template prompts are wrapped in (None: raw prompts) for ``model.chat_template``."""
    if setting == "none":
        return None
    if setting == "auto":
        return getattr(tokenizer, "chat_template", None) or None
    path = Path(setting)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FintuneError(f"model.chat_template: cannot read the Jinja file {path}: {exc}; give auto, none or "
                           "the path of a template file") from None


@dataclass
class ChatFormat:
    """One chat template, rendered with stand-ins to find where input and answers go."""

    tokenizer: Any
    template: str
    system: str | None = None

    def render(self, messages: list[dict[str, str]], generation_prompt: bool) -> str:
        """The conversation as the template writes it (text, not ids)."""
        if self.system is not None and (not messages or messages[0]["role"] != "system"):
            messages = [{"role": "system", "content": self.system}, *messages]
        try:
            return self.tokenizer.apply_chat_template(messages, chat_template=self.template, tokenize=False,
                                                      add_generation_prompt=generation_prompt)
        except Exception as exc:  # a Jinja error from a user's template file
            raise FintuneError(f"the chat template could not render a conversation: {exc}") from None

    def around_input(self, user_message: str) -> tuple[str, str]:
        """The text before and after ``{text}`` of one user turn, up to where the answer starts."""
        if "{text}" not in user_message:
            raise ValueError("model.prompt must contain {text}")
        rendered = self.render([{"role": "user", "content": user_message.replace("{text}", _INPUT, 1)}], True)
        before, _, after = rendered.partition(_INPUT)
        return before, after

    def turn_end(self) -> str:
        """What the template writes after an assistant's answer (``<|im_end|>\\n``, ``</s>``...)."""
        rendered = self.render([{"role": "user", "content": "q"}, {"role": "assistant", "content": _ANSWER}], False)
        return rendered.partition(_ANSWER)[2]

    def assistant_spans(self, messages: list[dict[str, str]]) -> tuple[str, list[tuple[int, int]]]:
        """The rendered conversation and the character spans of every assistant answer with the
        text that closes it (what training puts its loss on)."""
        text = self.render(messages, False)
        spans, end = [], self.turn_end()
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            head = self.render(messages[:i], True)
            start = len(head)
            if not text.startswith(head) or not text.startswith(message["content"], start):
                raise FintuneError("the chat template renders a conversation's start differently from the whole "
                                   "conversation, so the answers cannot be found in it; use another template")
            stop = start + len(message["content"]) + len(end.rstrip("\n") or end)
            spans.append((start, stop))
        return text, spans


def stop_ids(tokenizer: Any, chat: ChatFormat | None) -> list[int]:
    """Token ids that end an answer: end-of-sequence and the first token closing a chat turn."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    if chat is not None:
        closing = tokenizer(chat.turn_end(), add_special_tokens=False)["input_ids"]
        if closing and closing[0] not in ids:
            ids.append(closing[0])
    return ids


def encode_conversation(chat: ChatFormat, messages: list[dict[str, str]]) -> tuple[list[int], list[int]]:
    """Token ids of a whole conversation and a 0/1 mask that is 1 exactly on the tokens of the
    assistant's answers and the text closing each (the positions training learns)."""
    text, spans = chat.assistant_spans(messages)
    enc = chat.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    mask = [int(any(start <= begin < stop for start, stop in spans)) for begin, _ in enc["offset_mapping"]]
    return enc["input_ids"], mask
