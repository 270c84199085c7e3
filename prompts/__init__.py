"""Prompt templates as files: ``<name>.jinja`` beside this module, versions in ``versions.yaml``.

Each template defines Jinja2 blocks named after chat roles (``system``, ``user``, optionally
``assistant``); ``render`` turns each block into one message, in that role order, and leaves the
model-specific tokens to ``tokenizer.apply_chat_template``. Rendering uses ``StrictUndefined``,
so a missing field raises at once instead of silently printing nothing.

    >>> from prompts import render, template_version
    >>> render("pointwise", history=[], candidate="Fargo (1996), Crime|Drama")[1]["role"]
    'user'
    >>> template_version("pointwise")
    'pointwise-v1'
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import yaml

PROMPTS_DIR = Path(__file__).resolve().parent
ROLES = ("system", "user", "assistant")

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(PROMPTS_DIR),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,
    keep_trailing_newline=False,
)


def _load_versions() -> dict[str, str]:
    versions = yaml.safe_load((PROMPTS_DIR / "versions.yaml").read_text()) or {}
    files = {path.stem for path in PROMPTS_DIR.glob("*.jinja")}
    if set(versions) != files:
        raise RuntimeError(
            f"{PROMPTS_DIR / 'versions.yaml'}: templates {sorted(files)} and versioned names "
            f"{sorted(versions)} differ; give every <name>.jinja exactly one version line."
        )
    return {name: str(version) for name, version in versions.items()}


TEMPLATE_VERSIONS: dict[str, str] = _load_versions()
"""Template name -> version string (from ``versions.yaml``); recorded with results and adapters."""

TEMPLATE_NAMES: tuple[str, ...] = tuple(sorted(TEMPLATE_VERSIONS))


def template_version(name: str) -> str:
    """Version string of template ``name``; raises ``KeyError`` naming the known templates."""
    try:
        return TEMPLATE_VERSIONS[name]
    except KeyError:
        raise KeyError(f"no prompt template {name!r}; known: {', '.join(TEMPLATE_NAMES)}") from None


@cache
def _template(name: str) -> jinja2.Template:
    template_version(name)  # unknown names fail with the list of known ones
    return _ENV.get_template(f"{name}.jinja")


@cache
def template_fields(name: str) -> frozenset[str]:
    """Names of the fields template ``name`` reads."""
    source = _ENV.loader.get_source(_ENV, f"{name}.jinja")[0]  # type: ignore[union-attr]
    return frozenset(jinja2.meta.find_undeclared_variables(_ENV.parse(source)))


def render(name: str, **fields: Any) -> list[dict[str, str]]:
    """Render template ``name`` into chat messages ``[{"role", "content"}, ...]``.

    Raises:
        jinja2.UndefinedError: a field the template uses is missing.
        ValueError: a field the template does not know was passed (usually a typo).
    """
    template = _template(name)
    unknown = set(fields) - template_fields(name)
    if unknown:
        raise ValueError(
            f"prompt template {name!r} has no field(s) {sorted(unknown)}; it reads {sorted(template_fields(name))}"
        )
    context = template.new_context(fields)
    messages = []
    try:
        for role in ROLES:
            if role in template.blocks:
                content = "".join(template.blocks[role](context)).strip()
                messages.append({"role": role, "content": content})
    except jinja2.UndefinedError as exc:
        raise jinja2.UndefinedError(f"prompt template {name!r}: {exc.message}") from None
    return messages


__all__ = ["PROMPTS_DIR", "TEMPLATE_NAMES", "TEMPLATE_VERSIONS", "render", "template_fields", "template_version"]
