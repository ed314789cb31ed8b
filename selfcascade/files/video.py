"""Videos out: an mp4 a browser plays as is (H.264, yuv420p, even sizes, faststart) with every parameter in
its metadata comment, or an animated GIF / WebP on request; and reading a written file's stream facts back.

gr.Video serves the file unchanged when ffmpeg/ffprobe are not on the server's PATH, so the file itself must
be browser-ready: H.264 in yuv420p (4:2:0 chroma needs even sides) with the moov atom first (+faststart).
moviepy 2.2.1 appends its own `-pix_fmt yuva420p` for libx264 after our ffmpeg_params (ffmpeg then falls back
to yuv420p by itself); we still ask for yuv420p first and `describe` checks what the file holds.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

from selfcascade.errors import InvalidRequest

VIDEO_SUFFIXES = (".mp4", ".gif", ".webp")
COMMENT_LIMIT = 60_000  # characters of JSON in the mp4 comment (ffmpeg's metadata is a command-line argument)


def check_video_path(path: str | Path) -> Path:
    """The output path if its suffix is one we write; InvalidRequest otherwise (before any sampling)."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise InvalidRequest(f"{path.name}: a video is written as {', '.join(VIDEO_SUFFIXES)}")
    return path


def even_frames(frames: list[Image.Image]) -> list[np.ndarray]:
    """RGB uint8 arrays, cropped by one pixel where a side is odd (yuv420p needs even sides)."""
    arrays = []
    for frame in frames:
        array = np.asarray(frame.convert("RGB"), dtype=np.uint8)
        height, width = array.shape[:2]
        arrays.append(np.ascontiguousarray(array[: height - height % 2, : width - width % 2]))
    return arrays


def write_mp4(frames: list[Image.Image], path: Path, fps: float, metadata: dict) -> Path:
    """H.264 yuv420p faststart mp4 through moviepy; `metadata` as JSON in the container's comment."""
    from moviepy import ImageSequenceClip

    comment = json.dumps(metadata, sort_keys=True, default=str)[:COMMENT_LIMIT]
    clip = ImageSequenceClip(even_frames(frames), fps=fps)
    try:
        clip.write_videofile(str(path), fps=fps, codec="libx264", audio=False, logger=None,
                             ffmpeg_params=["-pix_fmt", "yuv420p", "-movflags", "+faststart",
                                            "-metadata", f"comment={comment}"])
    finally:
        clip.close()
    return path


def write_animation(frames: list[Image.Image], path: Path, fps: float, metadata: dict) -> Path:
    """Animated GIF or WebP (Pillow), looping; the parameters in the GIF comment / WebP XMP-free 'comment'."""
    images = [frame.convert("RGB") for frame in frames]
    duration = max(1, round(1000 / fps))
    text = json.dumps(metadata, sort_keys=True, default=str)
    options = {"save_all": True, "append_images": images[1:], "duration": duration, "loop": 0}
    if path.suffix.lower() == ".gif":
        images[0].save(path, format="GIF", comment=text[:COMMENT_LIMIT].encode(), **options)
    else:
        images[0].save(path, format="WEBP", lossless=False, quality=90, **options)
    return path


def write_video(frames: list[Image.Image], path: str | Path, fps: float, metadata: dict) -> Path:
    """Write `frames` as .mp4 (default way), .gif or .webp, chosen by the suffix."""
    path = check_video_path(path)
    if not frames:
        raise InvalidRequest("there are no frames to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".mp4":
        return write_mp4(frames, path, fps, metadata)
    return write_animation(frames, path, fps, metadata)


def describe(path: str | Path) -> dict:
    """Stream facts of a video file from the ffmpeg that imageio-ffmpeg bundles (no ffprobe needed):
    codec, pix_fmt, width, height, frames (decoded count) and the comment."""
    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    info = subprocess.run([ffmpeg, "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    stream = re.search(r"Stream #\S+: Video: (\w+)[^,]*, (\w+)[^,]*(?:\([^)]*\))?, (\d+)x(\d+)", info)
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    # `-i` shortens long metadata in its report; the ffmetadata muxer writes it whole (with \-escapes)
    metadata = subprocess.run([ffmpeg, "-v", "error", "-i", str(path), "-f", "ffmetadata", "-"],
                              capture_output=True, text=True).stdout
    comment = re.search(r"^comment=(.*)$", metadata, re.MULTILINE)
    return {"codec": stream.group(1) if stream else None, "pix_fmt": stream.group(2) if stream else None,
            "width": int(stream.group(3)) if stream else None, "height": int(stream.group(4)) if stream else None,
            "frames": frames, "comment": re.sub(r"\\(.)", r"\1", comment.group(1)) if comment else None}
