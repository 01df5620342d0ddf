"""The development measurements: the send-path benchmark, the fault harness and their SMTP servers.

Not shipped in the wheel and never imported by the product; run them with ``python -m bench`` (``make
bench``, ``make chaos``). Dated results are kept in ``bench/results/``.
"""
