"""The embedded model's world of coloured shapes: the scenes and their prompts (world, tokenizer, motion), the
judge that scores what a model drew (detector, outline, edges, coverage, background), and the scripts that
trained the shipped models (train_default, train_decoder, train_motion, train_adapter)."""
