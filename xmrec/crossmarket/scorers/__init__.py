"""Scorers: each turns the interactions visible at a stage into features of candidate pairs."""

from .base import Scorer
from .ease import EASE
from .embeddings import Word2VecScorer
from .itemcf import ItemCF
from .lightgcn import LightGCN
from .popularity import Popularity
from .swing import Swing
from .usercf import UserCF

__all__ = ["Scorer", "EASE", "ItemCF", "LightGCN", "Popularity", "Swing", "UserCF", "Word2VecScorer"]
