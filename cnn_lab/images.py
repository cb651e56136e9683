"""The one image loader of the app: uploads, paths and sample photos become RGB images, or one clear error."""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 40_000_000  # above this a file is refused before decoding (decompression bombs)
WORK_SIDE = 512  # pages downscale larger images so that every slider move stays fast
# The formats a file may be (Pillow guesses from the content, never the name); Pillow's own bomb guard stays on.
FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")  # JPEG covers phone photos (MPO) too
Image.init()  # register every format plugin, so that Image.open can be told which ones it may use


class ImageError(ValueError):
    """An input that is not a usable image; the message is one sentence for the page."""


@dataclass
class LoadedImage:
    image: Image.Image  # RGB
    original_size: tuple[int, int]  # (width, height) of the file, before any downscaling
    note: str = ""  # what was done to it, for the page to state ("downscaled from ...")


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode (16-bit, float, CMYK, palette, alpha) to 8-bit RGB."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(arr)
        img = Image.fromarray(arr.round().astype(np.uint8), mode="L")
    if img.mode == "P" and "transparency" not in img.info:
        return img.convert("RGB")  # straight to 3 bytes a pixel: no 4-byte copy on the way (palette bombs)
    if img.mode in ("P", "RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")  # once
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def read_rgb(source: bytes | str | Path | BinaryIO, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode a file into an RGB image, honouring EXIF orientation; raise ImageError with one sentence."""
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise ImageError("The file is empty.")
        source = io.BytesIO(source)
    try:
        img = Image.open(source, formats=FORMATS)
        width, height = img.size
        if width * height > max_pixels:
            raise ImageError(
                f"The image is {width}x{height} ({width * height / 1e6:.0f} megapixels), "
                f"over the {max_pixels / 1e6:.0f}-megapixel limit; please use a smaller image."
            )
        img.seek(0)  # animated GIF / WebP: the first frame
        img.load()
    except ImageError:
        raise
    except Image.DecompressionBombError:  # Pillow's guard, for the largest claims, before ours could look
        raise ImageError(f"The image is over the {max_pixels / 1e6:.0f}-megapixel limit (it claims far more "
                         "pixels); please use a smaller image.") from None
    except UnidentifiedImageError:
        raise ImageError("This file is not an image that can be read (use JPEG, PNG, WebP, BMP or GIF).") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(f"The image file is truncated or corrupt ({error}).") from None
    return _to_rgb(ImageOps.exif_transpose(img))


def load_image(source: bytes | str | Path | BinaryIO, max_side: int = WORK_SIDE) -> LoadedImage:
    """Read an upload or a path and downscale it so that its longest side is at most `max_side`."""
    return fit_within(read_rgb(source), max_side)


def fit_within(img: Image.Image, max_side: int = WORK_SIDE) -> LoadedImage:
    """Downscale (never upscale) so that the longest side is at most `max_side`."""
    original = img.size
    note = ""
    if max(original) > max_side:
        img = ImageOps.contain(img, (max_side, max_side), Image.Resampling.LANCZOS)
        note = f"Downscaled from {original[0]}x{original[1]} to {img.width}x{img.height} to keep every update fast."
    return LoadedImage(img, original, note)


def to_model_input(img: Image.Image, shape: tuple[int, int, int]) -> torch.Tensor:
    """A photo as a uint8 (C, H, W) tensor of a model's input shape: grey for one channel, resized to H x W."""
    c, h, w = shape
    small = np.asarray(img.convert("L" if c == 1 else "RGB").resize((w, h))).copy()
    tensor = torch.from_numpy(small)
    return tensor[None] if c == 1 else tensor.permute(2, 0, 1)


def to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB image -> float tensor (3, H, W) in [0, 1]."""
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255


def _skimage_sample(name: str) -> Callable[[], Image.Image]:
    def load() -> Image.Image:
        from skimage import data

        return _to_rgb(Image.fromarray(getattr(data, name)()))

    return load


# Sample photos that ship inside scikit-image: no download needed.
SAMPLES: dict[str, Callable[[], Image.Image]] = {
    name: _skimage_sample(name) for name in ("astronaut", "coffee", "chelsea", "rocket", "camera")
}


def load_sample(name: str, max_side: int = WORK_SIDE) -> LoadedImage:
    return fit_within(SAMPLES[name](), max_side)
