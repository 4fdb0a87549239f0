"""ZiziReferenceAttention: the window's anchor frame offered to every frame's spatial self-attention."""

from __future__ import annotations

from .comfy import reference_patch


class ZiziReferenceAttention:
    """Returns a clone of the MODEL with reference attention; the MODEL you pass in stays untouched."""

    CATEGORY = "Zizi Video/model"
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("model",)
    FUNCTION = "patch"
    DESCRIPTION = (
        "Reference-only attention, training-free: in every window the Zizi samplers and the loop controller "
        "sample, each frame's spatial self-attention also sees the keys and values of the window's anchor "
        "(the un-augmented first hint frame), so the character keeps the first frame's look. Works with Zizi "
        "temporal modules and AnimateDiff motion modules alike. Windows without an anchor (no hint image, or a "
        "plain KSampler batch) sample as without it. Replaces other packs' attn1 replace patches on this MODEL."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "An SD1.5 MODEL, usually inflated by the Zizi Temporal Model Loader."}),
                "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.05,
                                       "tooltip": "0: off (the MODEL samples exactly as without this node; on "
                                                  "a module trained with reference attention, it turns that off); "
                                                  "1: attention over each frame's own and the anchor's tokens; in "
                                                  "between, a blend of the two."}),
                "start_percent": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                            "tooltip": "Where in sampling it starts (0 = the first, noisiest step)."}),
                "end_percent": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                          "tooltip": "Where in sampling it ends (1 = the last step)."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, start_percent: float, end_percent: float) -> bool | str:
        if start_percent is not None and end_percent is not None and start_percent > end_percent:
            return f"start_percent: {start_percent} is after end_percent ({end_percent}); start must come first"
        return True

    def patch(self, model, strength: float, start_percent: float, end_percent: float):
        if start_percent > end_percent:
            raise ValueError(f"start_percent: {start_percent} is after end_percent ({end_percent})")
        try:
            return (reference_patch.with_reference_attention(model, strength, start_percent, end_percent),)
        except ValueError as e:
            raise ValueError(f"model: {e}") from None


NODE_CLASS_MAPPINGS = {"ZiziReferenceAttention": ZiziReferenceAttention}
NODE_DISPLAY_NAME_MAPPINGS = {"ZiziReferenceAttention": "Zizi Reference Attention"}
