"""Augmentation pipelines from torchvision.transforms.v2: steps <-> JSON <-> transforms <-> readable code,
seeded draws with the parameters each draw sampled, saved presets the trainer uses, TTA views, DropBlock
and Cutout masks.

A pipeline is a list of steps, each {"name", "p", "enabled", "params"}. It runs on float images in [0, 1].
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from cnn_lab.paths import cache_root, written_whole


class AugmentError(ValueError):
    """A step torchvision rejects, or a range that is inverted; the message is one sentence."""


@dataclass(frozen=True)
class StepSpec:
    title: str
    # params -> the code of one transform, with `size` standing for the input's (H, W); evaluated to build it
    code: Callable[[dict[str, float]], str]
    params: dict[str, tuple[float, float, float]]  # name -> (default, min, max)


def _size(p: dict, key: str = "size") -> str:
    return "size" if not p.get(key) else f"({int(p[key])}, {int(p[key])})"


STEPS: dict[str, StepSpec] = {
    "rotation": StepSpec("RandomRotation", lambda p: f"v2.RandomRotation(degrees=({p['min_deg']:g}, {p['max_deg']:g}))",
                         {"min_deg": (-30, -180, 180), "max_deg": (30, -180, 180)}),
    "hflip": StepSpec("RandomHorizontalFlip", lambda p: "v2.RandomHorizontalFlip(p=1.0)", {}),
    "vflip": StepSpec("RandomVerticalFlip", lambda p: "v2.RandomVerticalFlip(p=1.0)", {}),
    "resized_crop": StepSpec(
        "RandomResizedCrop",
        lambda p: f"v2.RandomResizedCrop({_size(p)}, scale=({p['min_scale']:g}, {p['max_scale']:g}), "
                  f"ratio=({p['min_ratio']:g}, {p['max_ratio']:g}), antialias=True)",
        {"size": (0, 0, 512), "min_scale": (0.35, 0.01, 1), "max_scale": (1, 0.01, 1), "min_ratio": (0.75, 0.2, 5),
         "max_ratio": (1.333, 0.2, 5)}),
    "crop": StepSpec("RandomCrop with padding",
                     lambda p: f"v2.RandomCrop({_size(p)}, padding={int(p['padding'])}, padding_mode='reflect')",
                     {"size": (0, 0, 512), "padding": (4, 0, 64)}),
    "color_jitter": StepSpec(
        "ColorJitter",
        lambda p: f"v2.ColorJitter(brightness={p['brightness']:g}, contrast={p['contrast']:g}, "
                  f"saturation={p['saturation']:g}, hue={p['hue']:g})",
        {"brightness": (0.4, 0, 2), "contrast": (0.4, 0, 2), "saturation": (0.4, 0, 2), "hue": (0.1, 0, 0.5)}),
    "grayscale": StepSpec("RandomGrayscale", lambda p: "v2.RandomGrayscale(p=1.0)", {}),
    "blur": StepSpec("GaussianBlur", lambda p: f"v2.GaussianBlur(kernel_size={int(p['kernel'])}, "
                                               f"sigma=({p['min_sigma']:g}, {p['max_sigma']:g}))",
                     {"kernel": (5, 1, 31), "min_sigma": (0.1, 0.01, 10), "max_sigma": (2, 0.01, 10)}),
    "noise": StepSpec("GaussianNoise", lambda p: f"v2.GaussianNoise(mean=0.0, sigma={p['sigma']:g}, clip=True)",
                      {"sigma": (0.05, 0, 1)}),
    "erasing": StepSpec("RandomErasing (Cutout)",
                        lambda p: f"v2.RandomErasing(p=1.0, scale=({p['min_area']:g}, {p['max_area']:g}), value=0)",
                        {"min_area": (0.02, 0.001, 1), "max_area": (0.2, 0.001, 1)}),
    "affine": StepSpec("RandomAffine", lambda p: f"v2.RandomAffine(degrees=0, translate=({p['translate']:g}, "
                                                 f"{p['translate']:g}), shear={p['shear']:g})",
                       {"translate": (0.1, 0, 1), "shear": (10, 0, 60)}),
    "perspective": StepSpec("RandomPerspective",
                            lambda p: f"v2.RandomPerspective(distortion_scale={p['distortion']:g}, p=1.0)",
                            {"distortion": (0.3, 0, 1)}),
    "autoaugment": StepSpec("AutoAugment (ImageNet policy)", lambda p: "v2.AutoAugment()", {}),
    "randaugment": StepSpec("RandAugment", lambda p: f"v2.RandAugment(num_ops={int(p['num_ops'])}, "
                                                     f"magnitude={int(p['magnitude'])})",
                            {"num_ops": (2, 1, 6), "magnitude": (9, 0, 30)}),
    "trivialaugment": StepSpec("TrivialAugmentWide", lambda p: "v2.TrivialAugmentWide()", {}),
}


def new_step(name: str, p: float = 0.5) -> dict:
    return {"name": name, "p": p, "enabled": True,
            "params": {key: float(value[0]) for key, value in STEPS[name].params.items()}}


def _check_ranges(step: dict) -> None:
    params = step["params"]
    for key in params:
        if key.startswith("min_") and f"max_{key[4:]}" in params and params[key] > params[f"max_{key[4:]}"]:
            raise AugmentError(f"{STEPS[step['name']].title}: the {key[4:]} range is inverted "
                               f"(min {params[key]:g} > max {params[f'max_{key[4:]}']:g}).")


def step_code(step: dict) -> str:
    """One step as code: the transform, wrapped in RandomApply when its probability is below 1."""
    code = STEPS[step["name"]].code(step["params"])
    return code if step["p"] >= 1 else f"v2.RandomApply([{code}], p={step['p']:g})"


def to_code(steps: list[dict], size: tuple[int, int] = (32, 32)) -> str:
    """Readable PyTorch code for the pipeline, for images of `size` (what 'the input's size' becomes)."""
    lines = [f"    {step_code(s)}," for s in steps if s["enabled"]]
    return ("import torch\nfrom torchvision.transforms import v2\n\n"
            f"size = {tuple(size)}\npipeline = v2.Compose([\n    v2.ToDtype(torch.float32, scale=True),\n"
            + "\n".join(lines) + "\n])\n")


def build(steps: list[dict], size: tuple[int, int]) -> v2.Compose:
    """The transforms for images of `size`; bad settings raise AugmentError with torchvision's reason."""
    transforms: list[v2.Transform] = [v2.ToDtype(torch.float32, scale=True)]
    for step in steps:
        if not step["enabled"]:
            continue
        if step["name"] not in STEPS:
            raise AugmentError(f"Unknown augmentation {step['name']!r}.")
        _check_ranges(step)
        try:
            # The very code that to_code exports (only numbers from the step are written into it).
            transform = eval(step_code(step), {"v2": v2, "size": tuple(size)})
        except (ValueError, TypeError) as error:
            raise AugmentError(f"{STEPS[step['name']].title}: {error}") from None
        transform.step = dict(step)  # the definition travels with the object: see to_steps
        transforms.append(transform)
    return v2.Compose(transforms)


def to_steps(pipeline: v2.Compose) -> list[dict]:
    """The steps a pipeline was built from (the inverse of build)."""
    return [t.step for t in pipeline.transforms if hasattr(t, "step")]


def to_json(steps: list[dict]) -> str:
    return json.dumps(steps, indent=2)


def from_json(text: str) -> list[dict]:
    """A pipeline from JSON, checked: known steps, p in [0, 1], each parameter of the step within its range."""
    try:
        steps = json.loads(text)
        if not isinstance(steps, list):
            raise ValueError
        steps = [{"name": s["name"], "p": float(s["p"]), "enabled": bool(s.get("enabled", True)),
                  "params": {k: float(v) for k, v in s["params"].items()}} for s in steps]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise AugmentError("This is not a pipeline JSON (a list of steps with name, p and params).") from None
    for step in steps:
        spec = STEPS.get(step["name"])
        if spec is None:
            raise AugmentError(f"Unknown step {step['name']!r}; the steps are: {', '.join(STEPS)}.")
        if not 0 <= step["p"] <= 1:
            raise AugmentError(f"{step['name']}: p must be between 0 and 1, not {step['p']:g}.")
        if set(step["params"]) != set(spec.params):
            raise AugmentError(f"{step['name']} takes the parameters {', '.join(spec.params) or 'none'}.")
        for key, (_, low, high) in spec.params.items():
            if not low <= step["params"][key] <= high:
                raise AugmentError(f"{step['name']}: {key} must be between {low} and {high}, "
                                   f"not {step['params'][key]:g}.")
    return steps


def _number(value: Any) -> float:
    return float(value.item() if isinstance(value, torch.Tensor) else value)


def _jitter(p: dict) -> str:
    factors = [f"{name} x{_number(p[f'{name}_factor']):.2f}" for name in ("brightness", "contrast", "saturation")
               if p.get(f"{name}_factor") is not None]
    hue = p.get("hue_factor")
    return ", ".join(factors + ([f"hue {_number(hue):+.3f}"] if hue is not None else []))


# What one draw of each transform did, in words: torchvision's sampled parameters (make_params) read aloud.
SAMPLED: dict[str, Callable[[dict], str]] = {
    "RandomRotation": lambda p: f"rotated {_number(p['angle']):.1f} degrees",
    "RandomHorizontalFlip": lambda p: "mirrored left-right",
    "RandomVerticalFlip": lambda p: "flipped upside down",
    "RandomResizedCrop": lambda p: f"a {p['width']}x{p['height']} crop from ({p['left']}, {p['top']}), resized",
    "RandomCrop": lambda p: f"padded, then cropped from ({p['left']}, {p['top']})",
    "ColorJitter": _jitter,
    "RandomGrayscale": lambda p: "made grey",
    "GaussianBlur": lambda p: f"blurred, sigma {_number(p['sigma'][0]):.2f}",
    "GaussianNoise": lambda p: "noise added",
    "RandomErasing": lambda p: f"a {p['w']}x{p['h']} box erased at ({p['j']}, {p['i']})",
    "RandomAffine": lambda p: (f"shifted ({_number(p['translate'][0]):.0f}, {_number(p['translate'][1]):.0f}) px, "
                               f"sheared {_number(p['shear'][0]):.1f} degrees"),
    "RandomPerspective": lambda p: "seen at a slant (perspective)",
}


def describe_sample(transform: str, params: dict) -> str:
    """One draw of a transform in words, e.g. "rotated -12.4 degrees"; its name where the words are unknown."""
    try:
        return SAMPLED[transform](params)
    except (KeyError, IndexError, TypeError, ValueError):
        return transform


def draw(image: torch.Tensor, steps: list[dict], n: int, seed: int) -> list[tuple[torch.Tensor, list[str]]]:
    """n seeded draws of the pipeline on one uint8 image (C, H, W): (float image, what each step sampled)."""
    pipeline = build(steps, tuple(image.shape[-2:]))
    log: list[str] = []
    for transform in pipeline.transforms[1:]:
        inner = transform.transforms[0] if isinstance(transform, v2.RandomApply) else transform
        original = inner.make_params

        def recorded(flat, original=original, inner=inner):
            params = original(flat)
            log.append(describe_sample(type(inner).__name__, params))
            return params

        inner.make_params = recorded  # record what this draw sampled
    out = []
    for i in range(n):
        torch.manual_seed(seed + i)
        log.clear()
        try:
            result = pipeline(image)
        except (ValueError, RuntimeError) as error:
            raise AugmentError(f"The pipeline cannot run on this {image.shape[-2]}x{image.shape[-1]} image: {error}") from None
        out.append((result.clamp(0, 1), list(log) or ["nothing applied"]))
    return out


# ---------------------------------------------------------------- presets the trainer uses


def _builtin(name: str, p: float, **params: float) -> dict:
    step = new_step(name, p)
    step["params"].update(params)
    return step


# Pipelines that come with the app, listed beside the ones saved on the augmentation page.
BUILTIN_PRESETS: dict[str, list[dict]] = {
    "photos: zoom crop and colour": [
        _builtin("resized_crop", 1.0, min_scale=0.35),
        _builtin("color_jitter", 0.5, brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02),
    ],
    # The course's boat augmentation (lesson 28): RandomRotation(30), horizontal and vertical flips, grayscale.
    "course: boats (lesson 28)": [
        _builtin("rotation", 1.0, min_deg=-30, max_deg=30),
        _builtin("hflip", 0.5),
        _builtin("vflip", 0.5),
        _builtin("grayscale", 0.1),
    ],
}


def _presets_dir():
    folder = cache_root() / "augment_presets"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


SAVED_NAME = re.compile(r"^[A-Za-z0-9_-]{1,60}(\.[A-Za-z0-9_-]{1,60})?$")  # "flips", or "ada-1f3e2a.flips" (shared)


def _slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_-]+", "-", text).strip("-")[:60]


