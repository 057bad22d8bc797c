"""The purposes a preference is stated for: the IETF AIPREF vocabulary's usage categories.

Labels follow draft-ietf-aipref-vocab (AI Preferences working group, drafts -02 to -08):
``train-ai`` (AI training), ``ai-use`` (use as input to a generative model) and ``search``,
with ``train-genai`` (generative AI training), the narrower training category of drafts -02
to -05, kept because creators and older signals (``noai`` and friends) still name it. The
drafts' ``tdm`` (automated processing, their umbrella category) is the root here.

A preference stated for a general purpose also covers the narrower ones beneath it: reserving
``train-ai`` reserves ``train-genai`` too. So a question about a purpose is answered by the
statements about it and about every purpose above it (its chain).
"""

from __future__ import annotations

from datalever.errors import DataleverError

PARENT: dict[str, str | None] = {
    "tdm": None,
    "train-ai": "tdm",
    "train-genai": "train-ai",
    "ai-use": "tdm",
    "search": "tdm",
}
"""Each purpose and the more general one it falls back on."""

PURPOSES: tuple[str, ...] = tuple(PARENT)

DESCRIPTIONS: dict[str, str] = {
    "tdm": "automated processing of any kind (text and data mining)",
    "train-ai": "training AI models",
    "train-genai": "training generative AI models",
    "ai-use": "use as input to a generative AI model (retrieval, grounding)",
    "search": "search applications that link back to the work",
}


def check_purpose(purpose: object) -> str:
    """``purpose`` if the vocabulary knows it, else a clear error naming the ones it does."""
    if not isinstance(purpose, str) or purpose not in PARENT:
        shown = repr(purpose)[:80]
        raise DataleverError(
            f"Unknown purpose {shown}.",
            f"use one of the AIPREF categories: {', '.join(PURPOSES)}.",
        )
    return purpose


def purpose_chain(purpose: str) -> tuple[str, ...]:
    """``purpose`` and every more general purpose whose statements also apply to it, most
    specific first: ``train-genai`` → (``train-genai``, ``train-ai``, ``tdm``)."""
    chain: list[str] = []
    current: str | None = check_purpose(purpose)
    while current is not None:
        chain.append(current)
        current = PARENT[current]
    return tuple(chain)
