"""Algorithm 2 of the paper, the Self-Cascade: a request (request, checked before any model work), its scale
decomposition into stages (stages), the stage loop (pipeline: stage 0 from noise, then up(pivot), re-noise to K,
denoise), videos through the same loop (video), presets, the time and memory estimate, and reading a PNG's
record back (record)."""
