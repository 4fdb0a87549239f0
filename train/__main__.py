"""Command line: `python -m train {preprocess,fit,export,puppet} ...` (also `accelerate launch -m train fit ...`)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

logger = logging.getLogger("train")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m train", description="Zizi Video trainer (temporal layers + LoRA).")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    fit = sub.add_parser("fit", help="train the temporal layers")
    fit.add_argument("--config", "-c", help="YAML config (see train/configs/)")
    fit.add_argument("--set", "-s", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config key, e.g. --set optimizer.lr=3e-5 (repeatable)")
    fit.add_argument("--resume", help="'latest' (newest checkpoint of output_dir, if any) or a checkpoint folder")
    fit.add_argument("--allow-config-change", action="store_true",
                     help="resume even if the config changed in what is trained (recorded in the checkpoint)")
    fit.add_argument("--print-config", action="store_true", help="print the resolved config and exit")

    export = sub.add_parser("export", help="checkpoint -> temporal module .safetensors (+ LoRA)")
    export.add_argument("checkpoint", help="a checkpoint folder, or a run folder (its newest checkpoint)")
    export.add_argument("--output", "-o", required=True, help="temporal module file to write (.safetensors)")
    export.add_argument("--ema", action="store_true", help="export the EMA weights")
    export.add_argument("--lora", metavar="PATH", help="also write the run's LoRA (kohya format for ComfyUI) here")
    export.add_argument("--dtype", default="fp16", choices=["fp16", "bf16", "fp32"])

    puppet = sub.add_parser("puppet", help="build the shipped small puppet model from nothing (all stages, resumable)")
    puppet.add_argument("--config", "-c", default="train/configs/puppet.yaml")
    puppet.add_argument("--set", "-s", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override puppet.* or fit.* keys, e.g. --set fit.max_steps=100")
    puppet.add_argument("--stop-after", choices=["clips", "base", "dataset", "fit"], help="stop after this stage")

    pre = sub.add_parser("preprocess", help="videos / frame folders -> cached latent clips")
    pre.add_argument("input", help="a folder of videos (mp4/webm/mov/...) and/or frame folders, or one video")
    pre.add_argument("output", help="dataset folder (index.json + shards); an existing one is resumed")
    pre.add_argument("--pretrained", required=True, help="SD1.5 diffusers folder or single-file checkpoint (VAE)")
    pre.add_argument("--fps", type=float, default=8.0)
    pre.add_argument("--size", type=int, default=512, help="square frame size (multiple of 8)")
    pre.add_argument("--trim-head", type=float, default=0.0, help="seconds dropped at the start")
    pre.add_argument("--trim-tail", type=float, default=0.0, help="seconds dropped at the end")
    pre.add_argument("--clip-frames", type=int, default=64, help="longest clip (longer sources are split)")
    pre.add_argument("--min-frames", type=int, default=16, help="shortest clip kept")
    pre.add_argument("--frames-fps", type=float, default=24.0, help="frame rate of frame-folder sources")
    pre.add_argument("--caption", default="", help="default caption (<video>.txt / caption.txt sidecars win)")
    pre.add_argument("--pose", default="none", choices=["none", "mediapipe", "openpose", "dwpose"])
    pre.add_argument("--encode-batch", type=int, default=8)
    pre.add_argument("--shard-mb", type=float, default=256.0)
    pre.add_argument("--device", default="auto")
    return parser


def _setup_logging(verbose: bool) -> None:
    rank = os.environ.get("RANK") or os.environ.get("LOCAL_RANK")
    prefix = f"[rank {rank}] " if rank not in (None, "0") else ""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format=f"%(asctime)s {prefix}%(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("PIL", "matplotlib", "h5py"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _fit(args: argparse.Namespace) -> int:
    import yaml

    from .config import load_config, to_dict

    config = load_config(args.config, args.overrides)
    if args.print_config:
        sys.stdout.write(yaml.safe_dump(to_dict(config), sort_keys=False))
        return 0
    from .fit import fit

    result = fit(config, resume=args.resume, allow_config_change=args.allow_config_change)
    if os.environ.get("RANK", "0") == "0":
        sys.stdout.write(f"trained to step {result.step}; checkpoints in {result.output_dir / 'checkpoints'}\n")
    return 0


def _export(args: argparse.Namespace) -> int:
    from .export import export

    result = export(args.checkpoint, args.output, ema=args.ema, lora=args.lora, dtype=args.dtype)
    sys.stdout.write(f"{result.temporal}\n" + (f"{result.lora}\n" if result.lora else ""))
    return 0


def _puppet(args: argparse.Namespace) -> int:
    from .puppet import run_puppet

    for stage, path in run_puppet(args.config, args.overrides, args.stop_after).items():
        sys.stdout.write(f"{stage}: {path}\n")
    return 0


def _preprocess(args: argparse.Namespace) -> int:
    from .preprocess import PreprocessOptions, preprocess

    options = PreprocessOptions(
        input=args.input, output=args.output, pretrained=args.pretrained, fps=args.fps, size=args.size,
        trim_head=args.trim_head, trim_tail=args.trim_tail, clip_frames=args.clip_frames, min_frames=args.min_frames,
        frames_fps=args.frames_fps, caption=args.caption, pose=args.pose, encode_batch=args.encode_batch,
        shard_mb=args.shard_mb, device=args.device,
    )
    report = preprocess(options)
    sys.stdout.write(f"{report.clips} clips from {len(report.processed)} sources; {len(report.skipped)} skipped; "
                     f"{len(report.already_done)} already done\n")
    for source, reason in report.skipped.items():
        sys.stdout.write(f"  skipped {source}: {reason}\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _setup_logging(args.verbose)
    from .checkpoint import CheckpointError
    from .config import ConfigError
    from .optim import OptimizerUnavailable

    try:
        commands = {"fit": _fit, "export": _export, "preprocess": _preprocess, "puppet": _puppet}
        return commands[args.command](args)
    except (ConfigError, OptimizerUnavailable) as err:
        sys.stderr.write(f"error: {err}\n")
        return 2
    except (CheckpointError, FileNotFoundError, ValueError) as err:
        if args.verbose:  # the traceback, for bug reports
            raise
        sys.stderr.write(f"error: {err}\n")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
