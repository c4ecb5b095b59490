#!/usr/bin/env python3
"""Write the tiny SVHN fixture: official-format `train_32x32.mat` and `test_32x32.mat` made by
scipy, so that runner's MAT reader is pinned against an independent writer.

    /work/main/.venv-torch/bin/python scripts/svhn_fixture.py tests/fixtures/svhn/svhn
    (needs numpy and scipy; `pip install scipy`. Written with scipy 1.17.1, numpy 2.4.6)

As in the release: `X` is uint8 of 32x32x3xN (height, width, channel, image), `y` is a double
Nx1 of labels 1..10 (10 is the digit 0), and the variables are zlib-compressed (MATLAB -v7).
Pixel (image i, channel c, row r, column k) is (i + 3c + 5r + 7k) % 256, the pattern of
`svhn::tests::pixel`. Train holds 12 images (labels 1..10, 1, 2), test 3 (labels 10, 9, 8).
The header text is fixed so that the files are the same bytes on every run.
"""
import sys
from pathlib import Path

import numpy as np
import scipy
import scipy.io


def images(n):
    i, c, r, k = np.meshgrid(np.arange(n), np.arange(3), np.arange(32), np.arange(32), indexing="ij")
    nchw = ((i + 3 * c + 5 * r + 7 * k) % 256).astype(np.uint8)
    return np.ascontiguousarray(np.transpose(nchw, (2, 3, 1, 0)))  # (32, 32, 3, N)


def save(path, x, y):
    scipy.io.savemat(path, {"X": x, "y": y}, do_compression=True, format="5")
    # savemat stamps the creation time into the header text; pin it.
    data = bytearray(Path(path).read_bytes())
    text = b"MATLAB 5.0 MAT-file, written by scripts/svhn_fixture.py"
    data[:116] = text.ljust(116, b" ")
    Path(path).write_bytes(bytes(data))


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    train_y = np.array([[float(i % 10 + 1)] for i in range(12)])
    test_y = np.array([[10.0], [9.0], [8.0]])
    save(out / "train_32x32.mat", images(12), train_y)
    save(out / "test_32x32.mat", images(3), test_y)
    # The reference reading, torchvision's: labels with 10 -> 0, X transposed to N x C x H x W.
    for name, y in [("train_32x32.mat", train_y), ("test_32x32.mat", test_y)]:
        m = scipy.io.loadmat(out / name)
        labels = m["y"].astype(np.int64).squeeze()
        np.place(labels, labels == 10, 0)
        nchw = np.transpose(m["X"], (3, 2, 0, 1))
        print(name, m["X"].shape, m["X"].dtype, m["y"].dtype, "labels", labels.tolist(),
              "nchw[1,2,3,4] =", int(nchw[1, 2, 3, 4]), "scipy", scipy.__version__)


if __name__ == "__main__":
    main()
