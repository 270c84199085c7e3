"""Evaluation: ranking metrics and paired bootstrap intervals (``metrics``, pure), the
protocol that ranks every method for the same users and writes tables (``protocol``), and
sharding batch work across processes (``distributed``).
"""
