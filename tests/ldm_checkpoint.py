"""A diffusers Stable Diffusion 1.x or SDXL pipeline written back as one checkpoint in the original LDM
(A1111) key layout, for testing single-file loading offline. diffusers only converts LDM -> diffusers
(single_file_utils.convert_ldm_*); this is the inverse, for the layouts the tiny test models use. It is proven by
`check_roundtrip`: diffusers' own forward conversion of the written state dict gives back every tensor of the
pipeline, key for key."""

from __future__ import annotations

import torch

UNET, VAE = "model.diffusion_model.", "first_stage_model."
SD_CLIP = "cond_stage_model.transformer.text_model."
XL_CLIP, XL_OPEN_CLIP = "conditioner.embedders.0.transformer.text_model.", "conditioner.embedders.1.model."
RESNET = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"), ("conv2", "out_layers.3"),
          ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection"))
UNET_LAYERS = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
               "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2",
               "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}


def _unet_key(key: str, layers: int) -> str:
    parts = key.split(".")
    for size in (1, 2):  # conv_in.weight, time_embedding.linear_1.weight, ...
        head = ".".join(parts[:size])
        if head in UNET_LAYERS:
            return f"{UNET_LAYERS[head]}.{'.'.join(parts[size:])}"
    if parts[0] == "down_blocks":
        block, kind = int(parts[1]), parts[2]
        if kind == "downsamplers":  # down_blocks.b.downsamplers.0.conv.weight -> input_blocks.i.0.op.weight
            return f"input_blocks.{1 + block * (layers + 1) + layers}.0.op.{parts[-1]}"
        index, rest = int(parts[3]), parts[4:]
        name = f"input_blocks.{1 + block * (layers + 1) + index}.{0 if kind == 'resnets' else 1}"
    elif parts[0] == "up_blocks":
        block, kind = int(parts[1]), parts[2]
        if kind == "upsamplers":  # after the level's last resnet (and its attention, when it has one)
            return f"output_blocks.{block * (layers + 1) + layers}.UPSAMPLER.conv.{parts[-1]}"
        index, rest = int(parts[3]), parts[4:]
        name = f"output_blocks.{block * (layers + 1) + index}.{0 if kind == 'resnets' else 1}"
    else:  # mid_block.resnets.0 / attentions.0 / resnets.1 -> middle_block.0 / 1 / 2
        kind, index, rest = parts[1], int(parts[2]), parts[3:]
        name = f"middle_block.{2 * index if kind == 'resnets' else 1}"
    tail = ".".join(rest)
    if kind == "resnets":
        for new, old in RESNET:
            tail = tail.replace(new, old)
    return f"{name}.{tail}"


def unet_to_ldm(state: dict, layers_per_block: int) -> dict:
    out = {}
    for key, value in state.items():
        ldm = _unet_key(key, layers_per_block)
        if ".UPSAMPLER." in ldm:
            level = ldm.split(".")[1]
            has_attention = any(k.startswith(f"output_blocks.{level}.1.") for k in map(
                lambda k: _unet_key(k, layers_per_block), state) if ".UPSAMPLER." not in k)
            ldm = ldm.replace(".UPSAMPLER.", ".2." if has_attention else ".1.")
        out[UNET + ldm] = value
    return out


def vae_to_ldm(state: dict, up_blocks: int) -> dict:
    out = {}
    attention = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
    for key, value in state.items():
        parts = key.split(".")
        side, rest = parts[0], parts[1:]
        if side not in ("encoder", "decoder"):
            out[VAE + key] = value  # quant_conv, post_quant_conv
            continue
        if rest[0] in ("down_blocks", "up_blocks"):
            level = int(rest[1]) if rest[0] == "down_blocks" else up_blocks - 1 - int(rest[1])
            word = "down" if rest[0] == "down_blocks" else "up"
            if rest[2] in ("downsamplers", "upsamplers"):
                name = f"{word}.{level}.{'downsample' if word == 'down' else 'upsample'}.{'.'.join(rest[4:])}"
            else:
                name = f"{word}.{level}.block.{rest[3]}.{'.'.join(rest[4:])}".replace("conv_shortcut", "nin_shortcut")
        elif rest[0] == "mid_block" and rest[1] == "resnets":
            name = f"mid.block_{int(rest[2]) + 1}.{'.'.join(rest[3:])}".replace("conv_shortcut", "nin_shortcut")
        elif rest[0] == "mid_block":  # attentions.0: 1x1 convolutions in LDM, linear layers in diffusers
            layer = ".".join(rest[3:-1])
            name = f"mid.attn_1.{attention[layer]}.{rest[-1]}"
            if layer != "group_norm" and value.ndim == 2:
                value = value[:, :, None, None]
        else:
            name = ".".join(rest).replace("conv_norm_out", "norm_out")
        out[f"{VAE}{side}.{name}"] = value
    return out


def clip_to_ldm(state: dict, prefix: str) -> dict:
    """transformers' CLIPTextModel (flattened: embeddings..., encoder..., final_layer_norm...) under `prefix`."""
    return {prefix + key.removeprefix("text_model."): value for key, value in state.items()}


