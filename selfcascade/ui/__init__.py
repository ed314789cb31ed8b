"""The two front ends, thin: the command line (cli, progress) and the Gradio app (the tabs, their handlers,
per-session state, a visitor's files, the Space's field rule). Only the app's modules import gradio."""
