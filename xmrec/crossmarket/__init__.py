"""Cross-market ranking (WSDM Cup 2022 XMRec): the first-place pipeline, re-implemented and extended.

Modules, one idea each: ``graph`` (all markets as one graph, leakage-safe views), ``candidates``
(official, given or sampled lists), ``scorers/`` (popularity, ItemCF, Swing, UserCF, EASE,
word2vec, LightGCN, the kit's sequential rankers; each ranks alone), ``features`` (feature tables
with list context), ``augment`` (extra training lists held out from the target's own data), ``ranker`` (LightGBM,
user-grouped CV), ``evaluation`` (official NDCG@10 / HR@10), ``submission`` (prediction files and
the zip), ``synthetic`` (markets from synthetic interactions), ``settings`` and ``pipeline``; for
notebook 05: ``overlap`` (what each market knows of the target's lists), ``leakage`` (the cost of
leakage, measured on purpose) and ``ablation`` (does an extra scorer help the ranker?).
"""

from .pipeline import CrossMarketResult, run_crossmarket, run_target
from .settings import CrossMarketConfig

__all__ = ["CrossMarketConfig", "CrossMarketResult", "run_crossmarket", "run_target"]
