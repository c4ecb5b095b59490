#!/usr/bin/env python3
"""Golden outputs of image transforms from torchvision v2's functional API on uint8 tensors.

Usage: /work/main/.venv-torch/bin/python scripts/golden_transforms.py > tests/fixtures/transform_goldens.json

Pinned inputs (a seeded 3x8x8 and 1x7x9 uint8 image) go through each transform's deterministic
kernel with explicit parameters (the crop offsets runner's own RNG would draw); the Rust test in
`src/data/transform.rs` (`torchvision_goldens`) applies runner's kernels with the same parameters
and compares every pixel exactly.

random_crop: torchvision v2 `RandomCrop.transform` is `F.crop(F.pad(img, padding, fill,
padding_mode), top, left, size, size)`, with `pad_if_needed` adding `size - padded` to both sides of
a dimension still smaller than `size` (one pad, not two); `top`/`left` are in padded coordinates.

grayscale: `F.rgb_to_grayscale` (weights 0.2989, 0.587, 0.114) of the float image `x / 255`,
compared to within 1e-6 (float sums in another order; far below one uint8 level, 1/255).

affine / rotate: `F.affine` and `F.rotate` (no expand) of the float image `x / 255` with explicit
parameters, each rounded to float32 first (runner's parameters are f32), fill given as a float (as
`RandomAffine`/`RandomRotation` always pass one). Compared in `src/data/transform/geometric.rs`:
nearest exactly, bilinear to within 1e-6.

color: the functional colour ops (`F.adjust_brightness`, `adjust_contrast`, `adjust_saturation`,
`adjust_hue`, `adjust_sharpness`, `posterize`, `solarize`, `autocontrast`, `equalize`) with explicit
factors on the float images `x / 255` (key `color_images`, which adds a dim copy of the RGB image
for the histogram ops), 1-channel included; compared in `src/data/transform/color.rs` to within
5e-7 (fused multiply-adds and sums in another order), exactly for `posterize` and `equalize`.

color_jitter: `ColorJitter().transform(img, params)` with explicit `fn_idx` orders and factors
(some `None`), so the composition order is checked, not only the kernels.

policy_tables / policy_ops: `TrivialAugmentWide`'s and `RandAugment`'s `_AUGMENTATION_SPACE`
magnitude tables (float32 `linspace`s, posterize bits), and `_apply_image_or_video_transform` (their
`_apply_op`) for every op name at several magnitudes and both signs, with `fill` given; compared in
`src/data/transform/augment.rs` (tables exactly, colour ops to 5e-7, geometric ones as
`geometric.rs`: nearest exactly, bilinear to 1e-6, 2e-6 for the shears, whose angle runner rounds
to f32).
"""

import json
import sys

import torch
import torchvision
from torchvision.transforms.v2 import functional as F

COMMAND = (
    "/work/main/.venv-torch/bin/python scripts/golden_transforms.py "
    "> tests/fixtures/transform_goldens.json"
)


def images():
    g = torch.Generator().manual_seed(17)
    return {
        "rgb": torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8, generator=g),
        "gray": torch.randint(0, 256, (1, 7, 9), dtype=torch.uint8, generator=g),
        # Drawn after the others, so adding it left their pixels as they were.
        "tall": torch.randint(0, 256, (3, 11, 6), dtype=torch.uint8, generator=g),
    }


