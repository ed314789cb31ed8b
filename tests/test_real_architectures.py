"""The real SD 2.1 and SDXL layouts (configs/, random weights) in every mode, one step per stage at
the base latent size. Slow (minutes per architecture on 2 CPU cores): `python -m pytest -m slow`."""

import pytest

from selfcascade.cascade.request import MODES

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("arch", ["sd21", "sdxl"])
def test_every_mode_runs_on_the_real_layout(arch, tmp_path):
    from benchmarks.real_architectures import build, gpu_plans, run_modes

    model = build(arch, tmp_path)
    rows = run_modes(model, list(MODES), tmp_path / arch)
    assert len(rows) == len(MODES) and all("finite" in row for row in rows)
    plans = gpu_plans(arch)
    assert len(plans) == 6  # 2048 and 4096, each untiled, tiled, tiled + offload
    tiled_4096 = float(plans[4].split("|")[-2])
    assert tiled_4096 < 24  # fits a 24 GiB GPU in float16 with tiles
