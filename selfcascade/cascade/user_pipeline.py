"""Self-Cascade on the diffusers pipeline a user already has: `SelfCascadePipeline.from_pipe(pipe)`.

    from diffusers import StableDiffusionPipeline
    from selfcascade import SelfCascadePipeline

    pipe = StableDiffusionPipeline.from_single_file("my-model.safetensors")
    pipe.load_lora_weights("my-lora")                     # optional: LoRAs reach every stage
    cascade = SelfCascadePipeline.from_pipe(pipe)         # shares pipe's UNet, VAE, text encoders
    images = cascade("a castle on a hill", height=2048, width=2048).images

The same cascade as the CLI and the app (selfcascade.cascade.pipeline.generate): this class only turns
diffusers-style arguments into requests and the events back into images.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

import numpy as np
import PIL.Image
import torch
from diffusers.utils import BaseOutput

from selfcascade.cascade.batch import batch_jobs
from selfcascade.cascade.fields import request_from_fields
from selfcascade.cascade.pipeline import Finished, StageDone, StepDone, generate
from selfcascade.cascade.presets import request_defaults
from selfcascade.cascade.request import GenerationRequest
from selfcascade.errors import InvalidRequest
from selfcascade.files.images import load_user_image
from selfcascade.models.base import DiffusionModel
from selfcascade.models.loader import load_model, wrap_pipeline
from selfcascade.models.lora import lora_scale
from selfcascade.models.names import is_embedded

OUTPUT_TYPES = ("pil", "np", "latent")


@dataclass
class SelfCascadeOutput(BaseOutput):
    """`images`: PIL images, an (N, H, W, 3) float array in [0, 1] ("np"), or the final latents ("latent");
    `metadata`: each image's record (what every setting became, as written into its PNG)."""

    images: list | np.ndarray | torch.Tensor
    metadata: list[dict] = field(default_factory=list)


