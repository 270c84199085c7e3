"""Subcommands of the ``recommender`` CLI, one module each (see ``recommender.cli``)."""
