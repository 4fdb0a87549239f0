"""Declared INT/FLOAT ranges that hold for every node of the pack, NaN included.

ComfyUI checks a widget value against its declared min/max only when the node does not name that input
in ``VALIDATE_INPUTS``, and it never refuses NaN (``nan < min`` and ``nan > max`` are both false), so a
NaN float reaches the node and torch. ``with_declared_ranges`` gives a node class a ``VALIDATE_INPUTS``
that names every INT/FLOAT widget input, checks each against its declared range itself (NaN, infinities
and non-numbers refused with a line naming the input), then runs the node's own ``VALIDATE_INPUTS``, if
any, with the inputs it names. COMBO inputs are never named, so ComfyUI keeps checking those.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from .window_sampling import out_of_range

NUMBER_TYPES = ("INT", "FLOAT")


def numeric_widget_inputs(input_types: dict) -> list[str]:
    """Names of the INT/FLOAT inputs that are widgets (not ``forceInput`` sockets), in declaration order."""
    declared = {**input_types.get("required", {}), **input_types.get("optional", {})}
    return [name for name, spec in declared.items()
            if isinstance(spec, tuple | list) and spec and spec[0] in NUMBER_TYPES
            and not (len(spec) > 1 and spec[1].get("forceInput"))]


def _own_validator(cls: type) -> tuple[Callable | None, list[str], set[str]]:
    """The class's own VALIDATE_INPUTS function, the inputs it names, and those it requires (no default)."""
    own = cls.__dict__.get("VALIDATE_INPUTS")
    if own is None:
        return None, [], set()
    function = own.__func__ if isinstance(own, classmethod) else own
    spec = inspect.getfullargspec(function)
    if spec.varkw is not None:
        raise TypeError(f"{cls.__name__}.VALIDATE_INPUTS takes **kwargs, which switches off every ComfyUI input check; "
                        "name the inputs it checks")
    args = [a for a in spec.args if a != "cls"]
    return function, args, set(args[:len(args) - len(spec.defaults or ())])


def with_declared_ranges(cls: type) -> type:
    """Give ``cls`` a VALIDATE_INPUTS that checks the declared range of every INT/FLOAT widget input
    (values fed by links arrive as None and are skipped) before the node's own checks."""
    numeric = numeric_widget_inputs(cls.INPUT_TYPES())
    if not numeric:
        return cls
    own, own_args, own_required = _own_validator(cls)
    names = list(dict.fromkeys(own_args + numeric))

    def validate(node_class: type, **values: object) -> bool | str:
        problem = out_of_range(node_class.INPUT_TYPES(), **{n: values.get(n) for n in numeric})
        if problem:
            return problem
        if own is None or not own_required <= values.keys():  # a missing input is reported by ComfyUI
            return True
        return own(node_class, **{n: values[n] for n in own_args if n in values})

    # ComfyUI reads the argument names with inspect.getfullargspec, which honours __signature__
    keyword = inspect.Parameter.POSITIONAL_OR_KEYWORD
    validate.__signature__ = inspect.Signature(
        [inspect.Parameter("node_class", keyword)] + [inspect.Parameter(n, keyword, default=None) for n in names])
    validate.__doc__ = f"Declared ranges of {', '.join(numeric)}, then {cls.__name__}'s own checks."
    cls.VALIDATE_INPUTS = classmethod(validate)
    return cls
