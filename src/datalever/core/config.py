"""Typed, bounded learner parameters, checked before a learner is built.

Each learner declares its parameters as a nested ``Config`` (a :class:`LearnerConfig`): a type,
a sane range and a description per field. The checks are strict, so a value is taken as given
or refused, never converted: no booleans or strings where numbers belong, no fractional
numbers for counts, no NaN or infinite numbers, nothing outside its range (such as
``n_factors = 1e9``, a 298 GiB allocation, or ``n_epochs = 10000000``, a fit without end). The
only widening is an integer for a real number (``lr = 1`` is ``1.0``), which is the same value.

A refusal is one :class:`~datalever.errors.DataleverError` naming the learner, each bad
parameter, the value given and what the parameter accepts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from types import UnionType
from typing import Any, ClassVar, Literal, Self, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.fields import FieldInfo

from datalever.errors import DataleverError

#: The largest seed: TOML's largest integer, and the spec's own bound on ``seed``.
MAX_SEED = 2**63 - 1
#: How much of a refused value a message repeats.
_SHOWN = 40


class LearnerConfig(BaseModel):
    """A learner's parameters. Subclasses declare fields with bounds and descriptions; the
    field defaults are the learner's constructor defaults."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False, extra="forbid", frozen=True)
    #: What the owner of these parameters is called in messages.
    owner: ClassVar[str] = "learner"

    @classmethod
    def check(cls, learner: str, params: Mapping[Any, Any]) -> Self:
        """The validated parameters of ``learner``, or a DataleverError saying what is wrong."""
        fields = cls.model_fields
        unknown = [k for k in params if k not in fields]
        if unknown:
            raise DataleverError(
                f"The {cls.owner} {learner!r} has no parameter(s) "
                f"{', '.join(sorted(_shown_key(k) for k in unknown))}.",
                f"its parameters are: {', '.join(fields) or 'none'}.",
            )
        try:
            return cls.model_validate({k: _plain(v) for k, v in params.items()})
        except ValidationError as e:
            raise cls._refusal(learner, params, e) from None

    @classmethod
    def accepts(cls, name: str) -> str:
        """What the parameter ``name`` accepts, in words ("an integer from 1 to 1024")."""
        field = cls.model_fields[name]
        extra = field.json_schema_extra
        if isinstance(extra, dict) and "accepts" in extra:
            return str(extra["accepts"])
        annotation = field.annotation
        optional = False
        if get_origin(annotation) in (UnionType, Union):  # ``int | None``: the int, or left out
            args = [a for a in get_args(annotation) if a is not type(None)]
            optional = len(args) < len(get_args(annotation))
            annotation = args[0] if len(args) == 1 else annotation
        if get_origin(annotation) is Literal:
            kind = "one of " + ", ".join(json.dumps(a) for a in get_args(annotation))
        else:
            kind = {
                bool: "true or false",
                int: "an integer",
                float: "a finite number",
                str: "a text (in quotes)",
                dict: "a table of keyword arguments",
            }.get(annotation, "a value")
            bounds = _bounds(field)
            kind = f"{kind} {bounds}" if bounds else kind
        return f"{kind}, or left out" if optional else kind

    @classmethod
    def _refusal(
        cls, learner: str, params: Mapping[Any, Any], error: ValidationError
    ) -> DataleverError:
        bad: dict[str, str] = {}  # each refused parameter once, in the order given
        across: list[str] = []
        for e in error.errors(include_url=False):
            name = e["loc"][0] if e["loc"] else None
            if name in cls.model_fields and name in params:
                bad.setdefault(str(name), f"{name} must be {cls.accepts(str(name))}")
            else:  # a rule across parameters: its own message says it all
                across.append(str(e.get("ctx", {}).get("error", e["msg"])))
        shown = [f"{n} = {show(params[n])}" for n in bad]
        given = " or ".join([", ".join(shown[:-1]), shown[-1]] if len(shown) > 1 else shown)
        problem = f"The {cls.owner} {learner!r} cannot take {given or 'these parameters'}: "
        problem += "; ".join([*bad.values(), *across]) + "."
        if not bad:
            return DataleverError(problem)
        defaults = ", ".join(_default(n, cls.model_fields[n].default) for n in bad)
        return DataleverError(problem, f"give values in those ranges (defaults: {defaults}).")


def _bounds(field: FieldInfo) -> str:
    """The range of a numeric field from its ``ge``/``gt``/``le``/``lt`` constraints."""
    c = {
        k: getattr(m, k) for m in field.metadata for k in ("ge", "gt", "le", "lt") if hasattr(m, k)
    }
    if "ge" in c and "le" in c:
        return f"from {show(c['ge'])} to {show(c['le'])}"
    lo = f"at least {show(c['ge'])}" if "ge" in c else f"above {show(c['gt'])}" if "gt" in c else ""
    hi = f"at most {show(c['le'])}" if "le" in c else f"below {show(c['lt'])}" if "lt" in c else ""
    return " and ".join(b for b in (lo, hi) if b)


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python scalar it holds (``np.int64(5)`` is the integer 5, a
    ``np.bool_`` stays a boolean), so Python callers may pass numpy values."""
    item = getattr(value, "item", None)
    if type(value).__module__ == "numpy" and callable(item) and getattr(value, "ndim", 1) == 0:
        return item()
    return value


def show(value: Any) -> str:
    """A value as a spec writes it (TOML), shortened: user text is repeated, never in full."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = _number(value)
    elif isinstance(value, int):
        digits = int(value.bit_length() * math.log10(2)) + 1
        text = str(value) if digits < _SHOWN else f"an integer of about {digits} digits"
    elif isinstance(value, str):
        text = json.dumps(value[: _SHOWN + 1])
    else:
        try:
            text = json.dumps(value, default=repr, allow_nan=True)
        except (ValueError, TypeError, RecursionError):
            text = f"a {type(value).__name__}"
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _number(value: float) -> str:
    """A float as short as it reads exactly: ``1e6`` rather than ``1000000.0``."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        return f"{mantissa}e{int(exponent)}"
    if value.is_integer() and abs(value) >= 1e5:
        mantissa, exponent = f"{value:.16e}".split("e")
        short = f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
        if len(short) < len(text) and float(short) == value:
            return short
    return text


def _default(name: str, value: Any) -> str:
    return f"{name} unset" if value is None else f"{name} = {show(value)}"


def _shown_key(key: Any) -> str:
    return key if isinstance(key, str) and len(key) <= _SHOWN else show(key)
