#!/usr/bin/env python3
"""Pack a CIFAR-10 subset small enough to travel to the GPU machine, losslessly, and unpack it.

The GPU machine receives at most 64 MiB from us, the CUDA build included (~11 MB gzipped), so
the 184 MB CIFAR-10 binary cannot travel. Generic compressors do little on photos (xz -9:
77% of the raw size), so the images are packed as lossless WebP mosaics: 10,000 images of
32x32 as one 3200x3200 RGB picture, which WebP's lossless predictor + entropy coder shrinks to
~49% of the raw bytes. Labels travel as raw bytes. Every mosaic is decoded again right after
encoding and compared byte for byte, and `MANIFEST.json` holds the MD5 of every decoded batch,
so `unpack` proves the GPU machine trains on exactly the bytes of ../shared/data.

    pack:   python3 scripts/cifar_subset.py pack ../shared/data/cifar-10-batches-bin gpu-pack/cifar --train 20000
            (needs cwebp and dwebp: `apt-get install webp`; about 3 minutes per 10,000 images)
    unpack: python3 scripts/cifar_subset.py unpack gpu-pack/cifar data-gpu/cifar-10-batches-bin
            (needs Pillow, which the GPU machine's Python has; writes the standard binary
            layout: the training subset split over data_batch_1..5.bin, test_batch.bin)

Pure Python (no numpy) so that it runs wherever python3 does.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

RECORD = 3073  # one label byte + 3 x 1024 bytes (R, G, B planes)
GRID = 100  # images per mosaic side: 100 x 100 = 10,000 images, 3200 x 3200 pixels


def read_records(path, count):
    with open(path, "rb") as f:
        data = f.read(count * RECORD)
    if len(data) % RECORD:
        sys.exit(f"{path}: {len(data)} bytes is not a whole number of {RECORD}-byte records")
    return data


def mosaic_ppm(records):
    """Records -> (labels, P6 bytes of a GRID*32-wide mosaic, height in images)."""
    n = len(records) // RECORD
    rows = (n + GRID - 1) // GRID
    w, h = GRID * 32, rows * 32
    pix = bytearray(w * h * 3)
    labels = bytearray(n)
    for k in range(n):
        rec = records[k * RECORD : (k + 1) * RECORD]
        labels[k] = rec[0]
        gy, gx = divmod(k, GRID)
        for y in range(32):
            at = ((gy * 32 + y) * w + gx * 32) * 3
            row = bytearray(96)
            row[0::3] = rec[1 + y * 32 : 1 + (y + 1) * 32]
            row[1::3] = rec[1025 + y * 32 : 1025 + (y + 1) * 32]
            row[2::3] = rec[2049 + y * 32 : 2049 + (y + 1) * 32]
            pix[at : at + 96] = row
    return bytes(labels), b"P6\n%d %d\n255\n" % (w, h) + bytes(pix), n


def records_from_rgb(labels, rgb, width):
    """Inverse of mosaic_ppm: interleaved RGB mosaic pixels -> CIFAR records."""
    out = bytearray(len(labels) * RECORD)
    for k, label in enumerate(labels):
        gy, gx = divmod(k, GRID)
        rec = bytearray(RECORD)
        rec[0] = label
        for y in range(32):
            at = ((gy * 32 + y) * width + gx * 32) * 3
            row = rgb[at : at + 96]
            rec[1 + y * 32 : 1 + (y + 1) * 32] = row[0::3]
            rec[1025 + y * 32 : 1025 + (y + 1) * 32] = row[1::3]
            rec[2049 + y * 32 : 2049 + (y + 1) * 32] = row[2::3]
        out[k * RECORD : (k + 1) * RECORD] = rec
    return bytes(out)


def ppm_pixels(data):
    """(width, pixels) of a binary P6 file with maxval 255."""
    parts = data.split(maxsplit=4)
    if parts[0] != b"P6" or parts[3] != b"255":
        sys.exit("not a P6 PPM with maxval 255")
    return int(parts[1]), parts[4]


def pack(args):
    os.makedirs(args.out, exist_ok=True)
    src = args.cifar
    chunks = [("test", os.path.join(src, "test_batch.bin"), args.test)]
    left = args.train
    for i in range(1, 6):
        if left <= 0:
            break
        take = min(left, 10000)
        chunks.append((f"train{i}", os.path.join(src, f"data_batch_{i}.bin"), take))
        left -= take
    manifest = {"format": "cifar10-webp-mosaic-v1", "grid": GRID, "chunks": []}
    for name, path, count in chunks:
        records = read_records(path, count)
        labels, ppm, n = mosaic_ppm(records)
        webp = os.path.join(args.out, f"{name}.webp")
        with tempfile.TemporaryDirectory() as tmp:
            src_ppm = os.path.join(tmp, "m.ppm")
            back_ppm = os.path.join(tmp, "back.ppm")
            with open(src_ppm, "wb") as f:
                f.write(ppm)
            subprocess.run(["cwebp", "-quiet", "-lossless", "-z", str(args.effort), "-mt",
                            src_ppm, "-o", webp], check=True)
            subprocess.run(["dwebp", "-quiet", webp, "-ppm", "-o", back_ppm], check=True)
            with open(back_ppm, "rb") as f:
                width, rgb = ppm_pixels(f.read())
        back = records_from_rgb(labels, rgb, width)
        if back != records:
            sys.exit(f"{name}: the decoded mosaic differs from the source: not lossless")
        with open(os.path.join(args.out, f"{name}.labels"), "wb") as f:
            f.write(labels)
        size = os.path.getsize(webp)
        manifest["chunks"].append({
            "name": name, "source": os.path.basename(path), "images": n,
            "md5": hashlib.md5(records).hexdigest(), "webp_bytes": size,
        })
        print(f"{name}: {n} images from {os.path.basename(path)}, {size / 1e6:.1f} MB "
              f"({100 * size / len(records):.0f}% of raw), verified lossless")
    with open(os.path.join(args.out, "MANIFEST.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    total = sum(c["webp_bytes"] for c in manifest["chunks"])
    print(f"packed {sum(c['images'] for c in manifest['chunks'])} images into {total / 1e6:.1f} MB")


def unpack(args):
    from PIL import Image  # the GPU machine's Python has Pillow

    with open(os.path.join(args.pack, "MANIFEST.json")) as f:
        manifest = json.load(f)
    os.makedirs(args.out, exist_ok=True)
    train = []
    for c in manifest["chunks"]:
        with open(os.path.join(args.pack, c["name"] + ".labels"), "rb") as f:
            labels = f.read()
        img = Image.open(os.path.join(args.pack, c["name"] + ".webp")).convert("RGB")
        records = records_from_rgb(labels, img.tobytes(), img.width)
        if hashlib.md5(records).hexdigest() != c["md5"]:
            sys.exit(f"{c['name']}: MD5 mismatch after decoding: the data is not what was packed")
        if c["name"] == "test":
            with open(os.path.join(args.out, "test_batch.bin"), "wb") as f:
                f.write(records)
        else:
            train.append(records)
    train = b"".join(train)
    n = len(train) // RECORD
    # runner and the PyTorch script both read data_batch_1..5.bin: split the subset over five.
    per = (n + 4) // 5
    for i in range(5):
        part = train[i * per * RECORD : min(n, (i + 1) * per) * RECORD]
        with open(os.path.join(args.out, f"data_batch_{i + 1}.bin"), "wb") as f:
            f.write(part)
    with open(os.path.join(args.out, "batches.meta.txt"), "w") as f:
        f.write("\n".join(["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                           "horse", "ship", "truck"]) + "\n")
    tests = sum(c["images"] for c in manifest["chunks"] if c["name"] == "test")
    print(f"unpacked {n} training and {tests} test images into {args.out} (MD5 verified)")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pack")
    a.add_argument("cifar", help="cifar-10-batches-bin folder")
    a.add_argument("out")
    a.add_argument("--train", type=int, default=20000, help="training images to pack (first N)")
    a.add_argument("--test", type=int, default=10000, help="test images to pack (first N; all by default)")
    a.add_argument("--effort", type=int, default=9, help="cwebp -z level (0-9)")
    b = sub.add_parser("unpack")
    b.add_argument("pack")
    b.add_argument("out")
    args = p.parse_args()
    pack(args) if args.cmd == "pack" else unpack(args)


if __name__ == "__main__":
    main()
