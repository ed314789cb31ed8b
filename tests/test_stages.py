import pytest

from selfcascade.cascade.stages import parse_size, parse_stage_list, plan_stages
from selfcascade.errors import InvalidRequest


def chain(base, target, multiple=16, stages=None):
    user = parse_stage_list(stages, target) if stages else None
    return plan_stages(base, target, multiple, user).chain()


def test_square_targets_double_per_side():
    assert chain((64, 64), (256, 256)) == "64x64 -> 128x128 -> 256x256"
    assert chain((64, 64), (512, 512)) == "64x64 -> 128x128 -> 256x256 -> 512x512"
    assert chain((512, 512), (2048, 2048), 64) == "512x512 -> 1024x1024 -> 2048x2048"
    assert chain((1024, 1024), (4096, 4096), 32) == "1024x1024 -> 2048x2048 -> 4096x4096"


def test_no_larger_than_base_is_one_stage():
    assert chain((64, 64), (64, 64)) == "64x64"
    assert chain((64, 64), (32, 48)) == "32x48"


def test_each_stage_at_most_four_times_the_pixels():
    plan = plan_stages((64, 64), (400, 176), 16)
    for (w0, h0), (w1, h1) in zip(plan.sizes, plan.sizes[1:]):
        assert w1 * h1 <= 4 * w0 * h0 * 1.15  # rounding to multiples may add a little
    assert plan.sizes[-1] == (400, 176)


def test_non_square_keeps_base_pixels_and_aspect():
    plan = plan_stages((64, 64), (256, 128), 16)
    first = plan.sizes[0]
    assert first[0] * first[1] == pytest.approx(64 * 64, rel=0.25)
    assert first[0] / first[1] == pytest.approx(2.0, rel=0.01)
    assert plan.sizes[-1] == (256, 128)


def test_odd_sizes_are_rounded_with_a_message():
    plan = plan_stages((64, 64), (250, 130), 16)
    assert plan.sizes[-1] == (256, 128)
    assert any("rounded to 256x128" in message for message in plan.messages)


def test_user_list_in_sides_and_in_sizes():
    assert chain((64, 64), (256, 256), stages="64,128,256") == "64x64 -> 128x128 -> 256x256"
    assert chain((64, 64), (256, 256), stages="64, 128") == "64x64 -> 128x128 -> 256x256"
    assert chain((64, 64), (256, 128), stages="64x32,128x64") == "64x32 -> 128x64 -> 256x128"
    assert chain((64, 64), (256, 128), stages="128") == "128x64 -> 256x128"


@pytest.mark.parametrize("stages", ["128,64,256", "64,64,256", "64,512"])
def test_user_list_must_grow_to_the_target(stages):
    with pytest.raises(InvalidRequest, match="stages must grow"):
        chain((64, 64), (256, 256), stages=stages)


def test_big_jumps_are_allowed_with_a_warning():
    plan = plan_stages((64, 64), (256, 256), 16, parse_stage_list("64", (256, 256)))
    assert plan.chain() == "64x64 -> 256x256"
    assert any("more than 2x" in message for message in plan.messages)


@pytest.mark.parametrize("text", ["abc", "12x", "1x2x3", ""])
def test_bad_size_text(text):
    with pytest.raises(InvalidRequest):
        parse_size(text)


@pytest.mark.parametrize("target", [(0, 64), (-64, 64), (64, 0)])
def test_non_positive_sizes_are_refused(target):
    with pytest.raises(InvalidRequest, match="positive"):
        plan_stages((64, 64), target, 16)


def test_cap():
    with pytest.raises(InvalidRequest, match="cap"):
        plan_stages((64, 64), (8192, 64), 16, max_side=4096)


def test_bad_stage_entries():
    with pytest.raises(InvalidRequest):
        parse_stage_list("64,abc", (256, 256))
    with pytest.raises(InvalidRequest):
        parse_stage_list(" , ", (256, 256))


def test_stages_keep_the_targets_aspect_ratio():
    # Rounding each side on its own once made a 256x192 target start at 80x48 (5:3): the content stretched
    # (up to 35% over this grid; multiples of 16 px near 64x64 leave at most 16%).
    assert chain((64, 64), (256, 192)) == "64x48 -> 128x96 -> 256x192"
    assert chain((64, 64), (192, 256)) == "48x64 -> 96x128 -> 192x256"
    for width in range(96, 1025, 32):
        for height in range(96, 1025, 48):
            if not 0.5 <= width / height <= 2.0:
                continue
            sizes = plan_stages((64, 64), (width, height), 16).sizes
            target = sizes[-1][0] / sizes[-1][1]
            for (w0, h0), (w1, h1) in zip(sizes, sizes[1:]):
                assert w0 <= w1 and h0 <= h1 and w1 * h1 <= 4.6 * w0 * h0, (width, height, sizes)
            for w, h in sizes[:-1]:
                assert w / h == pytest.approx(target, rel=0.16), (width, height, sizes)
