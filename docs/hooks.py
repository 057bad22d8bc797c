"""MkDocs hooks: the spec reference written from the typed configs themselves, so it cannot
drift from what the code accepts. A page holding ``<!-- reference:spec -->``,
``<!-- reference:learners -->`` or ``<!-- reference:levers -->`` gets the tables there."""

from __future__ import annotations

import enum
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined


def _type(annotation: object) -> str:
    """A type as a reader of TOML would say it."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a!r}`".replace("'", '"') for a in args)
    if origin in (typing.Union, types.UnionType):
        shown = [_type(a) for a in args if a is not type(None)]
        return " \\| ".join(shown) + (" (optional)" if type(None) in args else "")
    if origin in (list, tuple):
        return f"list of {_type(args[0])}" if args else "list"
    if origin is dict:
        return "table"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " \\| ".join(f'`"{m.value}"`' for m in annotation)
    names = {int: "integer", float: "number", str: "text", bool: "true/false"}
    if annotation in names:
        return names[annotation]
    return getattr(annotation, "__name__", str(annotation))


def _bounds(info: FieldInfo) -> str:
    words = []
    for meta in info.metadata:
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            value = getattr(meta, attr, None)
            if value is not None:
                words.append(f"{sign} {value:,}" if isinstance(value, int) else f"{sign} {value}")
    return ", ".join(words)


def _default(info: FieldInfo) -> str:
    if info.default is PydanticUndefined:
        return "required" if info.default_factory is None else "—"
    if info.default is None:
        return "—"
    value = info.default.value if isinstance(info.default, enum.Enum) else info.default
    return f"`{value!r}`".replace("'", '"')


def model_table(model: type[BaseModel], skip: tuple[str, ...] = ()) -> str:
    """One row per field: its name, type, default, bounds and description."""
    rows = ["| key | type | default | bounds | meaning |", "|---|---|---|---|---|"]
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        text = (info.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(
            f"| `{name}` | {_type(info.annotation)} | {_default(info)} | {_bounds(info)} | {text} |"
        )
    return "\n".join(rows) if len(rows) > 2 else "No parameters."


def spec_reference() -> str:
    from datalever import spec as s

    sections = [
        ("Top level", s.Spec, ("data", "protocol", "learners", "lever", "levers", "collectives",
                               "evaluation", "question")),
        ("[data]", s.DataSpec, ()),
        ("[protocol]", s.ProtocolSpec, ()),
        ("[collectives]", s.CollectivesSpec, ()),
        ("[evaluation]", s.EvaluationSpec, ()),
        ("[question]", s.QuestionSpec, ()),
    ]  # fmt: skip
    out = []
    for title, model, skip in sections:
        out += [f"### `{title}`" if title.startswith("[") else f"### {title}", "",
                (model.__doc__ or "").strip(), "", model_table(model, skip), ""]  # fmt: skip
    return "\n".join(out)


def learner_reference() -> str:
    from datalever.tasks import TASKS

    out = []
    for task in TASKS.values():
        out += [f"### {task.name.capitalize()}", ""]
        for name, cls in sorted(task.learners.items()):
            doc = (cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
            out += [f"#### `{name}`", "", doc, "", model_table(cls.Config), ""]
    return "\n".join(out)


def lever_reference() -> str:
    from datalever.levers import LEVERS

    out = []
    for kind, cls in LEVERS.items():
        doc = (cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        out += [f"### `{kind}`", "", doc, "", model_table(cls.Config), ""]
    return "\n".join(out)


def cli_reference() -> str:
    """Each command's help, from the command line itself."""
    import typer

    from datalever.cli import app

    def walk(command: Any, path: list[str]):
        yield path, command
        for name, sub in sorted((getattr(command, "commands", None) or {}).items()):
            yield from walk(sub, [*path, name])

    root = typer.main.get_command(app)
    out = []
    for path, command in walk(root, ["datalever"]):
        if command.hidden:
            continue
        with command.context_class(command, info_name=" ".join(path), terminal_width=100) as ctx:
            text = command.get_help(ctx)
        out += [f"## `{' '.join(path)}`", "", "```text", text, "```", ""]
    return "\n".join(out)


MARKERS = {
    "<!-- reference:cli -->": cli_reference,
    "<!-- reference:spec -->": spec_reference,
    "<!-- reference:learners -->": learner_reference,
    "<!-- reference:levers -->": lever_reference,
}


def on_page_markdown(markdown: str, **_: object) -> str:
    for marker, make in MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return markdown
