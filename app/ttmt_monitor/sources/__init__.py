"""Data sources: each turns a trading service's wire format into the source-neutral objects of ``core.models``.

Only TTMT exists today (``sources.ttmt``); later sources (e.g. Tradovate, MetaApi) live beside it.
"""