def owner_prefix(owner: str) -> str:
    """A person's presets' prefix on a class server: their name made safe, and a hash so that "Ada B" and
    "Ada-B" (two names) never share one."""
    return f"{_slug(owner) or 'person'}-{hashlib.sha256(owner.encode()).hexdigest()[:6]}"


def save_preset(name: str, steps: list[dict], owner: str | None = None) -> str:
    """Save a pipeline as a preset the trainers read; returns its name. With `owner` (a class server), the name
    starts with the owner's prefix: a learner saves over their own presets only."""
    slug = _slug(name) or "preset"
    if owner is not None:
        slug = f"{owner_prefix(owner)}.{slug}"
    with written_whole(_presets_dir() / f"{slug}.json") as tmp:
        tmp.write_text(to_json(steps))
    return slug


def list_presets(owner: str | None = None) -> list[str]:
    """The built-in presets, then the saved ones: with `owner` (a class server), those saved before shared mode
    and that person's own."""
    saved = sorted(p.stem for p in _presets_dir().glob("*.json") if SAVED_NAME.match(p.stem))
    if owner is not None:
        saved = [name for name in saved if "." not in name or name.startswith(owner_prefix(owner) + ".")]
    return [*BUILTIN_PRESETS, *saved]


def load_preset(name: str) -> list[dict]:
    if name in BUILTIN_PRESETS:
        return [dict(step, params=dict(step["params"])) for step in BUILTIN_PRESETS[name]]
    path = _presets_dir() / f"{name}.json"
    if not SAVED_NAME.match(name) or not path.exists():  # a name from a link or a config: never a path
        raise AugmentError(f"There is no augmentation preset named {name!r}; save one on the augmentation page.")
    return from_json(path.read_text())


