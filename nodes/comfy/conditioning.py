"""Conditioning cut to a window: every ControlNet hint batch sliced to the window's frames."""

from __future__ import annotations


def slice_conditioning(conditioning: list, frames: list[int], input_name: str) -> list:
    """The conditioning with every ControlNet hint batch cut to ``frames`` (absolute frame indices:
    hint image i belongs to video frame i). A hint batch of 1 applies to every frame; a batch that
    does not reach the highest frame is an error naming the input."""
    sliced: dict[int, object] = {}

    def slice_control(control):
        if control is None:
            return None
        if id(control) not in sliced:
            hint = control.cond_hint_original
            copy = control.copy()
            if hint is not None and hint.shape[0] != 1:
                if hint.shape[0] <= max(frames):
                    raise ValueError(f"{input_name}: a ControlNet has {hint.shape[0]} hint images but frame {max(frames)} "
                                     "needs one; give one control image per video frame (or a single image for all)")
                copy.cond_hint_original = hint[frames]
            copy.set_previous_controlnet(slice_control(control.previous_controlnet))
            sliced[id(control)] = copy
        return sliced[id(control)]

    out = []
    for tensor, options in conditioning:
        options = options.copy()
        if "control" in options:
            options["control"] = slice_control(options["control"])
        out.append([tensor, options])
    return out


def control_hint_counts(conditioning: list) -> list[int]:
    """How many hint images each ControlNet in the conditioning carries (the whole chain)."""
    counts, seen = [], set()
    for _, options in conditioning:
        control = options.get("control")
        while control is not None and id(control) not in seen:
            seen.add(id(control))
            if control.cond_hint_original is not None:
                counts.append(int(control.cond_hint_original.shape[0]))
            control = control.previous_controlnet
    return counts
