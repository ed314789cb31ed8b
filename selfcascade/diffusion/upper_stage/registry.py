"""The strategies by name: the current names (after their papers, or what the project's own do), the earlier
names kept as aliases, what each costs against the plain call, and the predictor of one upper stage."""

from __future__ import annotations

from collections.abc import Callable

from selfcascade.diffusion.prediction import Predictor
from selfcascade.diffusion.upper_stage.context import StageContext, UpperStageSettings
from selfcascade.diffusion.upper_stage.demofusion import dilated
from selfcascade.diffusion.upper_stage.frequency import frequency_pyramid, frequency_split
from selfcascade.diffusion.upper_stage.hidiffusion import rau, rau_pyramid
from selfcascade.diffusion.upper_stage.scalecrafter import fouriscale, redilated


def plain(full: Predictor, native: Predictor, stage: StageContext) -> Predictor:
    """The ordinary full-size prediction (Algorithm 2 as the paper writes it)."""
    return full


STRATEGIES: dict[str, Callable[..., Predictor]] = {
    "hidiffusion-pyramid": rau_pyramid,
    "hidiffusion": rau,
    "frequency-split": frequency_split,
    "frequency-pyramid": frequency_pyramid,
    "plain": plain,
    "demofusion": dilated,
    "scalecrafter": redilated,
    "fouriscale": fouriscale,
}
DEFAULT_STRATEGY = "frequency-pyramid"
# The names strategies had before they were named after their papers: still accepted wherever a name is read
# (PNGs, presets and scripts made with them), and turned into the current name by canonical_strategy.
STRATEGY_ALIASES = {"rau-pyramid": "hidiffusion-pyramid", "rau": "hidiffusion", "dilated": "demofusion",
                    "redilated": "scalecrafter"}
STRATEGY_NAMES = (*STRATEGIES, *STRATEGY_ALIASES)  # every name accepted, current ones first


def canonical_strategy(name):
    """The current name of a strategy given by its current or earlier name; anything else unchanged (so a
    check can still refuse it with its own message)."""
    return STRATEGY_ALIASES.get(name, name) if isinstance(name, str) else name


def relative_cost(name: str, settings: UpperStageSettings | None = None) -> float:
    """UNet work of one upper-stage step relative to the plain full-size call (latent pixels processed):
    for the time estimate shown before a run."""
    refresh = (settings or UpperStageSettings()).frequency_split_refresh
    return {"frequency-split": 1 + 1 / refresh, "frequency-pyramid": 2.0, "hidiffusion-pyramid": 1.8,
            "hidiffusion": 0.8, "demofusion": 2.5, "fouriscale": 1.1}.get(canonical_strategy(name), 1.0)


def strategy_that_runs(name: str, stage: StageContext) -> str:
    """The name of what `name` runs at this stage, for the metadata: the HiDiffusion strategies fall back to
    their ordinary call below `rau_min_target_scale` (hidiffusion-pyramid is then frequency-pyramid, hidiffusion
    the plain call)."""
    name = canonical_strategy(name)
    if name in ("hidiffusion", "hidiffusion-pyramid") and max(stage.target_scale) < stage.settings.rau_min_target_scale:
        return "plain" if name == "hidiffusion" else "frequency-pyramid"
    return name


def upper_stage_predictor(name: str, full: Predictor, native: Predictor, stage: StageContext) -> Predictor:
    """The predictor for one upper stage; any strategy is the plain call when the stage is native size."""
    if stage.scale == (1, 1):
        return full
    return STRATEGIES[canonical_strategy(name)](full, native, stage)
