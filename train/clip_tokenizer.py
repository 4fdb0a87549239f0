"""SD1.5's CLIP tokenizer files from the vocabulary shipped in ``train/clip_vocab/`` (no ComfyUI tree, no hub).

CLIP's vocabulary is fully determined by its BPE merge list: the 256 byte symbols, the same with ``</w>``,
one token per merge, then ``<|startoftext|>`` and ``<|endoftext|>`` (49,408 ids for SD1.5's tokenizer).
``write_clip_tokenizer(folder)`` writes the four files ``transformers.CLIPTokenizer`` reads.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

VOCAB_DIR = Path(__file__).resolve().parent / "clip_vocab"
MERGES_FILE = VOCAB_DIR / "merges.txt.gz"
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
TOKENIZER_FILES = ("vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json")


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table, in CLIP's order: the printable bytes
    (mapped to themselves) first, then the others in byte order, mapped to chr(256), chr(257), ..."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return {**{b: chr(b) for b in printable}, **{b: chr(256 + i) for i, b in enumerate(others)}}


def merges_text() -> str:
    return gzip.decompress(MERGES_FILE.read_bytes()).decode("utf-8")


def clip_vocab(merges: str) -> dict[str, int]:
    """token -> id, built the way CLIP's tokenizer builds it from its merge list (first line: a version header)."""
    pairs = [line.split() for line in merges.split("\n")[1:] if line]
    symbols = list(bytes_to_unicode().values())
    tokens = [*symbols, *(s + "</w>" for s in symbols), *("".join(pair) for pair in pairs), BOS, EOS]
    return {token: i for i, token in enumerate(tokens)}


def _special(token: str) -> dict:
    return {"content": token, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}


def write_clip_tokenizer(folder: str | Path) -> Path:
    """Write vocab.json, merges.txt and the two tokenizer configs into ``folder``; returns it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    merges = merges_text()
    (folder / "merges.txt").write_text(merges, encoding="utf-8")
    (folder / "vocab.json").write_text(json.dumps(clip_vocab(merges), ensure_ascii=False), encoding="utf-8")
    special = {"bos_token": _special(BOS), "eos_token": _special(EOS), "pad_token": EOS, "unk_token": _special(EOS)}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=1))
    config = {"add_prefix_space": False, "do_lower_case": True, "errors": "replace", "model_max_length": 77,
              "tokenizer_class": "CLIPTokenizer", **special}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=1))
    return folder
