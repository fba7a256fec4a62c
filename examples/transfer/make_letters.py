"""Draw the transfer example's small target set: the letters A, C, E, H, L, P, T, U at 8×8, rendered with the DejaVu
fonts that ship with matplotlib (sans, serif, mono; regular, bold, oblique), jittered, on the digits' 0–16 scale.

    python examples/transfer/make_letters.py   # writes examples/transfer/letters.npz (images N×8×8, labels N)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import font_manager
from PIL import Image, ImageDraw, ImageFont

LETTERS = "ACEHLPTU"
FONTS = [
    "DejaVu Sans",
    "DejaVu Sans:bold",
    "DejaVu Sans:oblique",
    "DejaVu Serif",
    "DejaVu Serif:bold",
    "DejaVu Sans Mono",
    "DejaVu Sans Mono:bold",
]
PER_FONT = 2  # jittered drawings of each letter in each font: 14 per letter, 112 in all (a small set on purpose)
OUT = Path(__file__).with_name("letters.npz")


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


def main() -> None:
    gen = np.random.default_rng(0)
    images, labels = [], []
    for label, letter in enumerate(LETTERS):
        for spec in FONTS:
            for _ in range(PER_FONT):
                images.append(draw(letter, spec, gen))
                labels.append(label)
    np.savez_compressed(OUT, images=np.stack(images).astype(np.uint8), labels=np.array(labels, dtype=np.int64))
    print(f"wrote {OUT}: {len(labels)} images of {len(LETTERS)} letters ({', '.join(LETTERS)})")


if __name__ == "__main__":
    main()
