"""The base models behind one interface (DiffusionModel): the families (SD 1.x/2.x, SDXL, AnimateDiff,
text-to-video), the loader (hub id, folder, the embedded models; one model in memory at a time), their names
(names: hub id, embedded, public name), precision, memory, placement (offload), the VAE, quick previews."""
