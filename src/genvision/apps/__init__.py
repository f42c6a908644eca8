"""Applications: ``gv.apps.inpaint(model, images, masks)``, ``gv.apps.upscale``, ``gv.apps.colorize``
(``restore.py``), ``gv.apps.translate``, ``gv.apps.invert`` (``translation.py``), ``gv.apps.edit``,
``gv.apps.thickness`` (``editing.py``), ``gv.apps.style_transfer``, ``gv.apps.translate_trained``
(``stylize.py``); each module holds
one application (its API, its CLI's ``run`` and its baselines). Imported on first use. (A function
never shares its module's name here: importing a submodule would replace the function.)"""

from __future__ import annotations

import importlib

_WHERE = {
    "inpaint": "restore",
    "upscale": "restore",
    "colorize": "restore",
    "translate": "translation",
    "invert": "translation",
    "edit": "editing",
    "thickness": "editing",
    "style_transfer": "stylize",
    "translate_trained": "stylize",
}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
