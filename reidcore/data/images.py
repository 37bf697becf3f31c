"""Image loading with Pillow; a file that cannot be decoded is named in the error."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

from reidcore.errors import ImageReadError


def load_image(path: str | Path) -> Image.Image:
    """Decode an image file fully into an RGB :class:`PIL.Image.Image`.

    Raises:
        ImageReadError: the file is missing, truncated, corrupt or not an image;
            the message names the file.
    """
    try:
        with Image.open(path) as im:
            im.load()  # decode now: a truncated JPEG fails here, not later in a worker
            return im.convert("RGB")
    except FileNotFoundError as exc:
        raise ImageReadError(f"image file not found: {path}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"cannot decode image {path}: {exc}") from exc
