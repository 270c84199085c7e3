"""Silence third-party output a user cannot act on, and nothing else.

Each entry names the library, the message and why it is noise here; anything not listed still
reaches the user. Called before transformers/peft load (``load_model``, the CLI's entry point).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

# bitsandbytes (installed with the [cuda] extra; peft imports it whenever it is present) looks for an
# optional hub kernel on AVX512-BF16 CPUs and logs its absence; its own CPU 4-bit path works without it.
_BNB_LOGGER = "bitsandbytes.backends.cpu.ops"
_BNB_MESSAGE = "kernels-community"
# peft calls transformers' deprecated `is_gradient_checkpointing` while loading an adapter.
_PEFT_DEPRECATION = r".*is_gradient_checkpointing.*"

_done = False


class _DropMessage(logging.Filter):
    def __init__(self, fragment: str) -> None:
        super().__init__()
        self.fragment = fragment

    def filter(self, record: logging.LogRecord) -> bool:
        return self.fragment not in record.getMessage()


def quiet_third_party() -> None:
    """Install the filters once per process (idempotent)."""
    global _done
    if _done:
        return
    logging.getLogger(_BNB_LOGGER).addFilter(_DropMessage(_BNB_MESSAGE))
    warnings.filterwarnings("ignore", message=_PEFT_DEPRECATION, category=FutureWarning)
    _done = True


@contextmanager
def no_progress_bar() -> Iterator[None]:
    """Hide transformers' weight-loading bar (under a second for the default model), then restore it."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
