"""Command-line options generated from settings declared on library dataclasses
(:func:`asmm.core.settings.setting`): one default, one help text, wherever it is used."""

from __future__ import annotations

import argparse
import dataclasses
import enum
from typing import Any

from asmm.core.settings import declared, default_of


def add_options(parser: argparse.ArgumentParser | Any, cls, *, skip: tuple[str, ...] = (),
                defaults: dict[str, Any] | None = None) -> None:
    """Add an option for every declared setting of dataclass ``cls`` (except ``skip``).

    ``defaults`` overrides a default for this command only (the help shows the one used).
    The value lands in ``args.<field name>``; :func:`config_from` builds ``cls`` from it.
    """
    defaults = defaults or {}
    for f, meta in declared(cls):
        if f.name in skip:
            continue
        default = defaults.get(f.name, default_of(f))
        flag = meta["flag"] or "--" + f.name.replace("_", "-")
        kwargs: dict[str, Any] = {"dest": f.name, "default": default}
        choices = meta["choices"]
        if isinstance(choices, type) and issubclass(choices, enum.Enum):
            choices = [c.value for c in choices]
        if isinstance(default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            parse = meta["parse"] or (type(default) if default is not None
                                      and not isinstance(default, enum.Enum) else str)
            kwargs["type"] = parse
            if choices is not None:
                kwargs["choices"] = list(choices)
            if meta["metavar"]:
                kwargs["metavar"] = meta["metavar"]
        shown = getattr(default, "value", default)
        unit = f" {meta['unit']}" if meta["unit"] and default is not None else ""
        kwargs["help"] = f"{meta['help']} (default: {shown}{unit})"
        parser.add_argument(flag, **kwargs)


def config_from(cls, args: argparse.Namespace, **overrides: Any):
    """``cls`` built from the declared settings found on ``args``, then ``overrides``."""
    kw = {f.name: getattr(args, f.name) for f, _ in declared(cls) if hasattr(args, f.name)}
    kw.update(overrides)
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in kw.items() if k in names})