def open_clip_to_ldm(state: dict, prefix: str = XL_OPEN_CLIP) -> dict:
    """CLIPTextModelWithProjection as OpenCLIP's layout: fused in_proj of each attention, transposed projection."""
    out = {}
    state = {key.removeprefix("text_model."): value for key, value in state.items()}
    fixed = {"embeddings.position_embedding.weight": "positional_embedding",
             "embeddings.token_embedding.weight": "token_embedding.weight",
             "final_layer_norm.weight": "ln_final.weight", "final_layer_norm.bias": "ln_final.bias"}
    for key, value in state.items():
        if key in fixed:
            out[prefix + fixed[key]] = value
        elif key == "text_projection.weight":
            out[prefix + "text_projection"] = value.T.contiguous()
        elif "self_attn.q_proj" in key:
            kind = key.rsplit(".", 1)[1]  # weight or bias
            base = key.split(".self_attn.")[0]
            fused = torch.cat([state[f"{base}.self_attn.{p}_proj.{kind}"] for p in "qkv"])
            out[prefix + f"transformer.{base.replace('encoder.layers.', 'resblocks.')}.attn.in_proj_{kind}"] = fused
        elif "self_attn.k_proj" in key or "self_attn.v_proj" in key:
            continue
        else:
            name = (key.replace("encoder.layers.", "resblocks.").replace("self_attn.", "attn.")
                    .replace("layer_norm1", "ln_1").replace("layer_norm2", "ln_2")
                    .replace("mlp.fc1", "mlp.c_fc").replace("mlp.fc2", "mlp.c_proj"))
            out[prefix + "transformer." + name] = value
    return out


def pipeline_to_ldm(pipeline) -> dict:
    """The whole pipeline's weights in the LDM layout (SD 1.x: cond_stage_model; SDXL: conditioner)."""
    state = unet_to_ldm(pipeline.unet.state_dict(), pipeline.unet.config.layers_per_block)
    state.update(vae_to_ldm(pipeline.vae.state_dict(), len(pipeline.vae.config.up_block_types)))
    if getattr(pipeline, "text_encoder_2", None) is not None:
        state.update(clip_to_ldm(pipeline.text_encoder.state_dict(), XL_CLIP))
        state.update(open_clip_to_ldm(pipeline.text_encoder_2.state_dict()))
    else:
        state.update(clip_to_ldm(pipeline.text_encoder.state_dict(), SD_CLIP))
    return {key: value.detach().contiguous().clone() for key, value in state.items()}


def check_roundtrip(pipeline, ldm: dict) -> None:
    """diffusers' forward conversion (LDM -> diffusers) of `ldm` must give back each component's state dict."""
    from diffusers.loaders.single_file_utils import (
        convert_ldm_clip_checkpoint,
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
        convert_open_clip_checkpoint,
    )

    parts = {"unet": convert_ldm_unet_checkpoint(ldm, dict(pipeline.unet.config)),
             "vae": convert_ldm_vae_checkpoint(ldm, dict(pipeline.vae.config))}
    if getattr(pipeline, "text_encoder_2", None) is not None:
        parts["text_encoder"] = convert_ldm_clip_checkpoint(ldm)
        parts["text_encoder_2"] = convert_open_clip_checkpoint(pipeline.text_encoder_2, ldm, prefix=XL_OPEN_CLIP)
    else:
        parts["text_encoder"] = convert_ldm_clip_checkpoint(ldm)
    for name, converted in parts.items():
        expected = getattr(pipeline, name).state_dict()
        if name == "text_encoder":  # transformers' flattened CLIPTextModel has no text_model. level
            converted = {key.removeprefix("text_model."): value for key, value in converted.items()}
        assert set(converted) == set(expected), (name, sorted(set(converted) ^ set(expected))[:8])
        for key, value in expected.items():
            assert torch.equal(converted[key], value), (name, key)


def save_tiny_sdxl_two_widths(folder):
    """tests.tiny_components.save_tiny_sdxl with text encoders of different widths (32 and 48), as SDXL's are
    (768 and 1280): diffusers tells the two apart in a single file by that width alone, so the shared tiny SDXL
    (both 32 wide) would load its first encoder's weights into the second."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from selfcascade.shapes.tokenizer import build_tokenizer

    torch.manual_seed(0)
    tokenizer = build_tokenizer(folder / "_tokenizer_xl2")
    common = dict(vocab_size=len(tokenizer), intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                  max_position_embeddings=tokenizer.model_max_length)
    first = CLIPTextModel(CLIPTextConfig(hidden_size=32, **common))
    second = CLIPTextModelWithProjection(CLIPTextConfig(hidden_size=48, projection_dim=48, **common))
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64),
                                layers_per_block=1, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
                                use_linear_projection=True, addition_embed_type="text_time",
                                addition_time_embed_dim=8, projection_class_embeddings_input_dim=6 * 8 + 48,
                                cross_attention_dim=32 + 48, norm_num_groups=8)
    vae = AutoencoderKL(block_out_channels=(8, 16, 16, 16), down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, norm_num_groups=8,
                        sample_size=64, scaling_factor=0.13025)
    scheduler = EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                       steps_offset=1, timestep_spacing="leading")
    pipeline = StableDiffusionXLPipeline(vae=vae, text_encoder=first, tokenizer=tokenizer, text_encoder_2=second,
                                         tokenizer_2=tokenizer, unet=unet, scheduler=scheduler)
    target = folder / "tiny-sdxl-two-widths"
    pipeline.save_pretrained(target, safe_serialization=True)
    return target
