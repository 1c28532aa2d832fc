"""How much of a target's candidate lists the other markets know: the reason cross-market helps.

For every market (and for the sources together), on the validation view (so the target's own
validation positives are not counted as known): its users, items and interactions, the share of
the target's distinct candidate items it has interactions with, how many interactions it has on
those items (the co-purchase evidence an ItemCF over that market gets about exactly these
items), and the share of the target's validation positives whose item it has seen.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .candidates import Candidates
from .graph import VALID, CrossMarketData

__all__ = ["market_coverage"]


def market_coverage(data: CrossMarketData, cands: Candidates) -> pd.DataFrame:
    """One row per market plus "all sources" (see the module docstring); shares in [0, 1]."""
    view = data.view(VALID)
    pool = np.unique(cands.items)
    positives = cands.items[np.flatnonzero(cands.labelled), cands.positive[cands.labelled]]
    rows = {}
    for name, markets in [(m, (m,)) for m in data.market_names] + [("all sources", data.sources)]:
        counts = view.item_counts(markets)
        users = view.user_mask(markets) & (np.diff(view.binary.indptr) > 0)
        rows[name] = {
            "role": "target" if name == data.target else "source",
            "users": int(users.sum()),
            "items": int((counts > 0).sum()),
            "interactions": int(counts.sum()),
            "candidate items seen": float((counts[pool] > 0).mean()),
            "interactions on candidate items": int(counts[pool].sum()),
            "validation positives seen": float((counts[positives] > 0).mean()) if len(positives) else float("nan"),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("market")
