"""Identities of the synthetic dataset: palettes, attributes, siblings (look-alikes).

Part of :mod:`reid_datasets.synthetic` (see its docstring for the generative model).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

# fmt: off
RGB = tuple[int, int, int]

# Palettes (RGB). Identities draw from them, so many share a colour.
SHIRTS: tuple[RGB, ...] = (
    (200, 40, 40), (40, 80, 190), (235, 235, 228), (30, 30, 35), (40, 140, 60),
    (230, 200, 50), (130, 130, 130), (230, 140, 170), (130, 180, 230),
)
PATTERN_COLOURS: tuple[RGB, ...] = (
    (240, 240, 235), (25, 25, 30), (200, 40, 40), (40, 70, 180), (235, 205, 50), (40, 140, 60),
)
TROUSERS: tuple[RGB, ...] = (
    (30, 30, 35), (50, 70, 120), (110, 110, 115), (190, 170, 130), (100, 70, 45),
    (220, 220, 215), (50, 75, 50),
)
SHOES: tuple[RGB, ...] = ((20, 20, 20), (230, 230, 230), (110, 70, 40), (120, 120, 125))
SKINS: tuple[RGB, ...] = (
    (240, 200, 170), (220, 170, 130), (185, 135, 95), (125, 85, 60), (90, 60, 40),
)
HAIRS: tuple[RGB, ...] = (
    (25, 20, 20), (75, 48, 30), (205, 170, 100), (165, 165, 165), (145, 62, 30),
)
BAGS: tuple[RGB, ...] = (
    (25, 25, 25), (110, 70, 40), (180, 40, 40), (40, 70, 170), (120, 120, 120), (50, 110, 60),
)
# fmt: on
PATTERNS = ("plain", "stripes", "checks", "dots")
BUILDS = (0.86, 1.0, 1.17)
_CLUTTER: tuple[RGB, ...] = SHIRTS + TROUSERS + BAGS


def _pick(rng: np.random.Generator, options: Sequence, p: Sequence[float] | None = None):
    return options[int(rng.choice(len(options), p=p))]




@dataclass(frozen=True)
class Identity:
    """What a person looks like in every image (colours are RGB tuples)."""

    shirt: RGB
    pattern: str  # one of PATTERNS
    pattern_colour: RGB
    pattern_period: float  # pattern period, fraction of the person's height
    long_sleeves: bool
    trousers: RGB
    shorts: bool
    shoes: RGB
    skin: RGB
    hair: RGB
    long_hair: bool
    bag: str  # "none" | "backpack" | "shoulder"
    bag_colour: RGB
    build: float  # shoulder/hip width factor, one of BUILDS

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Identity:
        """Draw independent attributes."""
        shirt = _pick(rng, SHIRTS)
        pattern = _pick(rng, PATTERNS, p=(0.4, 0.2, 0.2, 0.2))
        return cls(
            shirt=shirt,
            pattern=pattern,
            pattern_colour=_pick(rng, [c for c in PATTERN_COLOURS if _far(c, shirt)]),
            pattern_period=_pick(rng, (0.055, 0.08)),
            long_sleeves=bool(rng.random() < 0.5),
            trousers=_pick(rng, TROUSERS),
            shorts=bool(rng.random() < 0.25),
            shoes=_pick(rng, SHOES),
            skin=_pick(rng, SKINS),
            hair=_pick(rng, HAIRS),
            long_hair=bool(rng.random() < 0.3),
            bag=_pick(rng, ("none", "backpack", "shoulder"), p=(0.5, 0.25, 0.25)),
            bag_colour=_pick(rng, BAGS),
            build=_pick(rng, BUILDS),
        )

    def mutate(self, rng: np.random.Generator) -> Identity:
        """A sibling: a copy that differs in one visible attribute."""
        other = Identity.sample(rng)
        attr = _pick(rng, ("pattern", "trousers", "shorts", "long_sleeves", "hair", "bag", "build"))
        if attr == "pattern":
            if self.pattern == "plain":
                return replace(self, pattern=_pick(rng, PATTERNS[1:]))
            return replace(self, pattern=_pick(rng, [p for p in PATTERNS if p != self.pattern]))
        if attr == "shorts":
            return replace(self, shorts=not self.shorts)
        if attr == "long_sleeves":
            return replace(self, long_sleeves=not self.long_sleeves)
        if attr == "bag":
            bags = [b for b in ("none", "backpack", "shoulder") if b != self.bag]
            return replace(self, bag=_pick(rng, bags), bag_colour=other.bag_colour)
        return replace(self, **{attr: getattr(other, attr)})

    def key(self) -> tuple:
        """The attributes that can be told apart in an image (equal keys = look-alikes)."""
        pattern = (
            ("plain",)
            if self.pattern == "plain"
            else (self.pattern, self.pattern_colour, self.pattern_period)
        )
        bag = ("none",) if self.bag == "none" else (self.bag, self.bag_colour)
        return (
            self.shirt,
            *pattern,
            self.long_sleeves,
            self.trousers,
            self.shorts,
            self.shoes,
            self.skin,
            self.hair,
            self.long_hair,
            *bag,
            self.build,
        )


def _far(a: RGB, b: RGB) -> bool:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) > 150


def sample_identities(
    rng: np.random.Generator, n: int, sibling_rate: float = 0.25
) -> list[Identity]:
    """``n`` distinct identities; a ``sibling_rate`` fraction mutate an earlier one."""
    out: list[Identity] = []
    keys: set[tuple] = set()
    while len(out) < n:
        if out and rng.random() < sibling_rate:
            ident = out[int(rng.integers(len(out)))].mutate(rng)
        else:
            ident = Identity.sample(rng)
        if ident.key() not in keys:
            keys.add(ident.key())
            out.append(ident)
    return out
