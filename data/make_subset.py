#!/usr/bin/env python3
"""Cut the bundled MNIST subset out of the full IDX files (standard library only).

    python3 data/make_subset.py [--src DIR] [--dst DIR] [--train N] [--test N]

Keeps the first N images and labels of each split, in their original order, rewrites the count
in each IDX header, and gzips with mtime 0 and no file name so that reruns give identical files
(with the same zlib build). Prints the per-class label counts and the md5 of every decompressed
output file, which is what data/README.md records.
"""
import argparse
import gzip
import hashlib
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (file stem, magic, number of u32 dims in the header)
IMAGES = (0x00000803, 3)
LABELS = (0x00000801, 1)


def read_idx(path, kind):
    """Returns (dims, payload) of a gzip IDX file, checking magic and payload length."""
    magic, ndims = kind
    data = gzip.decompress(path.read_bytes())
    (found,) = struct.unpack(">I", data[:4])
    if found != magic:
        raise SystemExit(f"{path}: magic 0x{found:08x}, expected 0x{magic:08x}")
    dims = struct.unpack(f">{ndims}I", data[4 : 4 + 4 * ndims])
    payload = data[4 + 4 * ndims :]
    size = 1
    for d in dims:
        size *= d
    if len(payload) != size:
        raise SystemExit(f"{path}: payload {len(payload)} bytes, header says {size}")
    return dims, payload


def write_idx(path, kind, dims, payload):
    """Writes a gzip IDX file with a reproducible gzip header; returns the md5 of the raw IDX."""
    magic, ndims = kind
    assert len(dims) == ndims
    raw = struct.pack(f">I{ndims}I", magic, *dims) + payload
    # gzip.compress writes no file name; mtime=0 keeps the header independent of the clock.
    path.write_bytes(gzip.compress(raw, compresslevel=9, mtime=0))
    return hashlib.md5(raw).hexdigest()


def cut(src, dst, prefix, n):
    """Writes the first n samples of split `prefix` ("train" or "t10k"); returns label counts."""
    img_name = f"{prefix}-images-idx3-ubyte.gz"
    lbl_name = f"{prefix}-labels-idx1-ubyte.gz"
    (count, rows, cols), pixels = read_idx(src / img_name, IMAGES)
    (lcount,), labels = read_idx(src / lbl_name, LABELS)
    if count != lcount:
        raise SystemExit(f"{prefix}: {count} images but {lcount} labels")
    if n > count:
        raise SystemExit(f"{prefix}: asked for {n} samples, source has {count}")

    labels = labels[:n]
    img_md5 = write_idx(dst / img_name, IMAGES, (n, rows, cols), pixels[: n * rows * cols])
    lbl_md5 = write_idx(dst / lbl_name, LABELS, (n,), labels)

    counts = [labels.count(c) for c in range(10)]
    assert sum(counts) == n, "labels outside 0..9"
    print(f"{prefix}: {n} x {rows}x{cols}")
    print(f"  label counts 0..9: {' '.join(map(str, counts))}")
    print(f"  md5 {img_name[:-3]}: {img_md5}")
    print(f"  md5 {lbl_name[:-3]}: {lbl_md5}")
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=HERE.parent.parent / "shared" / "data" / "mnist")
    ap.add_argument("--dst", type=Path, default=HERE / "mnist")
    ap.add_argument("--train", type=int, default=5000)
    ap.add_argument("--test", type=int, default=1000)
    args = ap.parse_args()

    args.dst.mkdir(parents=True, exist_ok=True)
    cut(args.src, args.dst, "train", args.train)
    cut(args.src, args.dst, "t10k", args.test)


if __name__ == "__main__":
    main()
