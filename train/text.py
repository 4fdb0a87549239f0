"""Prompt -> CLIP hidden states [77, D] with a small cache (the text encoder is frozen)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn


class PromptEncoder:
    def __init__(self, tokenizer, text_encoder: nn.Module, device: torch.device, cache_size: int = 256) -> None:
        self.tokenizer = tokenizer
        self.text_encoder = text_encoder
        self.device = device
        self.cache_size = cache_size
        self.max_length = int(getattr(text_encoder.config, "max_position_embeddings", 77))
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()

    @torch.no_grad()
    def _encode_one(self, prompt: str) -> torch.Tensor:
        ids = self.tokenizer(
            prompt, padding="max_length", max_length=self.max_length, truncation=True, return_tensors="pt"
        ).input_ids.to(self.device)  # [1, 77]
        return self.text_encoder(ids)[0][0]  # [77, D]

    def __call__(self, prompts: Sequence[str]) -> torch.Tensor:
        """prompts (B) -> [B, 77, D] in the text encoder's dtype."""
        rows = []
        for prompt in prompts:
            hidden = self._cache.get(prompt)
            if hidden is None:
                hidden = self._encode_one(prompt)
                self._cache[prompt] = hidden
                if len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(prompt)
            rows.append(hidden)
        return torch.stack(rows)
