"""Baselines every method is compared with: Random and Popularity (sanity floors), EASE and
ALS (strong yardsticks)."""

from embedlens.methods.baselines.als import ALSModel
from embedlens.methods.baselines.ease import EASEModel
from embedlens.methods.baselines.popularity import PopularityModel
from embedlens.methods.baselines.random import RandomModel

__all__ = ["ALSModel", "EASEModel", "PopularityModel", "RandomModel"]
