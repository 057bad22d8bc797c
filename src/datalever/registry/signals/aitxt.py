"""ai.txt, Spawning's robots.txt-like file at a site's root that says which files may go
into AI training datasets.

It is grouped like robots.txt (``User-Agent: *``) with ``Allow:`` and ``Disallow:`` rules
whose patterns are paths (``/``, ``/photos/``) or file types (``*.jpg``, ``*.pdf``; see
``patterns``). The group naming the pipeline's crawler applies, else ``*``; rules before
any group apply to all. The longest matching pattern wins, and between patterns of equal
length Disallow wins. Spawning wrote it for training datasets, so a Disallow reserves
``train-ai`` (``train-genai`` with it) and an Allow allows it; nothing else is said.
"""

from __future__ import annotations

from datalever.registry.signals.patterns import matches, path_of, specificity
from datalever.registry.signals.statements import Statement, as_text

SIGNAL = "ai.txt"
AITXT_PATH = "/ai.txt"


def _rules(text: str, agent: str) -> tuple[list[tuple[str, str]], str]:
    """The (field, pattern) rules for ``agent`` and the group they came from."""
    loose: list[tuple[str, str]] = []
    groups: list[tuple[list[str], list[tuple[str, str]]]] = []
    in_agents = False
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        name, colon, value = line.partition(":")
        if not colon:
            continue
        name, value = name.strip().lower(), value.strip()
        if name == "user-agent":
            if not in_agents:
                groups.append(([], []))
                in_agents = True
            groups[-1][0].append(value.lower())
            continue
        in_agents = False
        if name in ("allow", "disallow") and value:
            (groups[-1][1] if groups else loose).append((name, value))
    own = [rules for agents, rules in groups if agent.lower() in agents]
    if own:
        return loose + [r for rules in own for r in rules], agent
    star = [rules for agents, rules in groups if "*" in agents]
    return loose + [r for rules in star for r in rules], "*"


def aitxt_statements(data: str | bytes, url: str, *, agent: str) -> tuple[Statement, ...]:
    """What ``data``, a site's ai.txt, says about the work at ``url``."""
    text, bad = as_text(data, SIGNAL)
    if bad is not None:
        return (bad,)
    assert text is not None
    rules, group = _rules(text, agent)
    path = path_of(url)
    best: tuple[int, bool, str, str] | None = None  # (length, is disallow, field, pattern)
    for field, pattern in rules:
        if not matches(pattern, path):
            continue
        key = (specificity(pattern), field == "disallow", field, pattern)
        if best is None or key[:2] > best[:2]:
            best = key
    if best is None:
        return ()
    _, disallow, field, pattern = best
    rule = f"{SIGNAL}: {field.capitalize()}: {pattern[:80]} for {group}"
    return (Statement(SIGNAL, "train-ai", "reserved" if disallow else "allowed", rule),)
