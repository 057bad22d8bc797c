"""robots.txt: who may crawl a path (RFC 9309, read by ``protego``) and the AIPREF
``Content-Usage`` rule.

Three kinds of statement come out of one file:

* a Disallow that applies to the pipeline's own crawler (its group, else ``*``) reserves
  every purpose (``tdm``): a work the pipeline may not fetch, it may not use. Nothing else
  in the file is then read;
* a Disallow in a group that names a known AI training crawler (``AI_TRAINING_CRAWLERS``)
  reserves ``train-ai`` (so ``train-genai`` too). Only groups naming the crawler count: a
  ``User-agent: *`` block says nothing about AI in particular;
* ``Content-Usage`` rules, as draft-ietf-aipref-attach (-01 to -04) adds them to RFC 9309
  groups: ``Content-Usage: train-ai=n`` for the whole site, or ``Content-Usage: /images/
  train-ai=n`` for paths the pattern matches. The value after the optional path pattern is
  the vocabulary's dictionary (see ``usage``). Of the rules in the group that applies to the
  pipeline's crawler (rules before any group apply to every group), the one with the
  longest matching path pattern answers, as Allow/Disallow do; a rule with no pattern is
  the least specific. This follows the draft's text as written in those revisions; the
  draft may still change.

Input that is not UTF-8 text reserves everything; lines RFC 9309 ignores are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protego import Protego

from datalever.registry.signals.patterns import matches, path_of, specificity
from datalever.registry.signals.statements import Statement, as_text, malformed
from datalever.registry.signals.usage import usage_statements

SIGNAL = "robots.txt"

DEFAULT_AGENT = "datalever"
"""The product token the pipeline's crawler is known by, unless the caller names another."""

AI_TRAINING_CRAWLERS: tuple[str, ...] = (
    "GPTBot",  # OpenAI, model training
    "CCBot",  # Common Crawl, whose archive trains most open models
    "Google-Extended",  # Gemini training and grounding
    "ClaudeBot",  # Anthropic
    "anthropic-ai",  # Anthropic, older token
    "Claude-Web",  # Anthropic, older token
    "Applebot-Extended",  # Apple Intelligence training
    "Bytespider",  # ByteDance
    "meta-externalagent",  # Meta AI training
    "FacebookBot",  # Meta, language model training
    "cohere-ai",  # Cohere
    "cohere-training-data-crawler",  # Cohere
    "Amazonbot",  # Amazon
    "PerplexityBot",  # Perplexity
    "Diffbot",  # Diffbot knowledge graph and models
    "omgili",  # Webz.io, data sold for training
    "Timpibot",  # Timpi
    "ImagesiftBot",  # ImageSift, image datasets
    "AI2Bot",  # Allen Institute for AI
)
"""Crawlers whose blocking in robots.txt reads as a reservation of AI training.

A site that disallows these crawlers by name is telling AI trainers, as a class, to keep
out; the list holds the tokens such sites commonly name. It is a reading of intent, so a
pipeline that disagrees can pass its own tuple."""


@dataclass
class _Group:
    agents: list[str] = field(default_factory=list)
    usage: list[tuple[int, str]] = field(default_factory=list)  # (line number, value)


def _groups(text: str) -> tuple[list[_Group], list[tuple[int, str]]]:
    """The file's groups with their Content-Usage rules, and the rules before any group."""
    groups: list[_Group] = []
    loose: list[tuple[int, str]] = []
    current: _Group | None = None
    in_agents = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        name, colon, value = line.partition(":")
        if not colon:
            continue
        name, value = name.strip().lower(), value.strip()
        if name == "user-agent":
            if not in_agents:
                current = _Group()
                groups.append(current)
                in_agents = True
            assert current is not None
            current.agents.append(value.lower())
            continue
        in_agents = False
        if name == "content-usage":
            (loose if current is None else current.usage).append((number, value))
    return groups, loose


def _applies(group_agent: str, agent: str) -> bool:
    return group_agent != "*" and group_agent == agent.lower()


def _usage_rules(text: str, agent: str) -> tuple[list[tuple[int, str]], str]:
    """The Content-Usage rules for ``agent`` and the group name they came from."""
    groups, loose = _groups(text)
    own = [g for g in groups if any(_applies(a, agent) for a in g.agents)]
    if own:
        return loose + [r for g in own for r in g.usage], agent
    star = [g for g in groups if "*" in g.agents]
    return loose + [r for g in star for r in g.usage], "*"


def _disallow_rule(parser: Protego, url: str, agent: str) -> tuple[str, str]:
    """(pattern, group) of the Disallow that blocks ``agent``, for the rule text.

    ``protego`` decides, through its public ``can_fetch``; this only names the rule it
    matched, by reading its (private) rule sets, and says less if a release changes them."""
    try:
        rule_set = parser._get_matching_rule_set(agent)
        group = rule_set.user_agent or agent
        from protego._utils import _quote_path

        quoted = _quote_path(url)
        for rule in rule_set._rules:
            if rule.value.match(quoted):
                return rule.value._pattern, group
    except Exception:  # noqa: BLE001  (naming the rule must never break a decision)
        pass
    return "(a matching pattern)", agent


def robots_statements(
    data: str | bytes,
    url: str,
    *,
    agent: str = DEFAULT_AGENT,
    ai_crawlers: tuple[str, ...] = AI_TRAINING_CRAWLERS,
) -> tuple[Statement, ...]:
    """What ``data``, a site's robots.txt, says about the work at ``url`` for a pipeline
    whose crawler is ``agent``."""
    text, bad = as_text(data, SIGNAL)
    if bad is not None:
        return (bad,)
    assert text is not None
    try:
        parser = Protego.parse(text)
        if not parser.can_fetch(url, agent):
            pattern, group = _disallow_rule(parser, url, agent)
            return (
                Statement(SIGNAL, "tdm", "reserved", f"{SIGNAL}: Disallow: {pattern} for {group}"),
            )
        out: list[Statement] = []
        groups, _ = _groups(text)
        named = {agent for group in groups for agent in group.agents}
        for name in ai_crawlers:
            if name.lower() not in named:
                continue  # only a group naming the crawler speaks about AI
            if not parser.can_fetch(url, name):
                pattern, _ = _disallow_rule(parser, url, name)
                rule = f"{SIGNAL}: Disallow: {pattern} for {name}"
                out.append(Statement(SIGNAL, "train-ai", "reserved", rule))
    except Exception as e:  # noqa: BLE001  (a parser failure is a malformed file)
        return (malformed(SIGNAL, f"robots.txt parser failed: {type(e).__name__}"),)
    out.extend(_content_usage(text, url, agent))
    return tuple(out)


def _content_usage(text: str, url: str, agent: str) -> list[Statement]:
    rules, group = _usage_rules(text, agent)
    path = path_of(url)
    best: list[tuple[int, str, str]] = []  # (line, pattern, preferences)
    best_len = -1
    for number, value in rules:
        pattern, prefs = "", value
        if value.startswith(("/", "*")):
            pattern, _, prefs = value.partition(" ")
            if "\t" in pattern:
                pattern, _, rest = pattern.partition("\t")
                prefs = rest + " " + prefs
        if pattern and not matches(pattern, path):
            continue
        length = specificity(pattern) if pattern else 0
        if length > best_len:
            best, best_len = [], length
        if length == best_len:
            best.append((number, pattern, prefs.strip()))
    out: list[Statement] = []
    for number, pattern, prefs in best:
        where = f"line {number}" + (f", path {pattern}" if pattern else "") + f", for {group}"
        out.extend(usage_statements(prefs, SIGNAL, where))
    return out
