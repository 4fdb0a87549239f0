"""The trainer's CLIP tokenizer comes from the vocabulary shipped in train/clip_vocab, not from a ComfyUI tree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from train.clip_tokenizer import bytes_to_unicode, clip_vocab, merges_text, write_clip_tokenizer
from train.models import load_tokenizer


def test_vocab_has_clips_49408_ids_in_order() -> None:
    vocab = clip_vocab(merges_text())
    assert len(vocab) == 49408 and sorted(vocab.values()) == list(range(49408))
    assert vocab["!"] == 0 and vocab["!</w>"] == 256 and vocab["in"] == 512  # the first merge, "i n"
    assert vocab["<|startoftext|>"] == 49406 and vocab["<|endoftext|>"] == 49407


def test_byte_table_is_reversible_and_printable_first() -> None:
    table = bytes_to_unicode()
    assert sorted(table) == list(range(256)) and len(set(table.values())) == 256
    assert list(table)[:3] == [33, 34, 35] and table[ord("a")] == "a" and table[0] == chr(256)


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip_tokenizer(tmp_path_factory.mktemp("clip"))


def test_same_files_as_the_tokenizer_comfyui_ships(tokenizer_dir: Path, comfyui_dir: Path) -> None:
    shipped = comfyui_dir / "comfy" / "sd1_tokenizer"
    assert json.loads((tokenizer_dir / "vocab.json").read_text()) == json.loads((shipped / "vocab.json").read_text())
    assert (tokenizer_dir / "merges.txt").read_text() == (shipped / "merges.txt").read_text()


def test_tokenizes_a_prompt_like_clip(tokenizer_dir: Path) -> None:
    tokenizer = load_tokenizer(tokenizer_dir)
    ids = tokenizer("a red puppet dancing", padding="max_length", max_length=8, truncation=True).input_ids
    vocab = json.loads((tokenizer_dir / "vocab.json").read_text())
    expected = [49406, vocab["a</w>"], vocab["red</w>"], vocab["puppet</w>"], vocab["dancing</w>"], 49407, 49407, 49407]
    assert ids == expected
