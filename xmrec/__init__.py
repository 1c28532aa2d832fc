"""xmrec: a notebook-driven research kit for distribution shift in recommender ranking.

Ada-Ranker (SIGIR 2022) and the WSDM Cup 2022 cross-market recommendation pipeline, re-implemented.
"""

__version__ = "0.1.0"
