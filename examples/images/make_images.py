"""Write the image folder examples/images/pipeline.yaml reads: scikit-learn's 1,797 handwritten digits as 24×24
greyscale PNG files, one folder per class (digits-png/0/0000.png …).

The pipeline's data stage calls ``write`` first (`data.prepare: make_images:write`); it writes only when the folder
is missing. Run it yourself with ``python examples/images/make_images.py``.
"""

from __future__ import annotations

from pathlib import Path

FOLDER = Path(__file__).with_name("digits-png")
SIZE = 24  # larger than the 8×8 originals: the pipeline's data stage resizes them back down (data.resize)


def write() -> Path:
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    if FOLDER.is_dir():
        return FOLDER
    digits = load_digits()
    partial = FOLDER.with_name(FOLDER.name + ".partial")  # (a folder half written is never read as the source)
    for i, (pixels, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        (partial / str(label)).mkdir(parents=True, exist_ok=True)
        image = Image.fromarray((pixels * 255 / 16).astype(np.uint8))
        image.resize((SIZE, SIZE), Image.Resampling.NEAREST).save(partial / str(label) / f"{i:04d}.png")
    partial.rename(FOLDER)
    return FOLDER


if __name__ == "__main__":
    print(f"wrote {write()}")
