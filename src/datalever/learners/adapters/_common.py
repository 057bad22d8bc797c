"""What every adapter of a user's model needs: import paths resolved with clear errors, the
optional library found (or the extra that installs it named), plain parameter values checked,
user code called with the seed, and the versions that decide the numbers, for scenario keys."""

from __future__ import annotations

import importlib
import inspect
import math
from importlib import metadata
from typing import Any

from datalever.core.config import show
from datalever.errors import DataleverError

#: A dotted import path (``package.module.Name``).
DOTTED = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$"
#: The import path of a function: ``package.module:function`` (or dotted).
FUNCTION_PATH = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*[:.][A-Za-z_][A-Za-z0-9_]*$"
#: How deep a parameter value may nest lists and tables.
_MAX_DEPTH = 8


def require(module: str, extra: str, purpose: str, distribution: str | None = None) -> Any:
    """The optional library ``module``, or one paragraph naming the extra that installs it
    (``distribution`` is the library's name on PyPI when it differs from the module's)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = distribution or module.split(".")[0]
        raise DataleverError(
            f"{purpose} needs the optional package {package!r}, which is not installed.",
            f"install it with pip install 'datalever[{extra}]'.",
        ) from None


def version_of(distribution: str) -> str:
    """The installed version of ``distribution`` ("unknown" when it has no metadata)."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


def resolve(path: str, what: str) -> Any:
    """The object at ``path`` (``package.module.Name`` or ``package.module:name``), or an error
    saying which part is missing. ``what`` names the thing in messages ("the algorithm")."""
    module_name, sep, attr = path.rpartition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise DataleverError(
            f"{what.capitalize()} {path!r} is not an import path.",
            'give "package.module.Name" or "package.module:name".',
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise DataleverError(
            f"{what.capitalize()} {path!r} cannot be found: the module {module_name!r} cannot "
            f"be imported ({show(str(e))}).",
            "give the full import path, install the package that provides it, or put its "
            "folder on PYTHONPATH.",
        ) from None
    except Exception as e:  # the user's module failed while importing
        raise DataleverError(
            f"Importing {module_name!r} for {what} {path!r} failed: {type(e).__name__}: "
            f"{show(str(e))}.",
            "fix the module so that it imports.",
        ) from None
    obj = getattr(module, attr, None)
    if obj is None:
        raise DataleverError(
            f"{what.capitalize()} {path!r} cannot be found: {module_name!r} has no {attr!r}.",
            "check the name's spelling and case.",
        )
    return obj


def user_function(path: str, what: str) -> Any:
    """The function at ``path`` (the user's code), or an error saying what it is instead."""
    fn = resolve(path, what)
    if not callable(fn) or inspect.isclass(fn):
        raise DataleverError(
            f"{what.capitalize()} {path!r} is not a function.",
            'give the import path of a function, "module:function".',
        )
    return fn


def code_version(fn: Any) -> str:
    """What identifies the version of ``fn``'s code: its distribution and version when it
    comes from an installed package, else a digest of its module's source (the user's own
    file), so an edited model is not matched with results stored before the edit."""
    import hashlib

    top = (getattr(fn, "__module__", None) or "").split(".")[0]
    for dist in metadata.packages_distributions().get(top, []):
        return f"{dist}=={version_of(dist)}"
    try:
        source = inspect.getsource(inspect.getmodule(fn))  # type: ignore[arg-type]
    except (OSError, TypeError):
        return "unknown"
    return "source:" + hashlib.sha256(source.encode()).hexdigest()[:16]


def check_plain(owner: str, params: dict[str, Any]) -> None:
    """Refuse parameter values that are not plain (numbers, strings, booleans, lists and tables
    of them): they are keyed and recorded as JSON."""
    for key, value in params.items():
        if not json_like(value, 0):
            raise DataleverError(
                f"The parameter {key!r} of {owner} is {show(value)}, which is not a plain value.",
                "give numbers, strings, booleans, or lists and tables of them.",
            )


def json_like(value: Any, depth: int) -> bool:
    if depth > _MAX_DEPTH:
        return False
    if value is None or isinstance(value, bool | int | str):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(json_like(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and json_like(v, depth + 1) for k, v in value.items())
    return False


def check_keywords(owner: str, target: Any, params: dict[str, Any], skip: int = 0) -> None:
    """Refuse keywords that ``target`` (a class or function) does not take; its first ``skip``
    parameters are the adapter's own (the training data)."""
    try:
        accepted = list(inspect.signature(target).parameters.values())[skip:]
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted):
        return
    names = [p.name for p in accepted if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    unknown = sorted(k for k in params if k not in names)
    if unknown:
        raise DataleverError(
            f"{owner} has no parameter(s) {', '.join(map(show, unknown))}.",
            f"its parameters are: {', '.join(names) or 'none'}.",
        )


def takes(target: Any, name: str) -> bool:
    """True when ``target`` takes a keyword ``name`` (by name or through ``**kwargs``)."""
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def failed(owner: str, doing: str, error: Exception) -> DataleverError:
    """The error for a user's model that raised while ``doing`` something."""
    return DataleverError(
        f"{owner} failed to {doing}: {type(error).__name__}: {show(str(error))}.",
        "give it parameters that fit this data, or fix the model's code.",
    )


def call(owner: str, doing: str, fn: Any, *args: Any, seed: int | None, **params: Any) -> Any:
    """``fn(*args, **params)``, with ``seed=`` when ``fn`` takes one that ``params`` leave
    unset; a failure of the user's code becomes one paragraph naming it."""
    if "seed" not in params and takes(fn, "seed"):
        params["seed"] = 0 if seed is None else seed
    try:
        return fn(*args, **params)
    except DataleverError:
        raise
    except Exception as e:
        raise failed(owner, doing, e) from None
