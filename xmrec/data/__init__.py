"""The data layer: raw sources, the synthetic generator, processing, sampling, embeddings, storage.

Import the submodule you need (``from xmrec.data import sources``); this package imports nothing
heavy on its own.
"""
