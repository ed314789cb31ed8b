"""Scale decomposition (paper, Sec. 3.1): base size + target size (+ a user list) -> the stage sizes.

Stage 0 keeps about the base model's pixel budget with the target's aspect ratio; every later stage has at
most 4x the pixels of the one before (2x per side), R = ceil(log4(target pixels / stage-0 pixels)), spaced
geometrically, and the last stage is the target. Sizes are what the UNet accepts (multiples of
vae_scale_factor * 2^down-samplings): derived stages are the multiples nearest the target's aspect ratio
(nearest_with_aspect), a target or user stage off the multiples is rounded with a message. Pure: no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from selfcascade.errors import InvalidRequest
from selfcascade.files.hosting import MAX_STAGES

Size = tuple[int, int]  # (width, height) in pixels


@dataclass(frozen=True)
class StagePlan:
    sizes: list[Size]
    messages: list[str] = field(default_factory=list)

    def chain(self) -> str:
        """Readable form, e.g. '64x64 -> 128x128 -> 256x256'."""
        return " -> ".join(f"{w}x{h}" for w, h in self.sizes)


# A derived stage's pixels may be this far from its budget: fewer rather than more (a stage 0 above the model's
# training size starts repeating objects, and an upper stage should not grow more than 4x).
PIXEL_RANGE = (0.66, 1.15)
UPPER_PIXEL_RANGE = (0.8, 1.2)  # an upper stage's: neither jump beside it may grow much beyond 4x
MAX_GROWTH = 4.6  # pixels of a stage over the one before, 4x (2x per side) and what rounding adds


def round_to_multiple(value: float, multiple: int) -> int:
    return max(multiple, int(round(value / multiple)) * multiple)


def _is_digits(text: str) -> bool:
    """ASCII digits (a minus sign allowed, refused later as not positive), few enough to be a size: a side
    of 10^9 px is refused by the size cap, not here."""
    digits = text[1:] if text.startswith("-") else text
    return digits.isascii() and digits.isdigit() and len(digits) <= 9


def parse_size(text: str) -> Size:
    """'256x192' or '256' (square) -> (256, 192); InvalidRequest unless both are positive whole numbers."""
    parts = text.lower().replace(" ", "").split("x")
    if len(parts) > 2 or not all(_is_digits(part) for part in parts):
        raise InvalidRequest(f"size {text[:40]!r} is not WIDTHxHEIGHT in whole pixels, e.g. 256x256")
    numbers = [int(part) for part in parts] * (3 - len(parts))
    if min(numbers) <= 0:
        raise InvalidRequest(f"size {text!r}: width and height must be positive")
    return numbers[0], numbers[1]


def parse_stage_list(text: str, target: Size) -> list[Size]:
    """'64,128,256' (longer sides; the target's aspect ratio) or '64x48,128x96' -> sizes.

    Every entry must be a positive size: an empty entry ('64,,128'), zero or a negative side is refused,
    not rounded; at most MAX_STAGES entries."""
    items = [part.strip() for part in text.split(",")]
    if not any(items):
        raise InvalidRequest("the stage list is empty")
    if not all(items):
        raise InvalidRequest(f"the stage list {text.strip()!r} has an empty entry: write sizes between the commas")
    if len(items) > MAX_STAGES:
        raise InvalidRequest(f"the stage list has {len(items)} stages: at most {MAX_STAGES} are accepted")
    sizes: list[tuple[float, float]] = []
    for item in items:
        if "x" in item.lower():
            sizes.append(parse_size(item))
            continue
        if not _is_digits(item):
            raise InvalidRequest(f"stage {item[:40]!r} is not a positive whole number of pixels or WIDTHxHEIGHT")
        side = int(item)
        if side <= 0:
            raise InvalidRequest(f"stage {item!r}: a stage's side must be positive")
        if target[0] >= target[1]:
            sizes.append((side, side * target[1] / max(target[0], 1)))
        else:
            sizes.append((side * target[0] / max(target[1], 1), side))
    return sizes


def check_size(size: Size, what: str, max_side: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise InvalidRequest(f"{what} {width}x{height}: width and height must be positive")
    if max(width, height) > max_side:
        raise InvalidRequest(f"{what} {width}x{height} is larger than the cap of {max_side} px per side")


def _rounded(size: tuple[float, float], multiple: int, what: str, messages: list[str]) -> Size:
    rounded = (round_to_multiple(size[0], multiple), round_to_multiple(size[1], multiple))
    if (float(rounded[0]), float(rounded[1])) != (float(size[0]), float(size[1])):
        shown = f"{size[0]:g}x{size[1]:g}"
        messages.append(f"{what} {shown} rounded to {rounded[0]}x{rounded[1]} (a multiple of {multiple})")
    return rounded


def plan_stages(base: Size, target: Size, multiple: int, user_sizes: list[Size] | None = None,
                max_side: int = 4096) -> StagePlan:
    """Stage sizes from `base` (the model's training size) to `target`, or from the user's list."""
    check_size(target, "target size", max_side)
    messages: list[str] = []
    target = _rounded(target, multiple, "target size", messages)
    if user_sizes:
        sizes = [_rounded(s, multiple, "stage", messages) for s in user_sizes]
        for size in sizes:
            check_size(size, "stage", max_side)
        if sizes[-1] != target:
            sizes.append(target)
        for before, after in zip(sizes, sizes[1:]):
            if after[0] < before[0] or after[1] < before[1] or after == before:
                raise InvalidRequest(f"stages must grow: {before[0]}x{before[1]} then {after[0]}x{after[1]}"
                                     f" (the last stage is the target {target[0]}x{target[1]})")
            if after[0] * after[1] > 4 * before[0] * before[1]:
                messages.append(f"stage {before[0]}x{before[1]} -> {after[0]}x{after[1]} grows more than 2x"
                                " per side; the method is tested up to 2x")
        return StagePlan(sizes, messages)

    base_pixels = base[0] * base[1]
    target_pixels = target[0] * target[1]
    if target_pixels <= base_pixels:
        return StagePlan([target], messages)
    aspect = target[0] / target[1]
    first = nearest_with_aspect(base_pixels, aspect, multiple)
    count = max(1, math.ceil(math.log(target_pixels / (first[0] * first[1]), 4) - 1e-9))
    sizes = _upper_sizes(first, target, count, multiple)
    if any(w1 * h1 > MAX_GROWTH * w0 * h0 for (w0, h0), (w1, h1) in zip(sizes, sizes[1:])):
        sizes = _upper_sizes(first, target, count + 1, multiple)  # rounding made a jump too big: one more stage
    unique = [s for i, s in enumerate(sizes) if i == 0 or s != sizes[i - 1]]
    return StagePlan(unique, messages)


def _upper_sizes(first: Size, target: Size, count: int, multiple: int) -> list[Size]:
    """Stage 0, `count` - 1 upper stages spaced geometrically in pixels at the target's aspect, the target."""
    aspect, sizes = target[0] / target[1], [first]
    for index in range(1, count):
        scale = (target[0] * target[1] / (first[0] * first[1])) ** (index / count)
        size = nearest_with_aspect(first[0] * first[1] * scale, aspect, multiple, UPPER_PIXEL_RANGE)
        if sizes[-1][0] <= size[0] <= target[0] and sizes[-1][1] <= size[1] <= target[1]:
            sizes.append(size)
    return sizes + [target]


def nearest_with_aspect(pixels: float, aspect: float, multiple: int,
                        pixel_range: tuple[float, float] = PIXEL_RANGE) -> Size:
    """The size of multiples of `multiple` with about `pixels` pixels whose width / height is nearest `aspect`.

    Rounding width and height each to the nearest multiple can change the shape a lot at small sizes (a 4:3
    target at 64x64 pixels becomes 80x48, 5:3), and every later stage would stretch what stage 0 drew to the
    target's shape. So the aspect ratio comes first: among the sizes within `pixel_range` of the budget, the
    nearest aspect, then the nearest pixel count."""
    ideal_width = math.sqrt(pixels * aspect)
    candidates = []
    for width in range(multiple, multiple * (int(ideal_width * 2 / multiple) + 2), multiple):
        exact = width / aspect / multiple  # the height for this width, in multiples: try both neighbours
        for height in {max(1, math.floor(exact)) * multiple, max(1, math.ceil(exact)) * multiple}:
            ratio = width * height / pixels
            if pixel_range[0] <= ratio <= pixel_range[1]:
                candidates.append((round(abs(math.log(width / height / aspect)), 3), abs(math.log(ratio)),
                                   (width, height)))
    if not candidates:  # a budget below one multiple per side, or an extreme aspect ratio
        return round_to_multiple(ideal_width, multiple), round_to_multiple(ideal_width / aspect, multiple)
    return min(candidates)[2]
