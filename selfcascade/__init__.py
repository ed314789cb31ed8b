"""Self-Cascade Studio: a diffusion model trained at one size generates at several times that size (Self-Cascade,
arXiv 2402.10491, ECCV 2024).

The public API:

    from selfcascade import GenerationRequest, generate, run
    result = run(GenerationRequest(prompt="a large red circle", width=256, height=256))   # the embedded model
    result.image.save("circle.png")

`generate` yields the run's events (StageStarted, StepDone, StageDone, Finished); `run` returns the Finished
one; `generate_video` runs a VideoRequest; `train` trains an adapter (Algorithm 1) from a TrainingRequest;
`load_model` loads a base model by hub id or folder. Bad input raises InvalidRequest with one line.

Layers, lowest first (each imports only from those before it; tests/test_layers.py holds it): errors, files,
models, diffusion, adapters, cascade, training, shapes, ui.
"""

from selfcascade.cascade.pipeline import Finished, StageDone, StageStarted, StepDone, generate, run
from selfcascade.cascade.request import GenerationRequest, VideoRequest
from selfcascade.cascade.video import generate_video
from selfcascade.errors import Cancelled, InvalidRequest
from selfcascade.models.loader import load_model
from selfcascade.training.loop import TrainingRequest, train

__all__ = ["Cancelled", "Finished", "GenerationRequest", "InvalidRequest", "StageDone", "StageStarted", "StepDone",
           "TrainingRequest", "VideoRequest", "generate", "generate_video", "load_model", "run", "train"]
