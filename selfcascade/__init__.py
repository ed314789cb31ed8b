"""Self-Cascade Studio: a diffusion model trained at one size generates at several times that size (Self-Cascade,
arXiv 2402.10491, ECCV 2024).

The public API:

    from selfcascade import GenerationRequest, generate, run
    result = run(GenerationRequest(prompt="a large red circle", width=256, height=256))   # the embedded model
    result.image.save("circle.png")

`generate` yields the run's events (StageStarted, StepDone, StageDone, Finished); `run` returns the Finished
one; `generate_video` runs a VideoRequest; `train` trains an adapter (Algorithm 1) from a TrainingRequest;
`load_model` loads a base model by hub id or folder; `SelfCascadePipeline.from_pipe(pipe)` runs the cascade on a
diffusers pipeline the caller already has. Bad input raises InvalidRequest with one line.

Layers, lowest first (each imports only from those before it; tests/test_layers.py holds it): errors, files,
models, diffusion, adapters, cascade, training, shapes, ui.
"""

from importlib import import_module

# Loaded on first use (PEP 562), so that `python -m selfcascade` and `import selfcascade.errors` stay light:
# the command line quiets transformers and diffusers before anything imports them.
_PUBLIC = {
    "Finished": "selfcascade.cascade.pipeline", "StageDone": "selfcascade.cascade.pipeline",
    "StageStarted": "selfcascade.cascade.pipeline", "StepDone": "selfcascade.cascade.pipeline",
    "generate": "selfcascade.cascade.pipeline", "run": "selfcascade.cascade.pipeline",
    "GenerationRequest": "selfcascade.cascade.request", "VideoRequest": "selfcascade.cascade.request",
    "generate_video": "selfcascade.cascade.video", "Cancelled": "selfcascade.errors",
    "InvalidRequest": "selfcascade.errors", "load_model": "selfcascade.models.loader",
    "TrainingRequest": "selfcascade.training.loop", "train": "selfcascade.training.loop",
    "SelfCascadePipeline": "selfcascade.cascade.user_pipeline",
    "SelfCascadeOutput": "selfcascade.cascade.user_pipeline",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'selfcascade' has no attribute {name!r}")
    return getattr(import_module(_PUBLIC[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
