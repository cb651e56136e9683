"""What the tests share: where things are, the real data (or a reason to skip), the one wait helper, and the
inputs several tests feed the app (folders of photos, odd and hostile files)."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def _data_dir() -> Path | None:
    """The folder the app would use (cnn_lab.paths.data_root): `CNN_LAB_DATA=` means none, as on a bare clone."""
    from cnn_lab.paths import data_root

    root = data_root()
    return root if root is not None and root.is_dir() else None


DATA_DIR = _data_dir()


def wait_for(predicate, seconds: float = 60.0, every: float = 0.05) -> bool:
    """Poll `predicate` until it holds (True) or `seconds` pass (False): a wait, never a speed assertion."""
    end = time.time() + seconds
    while time.time() < end:
        if predicate():
            return True
        time.sleep(every)
    return False


def require_archive(stem: str) -> Path:
    """The real dataset archive `<stem>.tar.gz`, or a skip that says why it is not here."""
    if DATA_DIR is None:
        pytest.skip("real data not found: set CNN_LAB_DATA or provide ../shared/datasets")
    archive = DATA_DIR / f"{stem}.tar.gz"
    if not archive.exists():
        pytest.skip(f"{archive} is absent")
    return archive


def use_manager(monkeypatch, fresh) -> None:
    """Make `fresh` the process's job manager for one test, wherever the app reads it."""
    from cnn_lab import jobs
    from cnn_lab.jobs import live, manager

    for module in (jobs, manager, live):
        monkeypatch.setattr(module, "MANAGER", fresh)


def noise_folder(root: Path, classes: list[str], per_class: int = 4, size: tuple[int, int] = (20, 16)) -> Path:
    """An image folder (root/<class>/<n>.png) of `per_class` photos of noise, `size` (width, height), per class."""
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


def encoded(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


def a_jpeg() -> bytes:
    return encoded(Image.new("RGB", (64, 64), "teal"), "JPEG")


def an_animated_gif() -> bytes:
    buffer = io.BytesIO()
    frames = [Image.new("P", (16, 16), i) for i in range(3)]
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


# file -> None when it must load (converted), or the words of the sentence it must get
ODD_FILES = {
    "empty file": (b"", "empty"),
    "text renamed .jpg": (b"hello, I am text", "not an image"),
    "truncated JPEG": (a_jpeg()[:300], "truncated or corrupt"),
    "JPEG header only": (b"\xff\xd8\xff\xe0\x00\x10JFIF", "not an image|truncated"),
    "20000x20000 PNG": (encoded(Image.new("1", (20000, 20000))), "megapixel limit"),
    "SVG": (b"<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'/>", "not an image"),
    "HTML": (b"<html><body>not a photo</body></html>", "not an image"),
    "PDF header": (b"%PDF-1.4 fake", "not an image"),
    "zip file as photo": (b"PK\x03\x04" + b"\0" * 40, "not an image"),
    "1x1 PNG": (encoded(Image.new("RGB", (1, 1), "red")), None),
    "16-bit PNG": (encoded(Image.fromarray(np.arange(4096, dtype=np.uint16).reshape(64, 64) * 16)), None),
    "CMYK JPEG": (encoded(Image.new("CMYK", (32, 32), (0, 255, 0, 0)), "JPEG"), None),
    "animated GIF": (an_animated_gif(), None),
    "RGBA PNG": (encoded(Image.new("RGBA", (20, 20), (255, 0, 0, 0))), None),
    "palette PNG": (encoded(Image.new("P", (20, 20), 3)), None),
    "grayscale TIFF": (encoded(Image.new("L", (20, 20), 9), "TIFF"), None),
}


def tar_bomb(path: Path, members: int) -> None:
    """A bzip2 tar of `members` empty files: 512 bytes of header each, which compress to almost nothing. Made of
    bzip2 streams one after another (a valid bzip2 file), the same block of 10,000 headers compressed once."""
    import bz2
    import tarfile

    block = bz2.compress(tarfile.TarInfo("boats/empty.png").tobuf(format=tarfile.USTAR_FORMAT) * 10_000, 1)
    with open(path, "wb") as file:
        for _ in range(members // 10_000):
            file.write(block)
        file.write(bz2.compress(bytes(1024)))


def empty_zip(path: Path, members: int) -> None:
    """A zip of `members` empty "photos" in one class folder: about 100 bytes each, nothing to decode."""
    import zipfile

    with zipfile.ZipFile(path, "w") as zf:
        for i in range(members):
            zf.writestr(f"boats/{i}.png", b"")


def peak_of_cli(args: list[str], env: dict[str, str], timeout: float = 900) -> tuple[subprocess.CompletedProcess, float]:
    """Run `python -m cnn_lab ...` as its own process; returns it and its peak resident memory in GB (as the
    kernel counts it, VmHWM, printed last on stderr: as the command line ends, through os._exit, or else as an
    error ends it). Not ru_maxrss: Linux carries the parent's resident memory at the fork into the child's
    ru_maxrss, so a test worker of 2 GB made every child read 2 GB; VmHWM is the child's own memory's peak."""
    probe = ("import os, runpy, sys; sys.argv = ['cnn_lab'] + sys.argv[1:]\n"
             "def peak():\n    print('peak', next(int(line.split()[1]) for line in open('/proc/self/status') "
             "if line.startswith('VmHWM')), file=sys.stderr, flush=True)\n"
             "leave = os._exit\nos._exit = lambda code: (peak(), leave(code))\n"
             "try:\n    runpy.run_module('cnn_lab', run_name='__main__')\nfinally:\n    peak()")
    done = subprocess.run([sys.executable, "-c", probe, *args], cwd=ROOT, capture_output=True, text=True,
                          env=os.environ | env, timeout=timeout)
    return done, int(done.stderr.rsplit("peak ", 1)[1]) / 2**20


def assert_the_views_of_a_convolution(at) -> None:
    """On "Inside the network" (AppTest), at a convolution: the multiply-and-sum equals the layer's own value,
    Grad-CAM is drawn, and an image is synthesised for the channel."""
    import re

    import pytest

    line = next(m.value for m in at.markdown if m.value.startswith("**The arithmetic"))
    computed, given = re.search(r"= (-?[\d.]+)\*\*; the layer gave \*\*(-?[\d.]+)\*\*", line).groups()
    assert float(computed) == pytest.approx(float(given), abs=1e-3)
    assert any(s.value.startswith("Why this class") for s in at.header)  # Grad-CAM
    at.toggle(key="inside_synthesise").set_value(True).run()
    assert any("Made for channel" in str(i.proto) for i in at.get("image")) and not at.exception
