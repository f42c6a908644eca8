"""The web app's fixtures: a runs folder with two short runs (a ddpm and a vae on digits), trained
once per session, and a test client that carries the session token."""

from __future__ import annotations

import pytest
from ui_helpers import BASE, TOKEN


@pytest.fixture(scope="session")
def ui_runs(tmp_path_factory):
    import genvision as gv

    root = tmp_path_factory.mktemp("ui-runs")
    gv.train("ddpm", data="digits", out=root / "ddpm-digits", steps=40, progress=False)
    gv.train("vae", data="digits", out=root / "vae-digits", steps=40, progress=False)
    return root


@pytest.fixture(scope="session")
def client(ui_runs):
    from fastapi.testclient import TestClient

    from genvision.ui import create_app

    app = create_app(ui_runs, token=TOKEN)
    with TestClient(app, base_url=BASE, headers={"x-genvision-token": TOKEN}) as c:
        yield c