def random_crop_cases(imgs):
    geometries = {
        # (size, padding, pad_if_needed)
        "rgb": [(8, 2, False), (6, 3, False), (10, 0, True), (12, 1, True)],
        "gray": [(7, 2, False), (9, 1, True), (11, 0, True), (5, 0, False)],
    }
    modes = [("constant", 0), ("constant", 127), ("edge", 0), ("reflect", 0), ("symmetric", 0)]
    cases = []
    for name, geometry in geometries.items():
        img = imgs[name]
        _, h, w = img.shape
        for size, padding, pad_if_needed in geometry:
            ph = padding + (max(0, size - (h + 2 * padding)) if pad_if_needed else 0)
            pw = padding + (max(0, size - (w + 2 * padding)) if pad_if_needed else 0)
            max_top, max_left = h + 2 * ph - size, w + 2 * pw - size
            offsets = sorted({(0, 0), (max_top, max_left), (max_top, 0), (0, max_left),
                              (max_top // 2, (max_left + 1) // 2)})
            for mode, fill in modes:
                padded = F.pad(img, [pw, ph, pw, ph], fill=fill, padding_mode=mode)
                for top, left in offsets:
                    out = F.crop(padded, top, left, size, size)
                    cases.append({
                        "image": name,
                        "size": size,
                        "padding": padding,
                        "padding_mode": mode,
                        "fill": fill,
                        "pad_if_needed": pad_if_needed,
                        "top": top,
                        "left": left,
                        "out": out.flatten().tolist(),
                    })
    return cases


def f32(x):
    """`x` rounded to float32, as runner holds its parameters."""
    return torch.tensor(x, dtype=torch.float32).item()


AFFINE_PARAMS = [
    # (angle, translate, scale, shear, center)
    (90, (0, 0), 1.0, (0, 0), None),
    (45, (0, 0), 1.0, (0, 0), None),
    (-30, (0, 0), 1.0, (0, 0), None),
    (180, (0, 0), 1.0, (0, 0), None),
    (12.5, (0, 0), 1.0, (0, 0), None),
    (0, (2, -1), 1.0, (0, 0), None),
    (0, (0.5, 1.25), 1.0, (0, 0), None),
    (0, (0, 0), 0.7, (0, 0), None),
    (0, (0, 0), 1.4, (0, 0), None),
    (0, (0, 0), 1.0, (15, 0), None),
    (0, (0, 0), 1.0, (0, -20), None),
    (0, (0, 0), 1.0, (10, 25), None),
    (33.3, (1, 2), 1.2, (5, -8), None),
    (-71, (-3, 1), 0.85, (-12, 4), None),
    # TrivialAugment's shears turn about the top-left corner.
    (0, (0, 0), 1.0, (16.7, 0), (0, 0)),
    (20, (0, 0), 1.1, (0, 0), (2.5, 3)),
]

ROTATE_ANGLES = [0, 90, 180, 270, -90, 450, 45, 33.3, -127.6]


def affine_cases(imgs):
    cases = []
    for name, img in imgs.items():
        x = img.float() / 255
        for i, (angle, translate, scale, shear, center) in enumerate(AFFINE_PARAMS):
            for interp in ["nearest", "bilinear"]:
                fill = [0.0, 0.5, 1.0][i % 3]
                p = dict(angle=f32(angle), translate=[f32(t) for t in translate], scale=f32(scale),
                         shear=[f32(s) for s in shear],
                         center=None if center is None else [f32(c) for c in center])
                out = F.affine(x, **p, interpolation=F.InterpolationMode(interp), fill=fill)
                cases.append({"image": name, **p, "interpolation": interp, "fill": fill,
                              "out": out.flatten().tolist()})
    return cases


def rotate_cases(imgs):
    cases = []
    for name, img in imgs.items():
        x = img.float() / 255
        for i, angle in enumerate(ROTATE_ANGLES):
            for interp in ["nearest", "bilinear"]:
                fill = [0.0, 0.25][i % 2]
                out = F.rotate(x, f32(angle), interpolation=F.InterpolationMode(interp), fill=fill)
                cases.append({"image": name, "angle": f32(angle), "interpolation": interp,
                              "fill": fill, "out": out.flatten().tolist()})
    return cases


def color_images(imgs):
    """The pinned images on runner's `[0, 1]` scale, plus a dim, low-contrast copy of the RGB one
    (`x // 3 + 60`) so that `autocontrast` and `equalize` have something to stretch."""
    out = {k: v.float() / 255 for k, v in imgs.items()}
    out["dim"] = (imgs["rgb"] // 3 + 60).float() / 255
    return out


# (op, factors): the functional colour ops of torchvision v2 with explicit parameters.
COLOR_OPS = [
    ("adjust_brightness", [0.0, 0.5, 1.3, 2.0]),
    ("adjust_contrast", [0.0, 0.4, 1.7]),
    ("adjust_saturation", [0.0, 0.6, 1.8]),
    ("adjust_hue", [-0.5, -0.2, 0.1, 0.45]),
    ("adjust_sharpness", [0.0, 0.3, 1.9]),
    ("posterize", [0, 1, 2, 4, 6, 8]),
    ("solarize", [0.0, 0.3, 0.75, 1.0]),
    ("autocontrast", [None]),
    ("equalize", [None]),
]


def color_cases(cimgs):
    """Every colour op at each factor on each image (1-channel ones as torchvision takes them)."""
    cases = []
    for name, img in cimgs.items():
        for op, factors in COLOR_OPS:
            for factor in factors:
                fn = getattr(F, op)
                out = fn(img) if factor is None else fn(img, factor)
                cases.append({"image": name, "op": op, "factor": factor,
                              "out": out.flatten().tolist()})
    return cases


def color_jitter_cases(cimgs):
    """`ColorJitter.transform` with explicit params: the four ops in a given order, some absent."""
    from torchvision.transforms.v2 import ColorJitter

    params = [
        ([0, 1, 2, 3], 1.2, 0.7, 1.4, 0.1),
        ([3, 2, 1, 0], 0.8, 1.3, 0.5, -0.25),
        ([2, 0, 3, 1], 1.5, None, 0.0, 0.4),
        ([1, 3, 0, 2], None, 0.6, None, None),
    ]
    cj = ColorJitter()
    cases = []
    for name in ["rgb", "gray"]:
        for order, b, c, s, h in params:
            p = dict(fn_idx=torch.tensor(order), brightness_factor=b, contrast_factor=c,
                     saturation_factor=s, hue_factor=h)
            out = cj.transform(cimgs[name], p)
            cases.append({"image": name, "order": order, "brightness": b, "contrast": c,
                          "saturation": s, "hue": h, "out": out.flatten().tolist()})
    return cases


POLICY_OPS = ["Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness",
              "Color", "Contrast", "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize"]


def policy_tables(imgs):
    """Both policies' magnitude tables (`_AUGMENTATION_SPACE`) for a few bin counts and sizes."""
    from torchvision.transforms.v2 import RandAugment, TrivialAugmentWide

    out = []
    for policy, cls in [("trivial_augment_wide", TrivialAugmentWide), ("rand_augment", RandAugment)]:
        for bins in [31, 10, 2]:
            for h, w in [(8, 8), (7, 9), (11, 6), (32, 32)]:
                for op in POLICY_OPS:
                    fn, signed = cls._AUGMENTATION_SPACE[op]
                    m = fn(bins, h, w)
                    out.append({"policy": policy, "op": op, "bins": bins, "height": h, "width": w,
                                "signed": signed,
                                "values": None if m is None else [float(v) for v in m]})
    return out


def policy_op_cases(cimgs):
    """`_apply_image_or_video_transform` (the policies' `_apply_op`) for every op name at a few
    magnitudes of its TrivialAugmentWide table (both signs where signed), nearest and bilinear,
    fill 0 and 0.5 given explicitly (runner always passes its fill)."""
    from torchvision.transforms.v2 import TrivialAugmentWide

    cases = []
    for name in ["rgb", "gray", "tall"]:
        img = cimgs[name]
        _, h, w = img.shape
        for op in POLICY_OPS:
            fn, signed = TrivialAugmentWide._AUGMENTATION_SPACE[op]
            table = fn(31, h, w)
            mags = [0.0] if table is None else [float(table[i]) for i in [1, 12, 30]]
            if signed:
                mags += [-m for m in mags]
            for i, mag in enumerate(mags):
                for interp in ["nearest", "bilinear"]:
                    fill = [0.0, 0.5][i % 2]
                    t = TrivialAugmentWide(interpolation=interp, fill=fill)
                    out = t._apply_image_or_video_transform(img, op, mag, t.interpolation, t._fill)
                    cases.append({"image": name, "op": op, "magnitude": mag,
                                  "interpolation": interp, "fill": fill,
                                  "out": out.flatten().tolist()})
    return cases


RESIZE_SIZES = [[4, 4], [5, 3], [3, 7], [16, 12], [9, 20], [1, 1], 5, 13]


def resize_cases(imgs):
    cases = []
    for name, img in imgs.items():
        x = img.float() / 255
        for size in RESIZE_SIZES:
            for interp in ["nearest", "bilinear"]:
                out = F.resize(x, size if isinstance(size, list) else [size],
                               interpolation=F.InterpolationMode(interp), antialias=True)
                cases.append({"image": name, "size": size, "interpolation": interp,
                              "out_shape": list(out.shape), "out": out.flatten().tolist()})
    return cases


# (image, top, left, height, width, size): boxes inside each pinned image, shrinking and enlarging.
RESIZED_CROP_BOXES = [
    ("rgb", 0, 0, 8, 8, [4, 4]),
    ("rgb", 1, 2, 5, 4, [7, 3]),
    ("rgb", 3, 3, 2, 2, [6, 6]),
    ("gray", 2, 1, 4, 7, [3, 5]),
    ("gray", 0, 4, 7, 5, [10, 9]),
    ("tall", 5, 0, 6, 6, [4, 4]),
    ("tall", 1, 1, 9, 3, [2, 8]),
    ("tall", 0, 5, 1, 1, [3, 2]),
]


def resized_crop_cases(imgs):
    cases = []
    for name, top, left, h, w, size in RESIZED_CROP_BOXES:
        x = imgs[name].float() / 255
        for interp in ["nearest", "bilinear"]:
            out = F.resized_crop(x, top, left, h, w, size,
                                 interpolation=F.InterpolationMode(interp), antialias=True)
            cases.append({"image": name, "box": [top, left, h, w], "size": size,
                          "interpolation": interp, "out_shape": list(out.shape),
                          "out": out.flatten().tolist()})
    return cases


def main():
    imgs = images()
    doc = {
        "header": {
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "command": COMMAND,
            "inputs": "torch.Generator().manual_seed(17); randint(0, 256) uint8 of 3x8x8, 1x7x9, 3x11x6",
        },
        "images": {
            k: {"shape": list(v.shape), "data": v.flatten().tolist()} for k, v in imgs.items()
        },
        "random_crop": random_crop_cases(imgs),
        # On the float image (ToTensor's x / 255, as runner scales first), not on uint8, where
        # torchvision truncates the weighted sum back to uint8.
        "grayscale": {
            "image": "rgb",
            "out": F.rgb_to_grayscale(imgs["rgb"].float() / 255).flatten().tolist(),
        },
        "color_images": {
            k: {"shape": list(v.shape), "data": v.flatten().tolist()}
            for k, v in color_images(imgs).items()
        },
        "color": color_cases(color_images(imgs)),
        "color_jitter": color_jitter_cases(color_images(imgs)),
        "policy_tables": policy_tables(imgs),
        "policy_ops": policy_op_cases(color_images(imgs)),
    }
    doc["affine"] = affine_cases(imgs)
    doc["rotate"] = rotate_cases(imgs)
    doc["resize"] = resize_cases(imgs)
    doc["resized_crop"] = resized_crop_cases(imgs)
    json.dump(doc, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
