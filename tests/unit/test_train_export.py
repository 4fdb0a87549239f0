"""export: checkpoint -> temporal module file with metadata, equal to the trained (or EMA) weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from train.__main__ import main
from train.config import load_config
from train.export import export
from train.fit import fit
from train.synthetic import ensure_dataset
from zizi_models.temporal import load_temporal_model, read_temporal_state

TINY = Path(__file__).resolve().parents[2] / "train" / "configs" / "tiny_cpu.yaml"


pytestmark = pytest.mark.usefixtures("one_torch_thread")



@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, tiny_sd15_path: Path) -> Path:
    data = ensure_dataset(tmp_path_factory.getbasetemp() / "zizi_train_dataset", tiny_sd15_path)
    output = tmp_path_factory.mktemp("export_run")
    fit(load_config(TINY, [f"data.dataset={data}", f"model.pretrained={tiny_sd15_path}", f"output_dir={output}",
                           "max_steps=2", "checkpoint.every=2", "data.batch_size=1", "ema.decay=0.5",
                           "logging.progress_bar=false", "logging.tensorboard=false"]))
    return output


def test_export_writes_the_trained_weights_with_metadata(run: Path, tmp_path: Path) -> None:
    checkpoint = run / "checkpoints" / "step_0000002"
    result = export(run, tmp_path / "zizi_temporal.safetensors", dtype="fp32")  # a run folder -> newest checkpoint
    assert result.checkpoint == checkpoint
    model = load_temporal_model(result.temporal)
    state = read_temporal_state(result.temporal)
    meta = state.metadata
    assert meta["trained_window"] == 4 and meta["snr_range"] == [0.25, 4.0] and meta["steps"] == 2
    assert meta["trained_stride"] == {"starter": [1], "extrapolate": [1, 2], "interpolate": [1],
                                      "interpolate_outer": [1, 2]}
    assert meta["anchor_gap"] == 2 and meta["ema"] is False and meta["exported_from"] == "step_0000002"
    assert meta["training_config"]["optimizer"]["lr"] == pytest.approx(1e-3)

    trained = {k[len("temporal."):]: v for k, v in load_file(str(checkpoint / "model.safetensors")).items()
               if k.startswith("temporal.")}  # what accelerate saved of the live training weights
    exported = model.state_dict()
    assert exported.keys() == trained.keys()
    assert all(torch.equal(exported[k], trained[k]) for k in trained)
    moved = [k for k in trained if "proj_out" in k and trained[k].abs().sum() > 0]
    assert moved, "training did not change the zero-initialised proj_out layers"

    half = load_file(str(export(checkpoint, tmp_path / "half.safetensors").temporal))  # default fp16
    assert all(v.dtype == torch.float16 for v in half.values())


def test_export_ema(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    checkpoint = run / "checkpoints" / "step_0000002"
    assert main(["export", str(checkpoint), "-o", str(tmp_path / "ema.safetensors"), "--ema", "--dtype", "fp32"]) == 0
    assert "ema.safetensors" in capsys.readouterr().out
    model = load_temporal_model(tmp_path / "ema.safetensors")
    assert read_temporal_state(tmp_path / "ema.safetensors").metadata["ema"] is True
    shadow = torch.load(checkpoint / "custom_checkpoint_2.pkl", weights_only=False)["shadow"]
    params = dict(model.named_parameters())
    assert {f"temporal.{k}" for k in params} == set(shadow)
    assert all(torch.equal(params[k], shadow[f"temporal.{k}"]) for k in params)
    trained = load_file(str(checkpoint / "model.safetensors"))
    assert any(not torch.equal(shadow[k], trained[k]) for k in shadow)  # EMA differs from the live weights


def test_export_without_lora_or_checkpoint_is_a_clear_error(run: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="did not train a LoRA"):
        export(run, tmp_path / "t.safetensors", lora=tmp_path / "l.safetensors")
    with pytest.raises(FileNotFoundError, match="not a checkpoint folder"):
        export(tmp_path, tmp_path / "t.safetensors")
