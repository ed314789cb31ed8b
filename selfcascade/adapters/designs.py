"""The choices a new adapter is trained with: its objective, its upsampler design and width (no heavy imports:
the CLI builds its parser from these before torch loads).

Objectives (selfcascade.training.loop):
- "keep": the paper's Algorithm 1, z_t noised from the crop itself; the upsamplers learn to keep the pivot's
  geometry.
- "restore": z_t noised from the pivot up-sampled as an upper stage starts from it, loss on the clean estimate
  against the crop; they learn to correct what the small size lost (lumpy outlines, soft edges).
Designs (selfcascade.adapters.upsampler): "shared" filters run over every feature channel (the paper's size); "mixed"
convolutions combine the channels.
"""

OBJECTIVES = ("keep", "restore")
DESIGNS = ("shared", "mixed")
# Measured best on the embedded model (docs/results.md, "Tuned mode"): 58 of 64 held-out pairs at 256 px against 52.
DEFAULT_OBJECTIVE, DEFAULT_DESIGN = "restore", "mixed"
DEFAULT_WIDTHS = {"shared": 4, "mixed": 8}  # filters per convolution when a request names none


def default_width(design: str) -> int:
    return DEFAULT_WIDTHS.get(design, 4)
