"""Files in and out, and the host's caps: PNGs with their parameters (images), videos with theirs (video), the
bounded outputs folder and gradio's cache (outputs), and the caps a Space tightens (hosting). The layer just
above errors: it knows nothing of models or diffusion."""