def batch_augmenter(steps: list[dict], size: tuple[int, int], group: int = 16) -> Callable[[torch.Tensor], torch.Tensor]:
    """For the trainer: apply the pipeline to a float batch in [0, 1], a fresh draw for every `group` images
    (a v2 transform called on a batch draws one set of parameters for all of it)."""
    pipeline = v2.Compose(build(steps, size).transforms[1:])  # the batch is float already

    def apply(batch: torch.Tensor) -> torch.Tensor:
        return torch.cat([pipeline(chunk) for chunk in batch.split(group)]).clamp(0, 1)

    return apply


# ---------------------------------------------------------------- test-time augmentation views


def _shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Translate a batch by (dy, dx) pixels, filling with the reflected border."""
    p = max(abs(dy), abs(dx))
    padded = F.pad(x, (p, p, p, p), mode="reflect")
    h, w = x.shape[-2:]
    return padded[..., p - dy : p - dy + h, p - dx : p - dx + w]


# The views a TTA scheme averages: the image, its mirror, and both shifted by a pixel (batched: (N, C, H, W)).
TTA_VIEWS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "original": lambda x: x,
    "flipped": lambda x: x.flip(-1),
    "shifted down-right": lambda x: _shift(x, 1, 1),
    "shifted up-left": lambda x: _shift(x, -1, -1),
    "flipped, shifted down-right": lambda x: _shift(x.flip(-1), 1, 1),
    "flipped, shifted up-left": lambda x: _shift(x.flip(-1), -1, -1),
}


# ---------------------------------------------------------------- DropBlock and Cutout


def dropblock_mask(height: int, width: int, block: int, drop_prob: float, seed: int = 0) -> torch.Tensor:
    """DropBlock (Ghiasi et al. 2018): zero contiguous block x block regions so that about `drop_prob` of the
    units are dropped. Returns a (H, W) mask of 0s and 1s."""
    g = torch.Generator().manual_seed(seed)
    block = max(1, min(block, height, width))
    valid = (height - block + 1) * (width - block + 1)
    gamma = drop_prob / block**2 * height * width / max(1, valid)
    centres = torch.zeros(1, 1, height, width)
    top, left = block // 2, block // 2  # centres only where the whole block fits, as in the paper
    centres[..., top : top + height - block + 1, left : left + width - block + 1] = (
        torch.rand(height - block + 1, width - block + 1, generator=g) < gamma).float()
    dropped = F.max_pool2d(centres, block, stride=1, padding=block // 2)[..., :height, :width]
    return 1 - dropped[0, 0]


def cutout_mask(height: int, width: int, size: int, seed: int = 0) -> torch.Tensor:
    """Cutout (DeVries & Taylor 2017): one size x size square of zeros at a random centre (it may overhang)."""
    g = torch.Generator().manual_seed(seed)
    cy, cx = int(torch.randint(height, (1,), generator=g)), int(torch.randint(width, (1,), generator=g))
    mask = torch.ones(height, width)
    mask[max(0, cy - size // 2) : cy + (size + 1) // 2, max(0, cx - size // 2) : cx + (size + 1) // 2] = 0
    return mask


# ---------------------------------------------------------------- batched flips and crops (the trainer's own)


def random_flip(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Flip a random half of the batch left-right."""
    flip = torch.rand(len(x), device=x.device, generator=generator) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)


