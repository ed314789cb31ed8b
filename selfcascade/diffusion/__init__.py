"""How one stage denoises: the denoising loop and its schedulers (sampling), and the noise predictors it can
run, each a wrapper around the model's call: the upper-stage strategies above the training size, one per
paper (the upper_stage package), pivot anchoring (anchor), pivot consensus
(consensus), FreeInit (free_init) and video motion steering (motion_steering)."""
