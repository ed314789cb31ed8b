"""The tuned mode's adapters: the time-aware feature upsamplers of the paper's Eq. 6 (upsampler, designs),
their files (files: save, load and check against a base model), the checks of an untrusted file before
anything is built from it (checks), and their model card (card)."""