class SelfCascadePipeline:
    """Self-Cascade (arXiv 2402.10491) around one loaded Stable Diffusion 1.x/2.x or SDXL model.

    Make one with `from_pipe(pipe)` (the caller's pipeline, shared), or `from_pretrained(id_or_folder)`
    ("embedded": the model this project ships). Calling it generates at any size above the model's own."""

    def __init__(self, model: DiffusionModel):
        self.model = model
        self._interrupt = False

    @classmethod
    def from_pipe(cls, pipe, name: str | None = None) -> SelfCascadePipeline:
        """Wrap the caller's `StableDiffusionPipeline` / `StableDiffusionXLPipeline`, sharing its components."""
        return cls(wrap_pipeline(pipe, name))

    @classmethod
    def from_pretrained(cls, model: str = "embedded", *, dtype: str | torch.dtype = "auto", vae: str | None = None,
                        offload: str = "auto", config: str | None = None) -> SelfCascadePipeline:
        """Load a hub id, diffusers folder ("embedded": the shipped model) or single-file checkpoint
        (.safetensors; `config`: a diffusers folder or hub id of its family, for its configs) as the CLI does."""
        return cls(load_model(None if is_embedded(model) else model, dtype, vae, offload, config))

    @property
    def pipe(self):
        """The wrapped diffusers pipeline (the caller's own object with `from_pipe`)."""
        return self.model.pipeline

    def __getattr__(self, name: str):  # unet, vae, scheduler, ...: the wrapped pipeline's
        if name in ("model", "_interrupt"):
            raise AttributeError(name)
        return getattr(self.model.pipeline, name)

    @property
    def interrupt(self) -> bool:
        return self._interrupt

    @torch.no_grad()
    def __call__(self, prompt: str | list[str], negative_prompt: str | list[str] | None = None,
                 height: int | None = None, width: int | None = None, num_inference_steps: int | None = None,
                 guidance_scale: float | None = None, num_images_per_prompt: int = 1,
                 generator: torch.Generator | list[torch.Generator] | None = None, output_type: str = "pil",
                 callback_on_step_end=None, cross_attention_kwargs: dict | None = None, *,
                 stages: str | list[int] | None = None, mode: str = "tuning-free", adapter: str | None = None,
                 strength: float | None = None, image=None, **settings) -> SelfCascadeOutput:
        """Generate `num_images_per_prompt` images per prompt at `width` x `height` (default: twice the model's
        native size per side) by Self-Cascade's Algorithm 2.

        stages: the scale decomposition ('64,128,256' or a list of sides; None: automatic). mode: "tuning-free",
        "tuned" (with `adapter`, trained upsamplers), "direct" (plain direct sampling, the baseline) or
        "hires-fix". strength: K/T, how far each upper stage re-noises its pivot. image: a picture (PIL or
        path) to upscale: it becomes the first stage's pivot. generator: its initial seed is the first image's
        seed; image k of the batch uses seed + k (a list of generators: the first one's). Without one a
        random seed is drawn (each image's record holds it). callback_on_step_end(pipe, step, timestep,
        {"latents": ...}) is called after every denoising step of every stage (`step` counts across the
        stages of one image); setting `pipe._interrupt = True` in it stops the run (Cancelled).
        cross_attention_kwargs={"scale": s}: the LoRAs' scale for this call. Other keyword arguments are
        request settings (upper, anchor, upper_guidance, consensus, scheduler, pivot_up, vae_tiling, seed).
        Raises InvalidRequest with one line for bad arguments.
        """
        if output_type not in OUTPUT_TYPES:
            raise InvalidRequest(f"output_type must be one of {', '.join(OUTPUT_TYPES)}, not {output_type!r}")
        prompts = [prompt] if isinstance(prompt, str) else list(prompt or [])
        negatives = self._negatives(negative_prompt, len(prompts))
        pivot_image = self._image(image)
        requests = self._requests(prompts, negatives, height, width, num_inference_steps, guidance_scale,
                                  num_images_per_prompt, generator, stages, mode, adapter, strength, settings)
        self._interrupt = False
        scale = (cross_attention_kwargs or {}).get("scale", 1.0)
        results, latents = [], []
        with lora_scale(self.model, scale):
            for request in requests:
                finished, final = self._run(request, pivot_image, callback_on_step_end, keep_latents=True)
                results.append(finished)
                latents.append(final)
        metadata = [result.metadata for result in results]
        if output_type == "latent":
            return SelfCascadeOutput(torch.cat(latents), metadata)
        images = [result.image for result in results]
        if output_type == "np":
            return SelfCascadeOutput(np.stack([np.asarray(im, dtype=np.float32) / 255.0 for im in images]), metadata)
        return SelfCascadeOutput(images, metadata)

    @staticmethod
    def _negatives(negative_prompt, count: int) -> list[str]:
        if negative_prompt is None or isinstance(negative_prompt, str):
            return [negative_prompt or ""] * count
        negatives = list(negative_prompt)
        if len(negatives) != count:
            raise InvalidRequest(f"{len(negatives)} negative prompts for {count} prompts: give one per prompt")
        return negatives

    @staticmethod
    def _image(image) -> PIL.Image.Image | None:
        if image is None or isinstance(image, PIL.Image.Image):
            return image
        if isinstance(image, np.ndarray):
            array = image if image.dtype == np.uint8 else (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
            return PIL.Image.fromarray(array)
        return load_user_image(image)

    def _requests(self, prompts, negatives, height, width, steps, guidance, num_images, generator, stages, mode,
                  adapter, strength, settings) -> list[GenerationRequest]:
        if not prompts:
            raise InvalidRequest("no prompt: give a prompt or a list of prompts")
        native_width, native_height = self.model.base_size
        fields = {**request_defaults(self.model.name, mode), **settings}
        given = {"steps": steps, "guidance": guidance, "strength": strength, "adapter": adapter}
        fields.update({key: value for key, value in given.items() if value is not None})
        if isinstance(stages, (list, tuple)):
            stages = ",".join(str(side) for side in stages)
        request = request_from_fields(
            GenerationRequest, prompt=prompts[0], width=width or 2 * native_width,
            height=height or 2 * native_height, mode=mode, stages=stages or "", model=self.model.name,
            seed=fields.pop("seed") if "seed" in fields else _seed_of(generator), **fields)
        jobs = batch_jobs(request, prompts, num_images)
        per_prompt = {text: negative for text, negative in zip(prompts, negatives)}
        return [_with_negative(job.request, per_prompt[job.request.prompt]) for job in jobs]

    def _run(self, request: GenerationRequest, pivot_image, callback, keep_latents: bool):
        cancel, step, final = threading.Event(), 0, None
        for event in generate(request, self.model, cancel=cancel, previews=False, pivot_image=pivot_image):
            if isinstance(event, StepDone) and callback is not None:
                step += 1
                callback(self, step - 1, event.timestep, {"latents": event.latents})
                if self._interrupt:
                    cancel.set()
            elif isinstance(event, StageDone):
                final = event.pivot
            elif isinstance(event, Finished):
                return event, final
        raise RuntimeError("the cascade ended without a result")


def _seed_of(generator) -> int:
    if isinstance(generator, (list, tuple)):
        generator = generator[0] if generator else None
    if generator is None:
        return random.randrange(2**31)
    return int(generator.initial_seed()) % 2**63


def _with_negative(request: GenerationRequest, negative: str) -> GenerationRequest:
    request.negative_prompt = negative
    return request
