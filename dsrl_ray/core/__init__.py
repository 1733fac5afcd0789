"""DSRL's pure parts, importable without Ray: noise-policy and critic networks, losses, replay.

Nothing here imports Ray or RLlib, so every piece is testable in milliseconds.
"""
