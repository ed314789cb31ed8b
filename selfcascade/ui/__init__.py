"""The Gradio user interface (only this package and app.py import gradio)."""
