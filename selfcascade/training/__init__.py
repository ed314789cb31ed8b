"""Algorithm 1 of the paper: train the feature upsamplers on a few images with the base model frozen (loop), its
request, limits and progress events (request), its frozen features (features), live samples (samples), several
processes (distributed), and the training data (data/)."""
