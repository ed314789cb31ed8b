"""Scale decomposition (paper, Sec. 3.1): base size + target size (+ a user list) -> the stage sizes.

Stage 0 keeps the base model's pixel budget with the target's aspect ratio; every later stage has at most
4x the pixels of the one before (2x per side), R = ceil(log4(target pixels / stage-0 pixels)), spaced
geometrically, and the last stage is the target. Sizes are rounded to what the UNet accepts (multiples of
vae_scale_factor * 2^down-samplings); every rounding is reported as a message. Pure: no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

Size = tuple[int, int]  # (width, height) in pixels


class InvalidRequest(ValueError):
    """A request that cannot run, with a message meant for the user."""


@dataclass(frozen=True)
class StagePlan:
    sizes: list[Size]
    messages: list[str] = field(default_factory=list)

    def chain(self) -> str:
        """Readable form, e.g. '64x64 -> 128x128 -> 256x256'."""
        return " -> ".join(f"{w}x{h}" for w, h in self.sizes)


def round_to_multiple(value: float, multiple: int) -> int:
    return max(multiple, int(round(value / multiple)) * multiple)


def parse_size(text: str) -> Size:
    """'256x192' or '256' (square) -> (256, 192)."""
    parts = text.lower().replace(" ", "").split("x")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise InvalidRequest(f"size {text!r} is not WIDTHxHEIGHT, e.g. 256x256") from None
    if len(numbers) == 1:
        numbers = numbers * 2
    if len(numbers) != 2:
        raise InvalidRequest(f"size {text!r} is not WIDTHxHEIGHT, e.g. 256x256")
    return numbers[0], numbers[1]


def parse_stage_list(text: str, target: Size) -> list[Size]:
    """'64,128,256' (longer sides; the target's aspect ratio) or '64x48,128x96' -> sizes."""
    sizes = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        if "x" in item.lower():
            sizes.append(parse_size(item))
            continue
        try:
            side = int(item)
        except ValueError:
            raise InvalidRequest(f"stage {item!r} is not a number or WIDTHxHEIGHT") from None
        if target[0] >= target[1]:
            sizes.append((side, side * target[1] / max(target[0], 1)))
        else:
            sizes.append((side * target[0] / max(target[1], 1), side))
    if not sizes:
        raise InvalidRequest("the stage list is empty")
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
    first = (math.sqrt(base_pixels * aspect), math.sqrt(base_pixels / aspect))
    first = _rounded(first, multiple, "stage 0", [])  # expected: no message for a derived size
    stages = max(1, math.ceil(math.log(target_pixels / (first[0] * first[1]), 4) - 1e-9))
    sizes = [first]
    for index in range(1, stages):
        scale = (target[0] / first[0]) ** (index / stages)
        sizes.append(_rounded((first[0] * scale, first[1] * scale), multiple, "stage", []))
    sizes.append(target)
    unique = [s for i, s in enumerate(sizes) if i == 0 or s != sizes[i - 1]]
    return StagePlan(unique, messages)
