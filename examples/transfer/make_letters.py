"""Draw the transfer example's two sets at 8×8 on the digits' 0–16 scale, rendered with the DejaVu fonts that ship
with matplotlib (sans, serif, mono; regular, bold, oblique) and jittered:

- ``glyphs.npz``: the source task, 17 capital letters (B D F G J K M N O Q R S V W X Y Z), 84 drawings each;
- ``letters.npz``: the target task, 8 *other* capitals (A C E H L P T U), 14 drawings each — a small set on purpose:
  the pipeline learns from about 3 per letter.

    python examples/transfer/make_letters.py   # writes both files (images N×8×8, labels N)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import font_manager
from PIL import Image, ImageDraw, ImageFont

LETTERS = "ACEHLPTU"  # the target labels
GLYPHS = "BDFGJKMNOQRSVWXYZ"  # the source labels: no letter of the target among them
FONTS = [
    "DejaVu Sans",
    "DejaVu Sans:bold",
    "DejaVu Sans:oblique",
    "DejaVu Serif",
    "DejaVu Serif:bold",
    "DejaVu Sans Mono",
    "DejaVu Sans Mono:bold",
]
HERE = Path(__file__).parent


def font(spec: str, size: int) -> ImageFont.FreeTypeFont:
    family, _, style = spec.partition(":")
    props = font_manager.FontProperties(
        family=family,
        weight="bold" if style == "bold" else "normal",
        style="oblique" if style == "oblique" else "normal",
    )
    return ImageFont.truetype(font_manager.findfont(props, fallback_to_default=False), size)


def draw(letter: str, spec: str, gen: np.random.Generator) -> np.ndarray:
    """One letter on a 32×32 canvas, rotated and shifted a little, then averaged down to 8×8 (as the digits were)."""
    canvas = Image.new("L", (32, 32), 0)
    face = font(spec, int(gen.integers(22, 29)))
    box = ImageDraw.Draw(canvas).textbbox((0, 0), letter, font=face)
    w, h = box[2] - box[0], box[3] - box[1]
    at = ((32 - w) / 2 - box[0] + gen.integers(-2, 3), (32 - h) / 2 - box[1] + gen.integers(-2, 3))
    ImageDraw.Draw(canvas).text(at, letter, fill=255, font=face)
    canvas = canvas.rotate(float(gen.uniform(-12, 12)), resample=Image.Resampling.BILINEAR)
    pixels = np.asarray(canvas, dtype=np.float64).reshape(8, 4, 8, 4).mean(axis=(1, 3))
    return np.round(pixels / 255.0 * 16.0)


def write(path: Path, letters: str, per_font: int, seed: int) -> None:
    gen = np.random.default_rng(seed)
    images, labels = [], []
    for label, letter in enumerate(letters):
        for spec in FONTS:
            for _ in range(per_font):
                images.append(draw(letter, spec, gen))
                labels.append(label)
    np.savez_compressed(path, images=np.stack(images).astype(np.uint8), labels=np.array(labels, dtype=np.int64))
    print(f"wrote {path}: {len(labels)} images of {len(letters)} letters ({', '.join(letters)})")


def main() -> None:
    write(HERE / "letters.npz", LETTERS, per_font=2, seed=0)
    write(HERE / "glyphs.npz", GLYPHS, per_font=12, seed=1)


if __name__ == "__main__":
    main()
