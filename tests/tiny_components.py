"""Tiny random-weight Stable Diffusion components of the real classes, built offline (as diffusers' own
pipeline tests do), for testing the hub-model code path without downloading anything."""

from pathlib import Path

import torch
from diffusers import (
    AnimateDiffPipeline,
    AutoencoderKL,
    DDIMScheduler,
    EulerDiscreteScheduler,
    MotionAdapter,
    PNDMScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    TextToVideoSDPipeline,
    UNet2DConditionModel,
    UNet3DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from selfcascade.shapes.tokenizer import build_tokenizer


def save_tiny_stable_diffusion(folder: Path, prediction_type: str = "epsilon") -> Path:
    """An SD-1.x-shaped folder: 8x VAE (4 blocks), 2-level cross-attention UNet, PNDM scheduler config;
    SD-2.x-shaped with prediction_type="v_prediction" (and its upcast attention)."""
    torch.manual_seed(0)
    tokenizer = build_tokenizer(folder / "_tokenizer")
    text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37,
                                                num_hidden_layers=2, num_attention_heads=4,
                                                max_position_embeddings=tokenizer.model_max_length))
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64),
                                layers_per_block=1, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
                                norm_num_groups=8, attention_head_dim=4,
                                upcast_attention=prediction_type == "v_prediction")
    vae = AutoencoderKL(block_out_channels=(8, 16, 16, 16), down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, norm_num_groups=8,
                        sample_size=64)
    scheduler = PNDMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                              skip_prk_steps=True, steps_offset=1, prediction_type=prediction_type)
    pipeline = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                       scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    target = folder / ("tiny-sd" if prediction_type == "epsilon" else "tiny-sd2v")
    pipeline.save_pretrained(target, safe_serialization=True)
    return target


def save_tiny_sdxl(folder: Path) -> Path:
    """An SDXL-shaped folder: two text encoders (the second with a projection), text_time added embeddings."""
    torch.manual_seed(0)
    tokenizer = build_tokenizer(folder / "_tokenizer_xl")
    config = CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                            num_attention_heads=4, max_position_embeddings=tokenizer.model_max_length,
                            projection_dim=32)
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64),
                                layers_per_block=1, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
                                use_linear_projection=True, addition_embed_type="text_time",
                                addition_time_embed_dim=8, projection_class_embeddings_input_dim=6 * 8 + 32,
                                cross_attention_dim=64, norm_num_groups=8)
    vae = AutoencoderKL(block_out_channels=(8, 16, 16, 16), down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, norm_num_groups=8,
                        sample_size=64, scaling_factor=0.13025)
    scheduler = EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                       steps_offset=1, timestep_spacing="leading")
    pipeline = StableDiffusionXLPipeline(vae=vae, text_encoder=CLIPTextModel(config), tokenizer=tokenizer,
                                         text_encoder_2=CLIPTextModelWithProjection(config),
                                         tokenizer_2=tokenizer, unet=unet, scheduler=scheduler)
    target = folder / "tiny-sdxl"
    pipeline.save_pretrained(target, safe_serialization=True)
    return target


def make_vae_overflow_in_float16(model_folder: Path, force_upcast: bool, factor: float = 1e5) -> Path:
    """Scale the VAE decoder's first convolution so its activations exceed float16's 65504 (as the real
    SDXL VAE's do), and set its config's force_upcast. In float32 the decoder's GroupNorms absorb the scale."""
    vae = AutoencoderKL.from_pretrained(model_folder / "vae")
    with torch.no_grad():
        vae.decoder.conv_in.weight.mul_(factor)
        vae.decoder.conv_in.bias.mul_(factor)
    vae.register_to_config(force_upcast=force_upcast)
    vae.save_pretrained(model_folder / "vae", safe_serialization=True)
    return model_folder


def _tiny_text_parts(folder: Path, name: str):
    tokenizer = build_tokenizer(folder / name)
    text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37,
                                                num_hidden_layers=2, num_attention_heads=4,
                                                max_position_embeddings=tokenizer.model_max_length))
    vae = AutoencoderKL(block_out_channels=(8, 16, 16, 16), down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, norm_num_groups=8,
                        sample_size=64)
    return tokenizer, text_encoder, vae


def save_tiny_animatediff(folder: Path) -> Path:
    """An AnimateDiff folder: the tiny SD UNet + a tiny MotionAdapter (saved as a UNetMotionModel), DDIM."""
    torch.manual_seed(0)
    tokenizer, text_encoder, vae = _tiny_text_parts(folder, "_tokenizer_ad")
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64),
                                layers_per_block=1, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
                                norm_num_groups=8, attention_head_dim=4)
    adapter = MotionAdapter(block_out_channels=(32, 64), motion_layers_per_block=1, motion_num_attention_heads=2,
                            motion_norm_num_groups=8, motion_max_seq_length=32)
    scheduler = DDIMScheduler(beta_schedule="linear", beta_start=0.00085, beta_end=0.012, clip_sample=False)
    pipeline = AnimateDiffPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   motion_adapter=adapter, scheduler=scheduler)
    target = folder / "tiny-animatediff"
    pipeline.save_pretrained(target, safe_serialization=True)
    return target


def save_tiny_text_to_video(folder: Path) -> Path:
    """A ModelScope-shaped folder (TextToVideoSDPipeline): a tiny UNet3DConditionModel, DDIM."""
    torch.manual_seed(0)
    tokenizer, text_encoder, vae = _tiny_text_parts(folder, "_tokenizer_t2v")
    unet = UNet3DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64),
                                layers_per_block=1, down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
                                up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"), cross_attention_dim=32,
                                attention_head_dim=4, norm_num_groups=8)
    scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False)
    pipeline = TextToVideoSDPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                     scheduler=scheduler)
    target = folder / "tiny-text-to-video"
    pipeline.save_pretrained(target, safe_serialization=True)
    return target
