"""A request resolved against a loaded model, once: everything the stage loop reads and nothing it decides.

The request holds what the user asked for (None: "the default"); the model holds its family's measured
defaults (upper-stage strategy, anchoring weight and band, pivot consensus). `resolve_run` joins them before
the first stage, so the loop of Algorithm 2 (selfcascade.cascade.pipeline) and the time estimate read one
answer instead of asking the request stage by stage.
"""

from __future__ import annotations

from dataclasses import dataclass

from selfcascade.cascade.request import GenerationRequest, VideoRequest
from selfcascade.cascade.stages import Size, StagePlan
from selfcascade.diffusion.consensus import views_that_run
from selfcascade.diffusion.upper_stage import UpperStageSettings, canonical_strategy
from selfcascade.models.base import DiffusionModel


@dataclass(frozen=True)
class RunPlan:
    """One run, resolved. `stages` is the scale decomposition (Sec. 3.1 of the paper); the rest applies to the
    stages it names: `guidance` to stage 0, `upper_guidance` to the stages that refine a pivot."""

    stages: StagePlan
    strategy: str  # upper-stage denoising strategy of the stages above the model's native size
    settings: UpperStageSettings  # that strategy's and anchoring's tunables
    guidance: float  # classifier-free guidance of stage 0 (and of direct sampling)
    upper_guidance: float  # ... of the stages that refine a pivot
    anchor: float  # weight of the pivot's low band at the upper stages (0: off)
    anchor_sigma: float  # width (latent px) of that band
    consensus: int  # clean estimates averaged into stage 0's pivot (0: none)
    pivot_upsampling: str  # "latent" (the paper's bilinear `up`) or "pixel" (decode, Lanczos, encode)
    adapter: str | None  # the tuned mode's trained upsamplers (None in the other modes)
    free_init: int  # FreeInit passes a video's stage 0 adds (0 for images)
    motion: str | None  # the direction a video's stage 0 is steered to (None: not steered)

    @property
    def sizes(self) -> list[Size]:
        return self.stages.sizes

    def guidance_for(self, has_pivot: bool) -> float:
        return self.upper_guidance if has_pivot else self.guidance


def resolve_run(request: GenerationRequest, model: DiffusionModel, pivot_image: bool = False) -> RunPlan:
    """Check `request` and resolve each of its defaults against `model` (raises InvalidRequest like a run).

    Direct sampling has no pivot: no anchoring, no consensus, and the plain strategy unless one is asked for,
    so the `direct` baseline is the paper's plain direct sampling. `pivot_image`: stage 0 is the user's image
    (no consensus: it is not sampled)."""
    stages = request.plan(model.base_size, model.size_multiple)
    direct = request.mode == "direct"
    video = isinstance(request, VideoRequest)
    settings = request.upper_stage_settings()
    pivot_upsampling = request.pivot_upsampling()
    # The model's own narrower band was measured with pixel pivots; a bilinear latent pivot carries blocky
    # artefacts in that band, and anchoring them painted off-colour patches (docs/experiments.md).
    narrow = model.default_anchor_sigma is not None and pivot_upsampling == "pixel"
    consensus = request.consensus if request.consensus is not None else (0 if direct else model.default_consensus)
    return RunPlan(
        stages=stages,
        strategy=canonical_strategy(request.upper) or ("plain" if direct else model.default_upper_stage),
        settings=settings,
        guidance=float(request.guidance),
        upper_guidance=request.stage_guidance(has_pivot=True),
        anchor=float(request.anchor) if request.anchor is not None else (0.0 if direct else model.default_anchor),
        anchor_sigma=model.default_anchor_sigma if narrow else settings.anchor_sigma,
        consensus=views_that_run(int(consensus), len(stages.sizes), video, pivot_image),
        pivot_upsampling=pivot_upsampling,
        adapter=request.tuned_adapter() if request.mode == "tuned" else None,
        free_init=request.free_init_passes() if video else 0,
        motion=request.motion_direction() if video else None,
    )