def random_crop(x: torch.Tensor, pad: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop with reflect padding (the CIFAR classic), a different shift per image, in one gather."""
    n, c, h, w = x.shape
    padded = F.pad(x, (pad,) * 4, mode="reflect")
    dy = torch.randint(0, 2 * pad + 1, (n, 1, 1), device=x.device, generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n, 1, 1), device=x.device, generator=generator)
    rows = (torch.arange(h, device=x.device).view(1, h, 1) + dy).expand(n, h, w)
    cols = (torch.arange(w, device=x.device).view(1, 1, w) + dx).expand(n, h, w)
    index = (rows * (w + 2 * pad) + cols).view(n, 1, h * w).expand(n, c, h * w)
    return padded.flatten(2).gather(2, index).view(n, c, h, w)


def random_window(x: torch.Tensor, size: int) -> torch.Tensor:
    """A size x size window of the batch at a random place, the same for every image: progressive resizing's
    small images, which make a step cheaper (a slice of the batch, not a gather)."""
    top = int(torch.randint(0, x.shape[-2] - size + 1, ()))
    left = int(torch.randint(0, x.shape[-1] - size + 1, ()))
    return x[..., top : top + size, left : left + size]


# The augmentations a training config names in its `augment` list: (standardised batch, crop padding) -> batch.
BATCHED_AUGMENTS: dict[str, Callable[[torch.Tensor, int], torch.Tensor]] = {
    "flip": lambda x, crop_padding: random_flip(x),
    "crop": lambda x, crop_padding: random_crop(x, crop_padding),
}
