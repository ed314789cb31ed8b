"""Training data from a user: images and captions (images), video clips (clips), uploads and folders gathered
and counted before any copy (uploads), zips unpacked without trusting them (archive)."""
