import io

import numpy as np
import pytest
from PIL import Image

from cnn_lab import images


def _png(img: Image.Image, fmt="PNG", **kw) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"", "empty"),
        (b"this is text renamed to .jpg", "not an image"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "not an image"),
    ],
)
def test_bad_bytes_give_one_sentence(payload, message):
    with pytest.raises(images.ImageError, match=message):
        images.load_image(payload)


def test_truncated_jpeg():
    full = _png(Image.new("RGB", (64, 64), "blue"), "JPEG")
    with pytest.raises(images.ImageError, match="truncated or corrupt"):
        images.load_image(full[: len(full) // 2])


def test_huge_image_refused_before_decoding():
    # A 20000x20000 PNG header over a tiny payload: refused from its header, without decoding.
    payload = _png(Image.new("1", (20000, 20000)))
    with pytest.raises(images.ImageError, match="megapixel limit"):
        images.load_image(payload)


@pytest.mark.parametrize("mode", ["I;16", "CMYK", "P", "RGBA", "LA", "L", "1"])
def test_modes_become_rgb(mode):
    img = Image.new(mode, (30, 20))
    loaded = images.load_image(_png(img, "TIFF" if mode == "CMYK" else "PNG"))
    assert loaded.image.mode == "RGB" and loaded.image.size == (30, 20)


def test_16bit_keeps_contrast():
    arr = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    loaded = images.load_image(_png(Image.fromarray(arr)))
    out = np.asarray(loaded.image)[..., 0]
    assert out.min() == 0 and out.max() == 255


def test_exif_orientation_honoured():
    img = Image.new("RGB", (40, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees
    loaded = images.load_image(_png(img, "JPEG", exif=exif))
    assert loaded.image.size == (20, 40)


def test_large_image_downscaled_with_note():
    loaded = images.load_image(_png(Image.new("RGB", (2000, 1000))), max_side=512)
    assert loaded.image.size == (512, 256) and loaded.original_size == (2000, 1000)
    assert "Downscaled from 2000x1000" in loaded.note


def test_animated_gif_first_frame():
    frames = [Image.new("RGB", (10, 10), c) for c in ("red", "green")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    loaded = images.load_image(buffer.getvalue())
    assert loaded.image.getpixel((0, 0))[0] > 200


def test_samples_are_real_photos():
    for name in images.SAMPLES:
        loaded = images.load_sample(name)
        assert max(loaded.image.size) <= images.WORK_SIDE
        assert np.asarray(loaded.image).std() > 20
