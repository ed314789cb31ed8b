"""The frozen model's side of Algorithm 1, computed once per distinct crop and caption.

For a crop x0 with caption c the loss needs three things from frozen weights only:
    z0 = E(x0)                                  the crop's latents (VAE encoder, posterior mean)
    h_{n,0} = skips(E(down_2x(x0)), t = 0, c)   the pivot's encoder features (paper Eq. 6)
    c                                           the caption's embeddings
and, for the restore objective, up(E(down_2x(x0))): the pivot brought to the crop's size as an upper stage of
the cascade brings it (cascade.upsample_pivot: "pixel" decodes, Lanczos, encodes; "latent" is bilinear).
None of them depends on the upsamplers, the timestep or the noise. A crop and caption met again (images at
the stage size have one crop each, and captions repeat) reuse the tensors computed the first time: the same
numbers, only the frozen passes are skipped. The store is bounded (SELFCASCADE_TRAIN_CACHE_MB); once full,
new crops are computed every time, as without it. Only the skips the upsamplers read are kept.

For a video model the unit is a clip, not a frame (`group` = frames): its motion layers mix the frames, so
the pivot's skips exist only for a whole clip, and a clip is stored and reused whole.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from selfcascade.adapters.upsampler import encoder_skips
from selfcascade.cascade.pipeline import upsample_pivot
from selfcascade.models.base import Conditioning, DiffusionModel
from selfcascade.models.vae import encode_mean

CACHE_MB = int(os.environ.get("SELFCASCADE_TRAIN_CACHE_MB", "1024"))


def freeze_base_model(model: DiffusionModel) -> list[torch.nn.Module]:
    """UNet, VAE and text encoders: no gradients (none flow into them, none are stored). Returns them."""
    modules = [model.unet, model.vae]
    modules += [part for name in ("text_encoder", "text_encoder_2")
                if (part := getattr(model.pipeline, name, None)) is not None]
    for module in modules:
        module.requires_grad_(False)
    return modules


@dataclass
class FrozenBatch:
    z0: torch.Tensor  # (B, C, h, w) latents of the crops
    skips: list[torch.Tensor | None]  # the pivot's skip features at t = 0; None where no upsampler reads
    conditioning: Conditioning
    pivot_up: torch.Tensor | None = None  # restore objective: the pivot as an upper stage starts from it


def _rows(conditioning: Conditioning) -> list[Conditioning]:
    """One Conditioning per batch row (SDXL's pooled embeddings ride in `extra`)."""
    def row(value, i):
        return value[i:i + 1] if isinstance(value, torch.Tensor) else value

    return [Conditioning(row(conditioning.positive, i), row(conditioning.negative, i),
                         {key: row(value, i) for key, value in conditioning.extra.items()})
            for i in range(conditioning.positive.shape[0])]


def _stack(rows: list[Conditioning]) -> Conditioning:
    def cat(values):
        return torch.cat(values) if isinstance(values[0], torch.Tensor) else values[0]

    return Conditioning(cat([r.positive for r in rows]), cat([r.negative for r in rows]),
                        {key: cat([r.extra[key] for r in rows]) for key in rows[0].extra})


def _nbytes(value) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, Conditioning):
        return sum(_nbytes(v) for v in (value.positive, value.negative, *value.extra.values()))
    if isinstance(value, (list, tuple)):
        return sum(_nbytes(v) for v in value)
    return 0


def _to(value, device, copy: bool = False):
    """Tensors inside `value` moved to `device` (`copy`: as compact copies, not views of a batch)."""
    if isinstance(value, torch.Tensor):
        return value.to(device, copy=copy)
    if isinstance(value, Conditioning):
        return Conditioning(_to(value.positive, device, copy), _to(value.negative, device, copy),
                            {key: _to(v, device, copy) for key, v in value.extra.items()})
    if isinstance(value, (list, tuple)):
        return type(value)(_to(v, device, copy) for v in value)
    return value


def _first_missing(keys: list, found: dict) -> list[int]:
    """Batch rows whose key was not found, each key once (a crop drawn twice is computed once)."""
    first: dict = {}
    for i, key in enumerate(keys):
        if found[key] is None:
            first.setdefault(key, i)
    return list(first.values())


class _Store:
    """A dict that stops taking entries when the shared byte budget is spent (kept in CPU RAM, not on a GPU)."""

    def __init__(self, budget: dict):
        self.budget, self.entries = budget, {}
        self.hits = self.lookups = 0

    def get(self, key):
        self.lookups += 1
        value = self.entries.get(key)
        self.hits += value is not None
        return value

    def put(self, key, value) -> None:
        size = _nbytes(value)
        if key not in self.entries and size <= self.budget["left"]:
            self.entries[key] = _to(value, "cpu", copy=True)
            self.budget["left"] -= size


