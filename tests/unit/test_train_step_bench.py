"""bench/train_step.py's pure parts: the rows it is asked for and the one line a failed row gets in the table."""

from __future__ import annotations

import argparse
import sys

import pytest

from tests.unit.test_quality_metrics import load_bench_module

# what a row run under `accelerate launch` leaves on stderr when the worker fails: the worker's traceback,
# each line prefixed with its rank, then the launcher's own ChildFailedError
LAUNCHED_FAILURE = """\
[rank0]: Traceback (most recent call last):
[rank0]:   File "bench/train_step.py", line 141, in step
[rank0]:     accelerator.backward(loss)
[rank0]: RuntimeError: expected scalar type Float but found BFloat16
Traceback (most recent call last):
  File "accelerate/commands/launch.py", line 1029, in multi_gpu_launcher
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
============================================================
bench/train_step.py FAILED
============================================================
"""


@pytest.fixture(scope="module")
def bench():
    yield load_bench_module("train_step")
    sys.modules.pop("bench_train_step", None)


def test_a_failed_row_shows_the_workers_exception(bench) -> None:
    assert bench.failure_reason(LAUNCHED_FAILURE) == "RuntimeError: expected scalar type Float but found BFloat16"
    assert bench.failure_reason("Traceback:\ntorch.OutOfMemoryError: CUDA out of memory. Tried") == "out of memory"
    # no exception line: the last line, and never a "|" that would split the table's cell
    assert bench.failure_reason("killed\ntimed out after 100 s | again\n") == "timed out after 100 s / again"
    assert bench.failure_reason("") == "?"


def test_rows_are_parsed_and_bad_ones_named(bench) -> None:
    assert bench._parse_config("bf16:on:adamw8bit") == ("bf16", True, "adamw8bit")
    assert bench._parse_config("fp32:off:adamw") == ("fp32", False, "adamw")
    for bad in ("bf16:yes:adamw", "int8:on:adamw", "bf16:on:sgd"):
        with pytest.raises(argparse.ArgumentTypeError, match="DTYPE:on|off"):
            bench._parse_config(bad)
