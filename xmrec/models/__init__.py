"""The shared ranker, seven base encoders and the Ada-Ranker components (docs/DESIGN.md section 6)."""

from xmrec.models.adaranker import Distribution
from xmrec.models.ranker import Ranker, list_bce
from xmrec.models.registry import MODEL_NAMES, build_model, canonical_name

__all__ = ["MODEL_NAMES", "Distribution", "Ranker", "build_model", "canonical_name", "list_bce"]
