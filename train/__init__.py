"""Zizi Video trainer: `python -m train {preprocess,fit,export}` (see train/README.md).

    preprocess  videos / frame folders -> clips -> cached VAE latents (+ poses)   preprocess.py
    fit         frozen SD1.5 + trainable temporal layers (+ LoRA), accelerate      fit.py
    export      checkpoint -> temporal module .safetensors (+ ComfyUI LoRA)        export.py

The training convention shared with the ComfyUI samplers is in batch.py; the window/position rule
shared with the frame planner in windows.py. Imports zizi_models, never ComfyUI or nodes/.
"""