class FrozenFeatures:
    """z0, the pivot's skips and the conditioning of a batch, reusing what earlier batches computed.

    `keep`: indices of the skips the upsamplers read (others are dropped); `budget_mb`: 0 computes all every
    time (no reuse), the default is SELFCASCADE_TRAIN_CACHE_MB; `group`: rows per unit (a video's frames).
    """

    def __init__(self, model: DiffusionModel, keep: tuple[int, ...] | None = None, budget_mb: int | None = None,
                 group: int = 1, restore: str | None = None):
        self.model, self.keep, self.group = model, None if keep is None else set(keep), group
        self.restore = restore  # restore objective: how the cascade up-samples the pivot ("pixel", "latent")
        budget = {"left": (CACHE_MB if budget_mb is None else budget_mb) * 2**20}  # shared by the three
        self.latents, self.skips, self.texts = _Store(budget), _Store(budget), _Store(budget)

    def __call__(self, pixels: torch.Tensor, captions: list[str]) -> FrozenBatch:
        """`pixels`: (B, 3, H, W) in [-1, 1] (CPU, as the dataset makes them); `captions`: B strings.
        With `group` g, B is a whole number of units of g rows, each unit under one caption."""
        units = pixels.cpu().reshape(-1, self.group, *pixels.shape[1:])
        keys = [hashlib.blake2b(u.contiguous().numpy().tobytes(), digest_size=16).digest() for u in units]
        captions = captions[:: self.group]
        texts = self._conditioning(captions)
        latents = self._latents(units, keys)
        skips = self._skips(keys, captions, latents, texts)
        device = self.model.device
        z0 = torch.cat([latents[k][0] for k in keys]).to(device)
        levels = [None if column[0] is None else torch.cat(column).to(device) for column in zip(*skips)]
        pivot_up = torch.cat([latents[k][2] for k in keys]).to(device) if self.restore else None
        return FrozenBatch(z0, levels, _stack(self._per_row(texts)), pivot_up)

    def _per_row(self, texts: list[Conditioning]) -> list[Conditioning]:
        """A unit's conditioning once per row (a video model's folded frames each carry the caption)."""
        return [text for text in texts for _ in range(self.group)]

    def hit_rate(self) -> float:
        """Share of crop lookups that skipped the VAE encodes (for the training log)."""
        return self.latents.hits / self.latents.lookups if self.latents.lookups else 0.0

    def _conditioning(self, captions: list[str]) -> list[Conditioning]:
        found = {c: self.texts.get(c) for c in dict.fromkeys(captions)}
        missing = [c for c, value in found.items() if value is None]
        if missing:
            for caption, row in zip(missing, _rows(self.model.encode_prompt(missing, "", guided=False))):
                found[caption] = row
                self.texts.put(caption, row)
        return [_to(found[c], self.model.device) for c in captions]

    def _latents(self, units: torch.Tensor, keys: list[bytes]) -> dict:
        """key -> (z0 rows, pivot rows): the unit's crops and their 2x down-sampled copies through the VAE."""
        found = {k: self.latents.get(k) for k in dict.fromkeys(keys)}
        missing = _first_missing(keys, found)
        if missing:
            model, g = self.model, self.group
            batch = units[missing].flatten(0, 1).to(model.device)
            # The pivot is the down-sampled ground truth (paper Sec. 3.3), encoded like the crop.
            small = F.interpolate(batch, scale_factor=0.5, mode="bilinear", antialias=True, align_corners=False)
            z0 = encode_mean(model.vae, batch, tiled=False).to(model.dtype)
            pivot = encode_mean(model.vae, small, tiled=False).to(model.dtype)
            # restore: the pivot as an upper stage of this model's defaults starts from it
            size = (batch.shape[-1], batch.shape[-2])
            rows = [z0, pivot] + ([upsample_pivot(model, pivot, size, self.restore)] if self.restore else [])
            for row, i in enumerate(missing):
                found[keys[i]] = tuple(r[row * g:(row + 1) * g] for r in rows)
                self.latents.put(keys[i], found[keys[i]])
        return {k: _to(v, self.model.device) for k, v in found.items()}

    def _skips(self, keys, captions, latents, texts) -> list[list[torch.Tensor | None]]:
        """Per unit: the pivot's skip features at t = 0 under its caption (cross-attention reads the caption)."""
        pairs = list(zip(keys, captions))
        found = {pair: self.skips.get(pair) for pair in dict.fromkeys(pairs)}
        missing = _first_missing(pairs, found)
        if missing:
            g = self.group
            pivots = torch.cat([latents[keys[i]][1] for i in missing])
            conditioning = _stack(self._per_row([texts[i] for i in missing]))
            zero = torch.zeros(len(pivots), dtype=torch.long, device=pivots.device)
            with torch.no_grad():
                features = encoder_skips(self.model, pivots, zero, conditioning)
            for row, i in enumerate(missing):
                kept = [None if self.keep is not None and n not in self.keep else f[row * g:(row + 1) * g]
                        for n, f in enumerate(features)]
                found[pairs[i]] = kept
                self.skips.put(pairs[i], kept)
        return [found[pair] for pair in pairs]
