"""The web app's endpoints through FastAPI's test client: security first (token, Host, paths,
uploads), then runs, sampling (equal to the library's images), applications, training jobs and the
quiz (its interval against scipy's)."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import time

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from gvtest import bomb_png
from PIL import Image
from ui_helpers import BASE, TOKEN, wait_task

import genvision as gv
from genvision.ui import markdown, security
from genvision.ui.quiz import summarise, wilson


def png_of(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def decode_data_url(url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def listing(root) -> set:
    return {str(p.relative_to(root)) for p in root.rglob("*") if ".ui" not in p.parts}


# ----------------------------------------------------------------------------- the token and the Host
@pytest.fixture()
def bare(client):
    """A client of the same app without the token."""
    return TestClient(client.app, base_url=BASE)


@pytest.mark.parametrize(
    "path", ["/", "/api/runs", "/api/run?run=ddpm-digits", "/files/ddpm-digits/config.json", "/static/app.js"]
)
def test_every_request_needs_the_token(bare, path):
    r = bare.get(path)
    assert r.status_code == 403
    assert "token" in r.text


def test_wrong_token_is_refused(bare):
    assert bare.get("/api/runs", headers={"x-genvision-token": "nope"}).status_code == 403
    wrong = TestClient(bare.app, base_url=BASE, cookies={security.COOKIE: TOKEN + "x"})
    assert wrong.get("/api/runs").status_code == 403


def test_start_url_token_becomes_a_cookie(client):
    c = TestClient(client.app, base_url=BASE)
    r = c.get(f"/?token={TOKEN}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert security.COOKIE in r.cookies
    assert (
        "httponly" in r.headers["set-cookie"].lower() and "samesite=strict" in r.headers["set-cookie"].lower()
    )
    c.cookies.set(security.COOKIE, r.cookies[security.COOKIE])
    assert c.get("/api/runs").status_code == 200
    assert "genvision" in c.get("/").text


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:7860", "127.0.0.1.evil.example", "", "192.168.1.5:7860"]
)
def test_foreign_host_header_is_refused(client, host):
    r = client.get("/api/runs", headers={"host": host})
    assert r.status_code == 400


@pytest.mark.parametrize("host", ["127.0.0.1:7860", "localhost:7860", "[::1]:7860", "localhost"])
def test_local_host_headers_pass(client, host):
    assert client.get("/api/runs", headers={"host": host}).status_code == 200


def test_security_headers_on_every_response(client, bare):
    for r in (
        client.get("/"),
        client.get("/api/runs"),
        bare.get("/api/runs"),
        client.get("/files/ddpm-digits/grid.png"),
    ):
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"


def test_host_rules():
    hosts = security.allowed_hosts("127.0.0.1")
    assert security.host_ok("LOCALHOST:1", hosts)
    assert not security.host_ok("10.0.0.2:7860", hosts)
    assert security.host_ok("10.0.0.2:7860", security.allowed_hosts("10.0.0.2"))
    assert security.host_ok("anything", security.allowed_hosts("0.0.0.0"), any_host=True)


# ----------------------------------------------------------------------------- paths
@pytest.mark.parametrize(
    "path",
    [
        "/files/../../etc/passwd",
        "/files/..%2f..%2fetc%2fpasswd",
        "/files/%2e%2e/%2e%2e/etc/passwd",
        "/files/ddpm-digits/..%2f..%2f..%2fetc%2fpasswd",
        "/files//etc/passwd",
        "/files/%2fetc%2fpasswd",
        "/files/ddpm-digits%5c..%5c..%5cetc%5cpasswd",
        "/files/%252e%252e/%252e%252e/etc/passwd",
        "/files/ddpm-digits/%00config.json",
    ],
)
def test_paths_out_of_the_runs_folder_are_refused(client, path):
    r = client.get(path)
    assert r.status_code in (403, 404)
    assert "root:" not in r.text


def test_symlink_out_of_the_runs_folder_is_refused(client, ui_runs, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    link = ui_runs / "ddpm-digits" / "link.txt"
    link.symlink_to(secret)
    try:
        r = client.get("/files/ddpm-digits/link.txt")
        assert r.status_code == 403 and "private" not in r.text
    finally:
        link.unlink()


def test_files_inside_are_served(client):
    r = client.get("/files/ddpm-digits/config.json")
    assert r.status_code == 200 and r.json()["registry_name"] == "ddpm"
    assert client.get("/files/ddpm-digits").status_code == 404  # folders are not listed


@pytest.mark.parametrize("run", ["../ddpm-digits", "/etc", "ddpm-digits/../../x", "nothing-here"])
def test_run_names_stay_inside(client, run):
    r = client.get("/api/run", params={"run": run})
    assert r.status_code in (403, 404)
    assert len(r.json()["error"].splitlines()) == 1


# ----------------------------------------------------------------------------- uploads
def test_upload_good_image_writes_nothing(client, ui_runs):
    before = listing(ui_runs)
    arr = (np.arange(64, dtype=np.uint8).reshape(8, 8) * 4).astype(np.uint8)
    r = client.post("/api/upload?run=ddpm-digits", files={"file": ("a.png", png_of(arr), "image/png")})
    assert r.status_code == 200, r.text
    assert (r.json()["width"], r.json()["height"]) == (8, 8)
    assert listing(ui_runs) == before


def test_upload_corrupt_file_is_one_line(client):
    r = client.post(
        "/api/upload?run=ddpm-digits", files={"file": ("a.png", b"\x89PNG\r\n\x1a\nnot really", "image/png")}
    )
    assert r.status_code == 400
    assert "not a usable image" in r.json()["error"] and len(r.json()["error"].splitlines()) == 1


def test_upload_too_large_is_refused(client):
    big = b"\0" * (security.MAX_UPLOAD_BYTES + 10)
    r = client.post("/api/upload?run=ddpm-digits", files={"file": ("a.png", big, "image/png")})
    assert r.status_code == 400 and "limit" in r.json()["error"]


def test_upload_decompression_bomb_is_refused(client):
    r = client.post("/api/upload?run=ddpm-digits", files={"file": ("bomb.png", bomb_png(), "image/png")})
    assert r.status_code == 400
    assert "not a usable image" in r.json()["error"]


# ----------------------------------------------------------------------------- runs and reports
def test_runs_lists_both_runs_with_cards(client):
    runs = {r["name"]: r for r in client.get("/api/runs").json()["runs"]}
    assert set(runs) >= {"ddpm-digits", "vae-digits"}
    d = runs["ddpm-digits"]
    assert d["model"] == "ddpm" and d["status"] == "finished" and d["grid"] == "grid.png"
    assert d["progress"]["step"] == 40 and d["progress"]["fraction"] == 1.0


def test_run_page_renders_the_report(client):
    d = client.get("/api/run", params={"run": "ddpm-digits"}).json()
    assert "<table>" in d["report_html"] and 'src="/files/ddpm-digits/loss.png"' in d["report_html"]
    assert d["config"]["registry_name"] == "ddpm"


def test_markdown_escapes_and_drops_foreign_links():
    html = markdown.render(
        "# a <script>x</script>\n\n[x](javascript:alert(1)) ![i](../../etc/passwd) ![ok](grid.png)\n\n| a | b |\n|---|---|\n| <b> | `c<d` |",
        base="/files/r/",
    )
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "javascript:" not in html and "etc/passwd" not in html
    assert 'src="/files/r/grid.png"' in html and "<code>c&lt;d</code>" in html


def test_progress_of_a_run_in_progress(tmp_path):
    from genvision.ui import runs as ui_runs

    run = tmp_path / "r"
    run.mkdir()
    meta = {"status": "training", "train_config": {"steps": 200, "images": None, "minutes": None}}
    (run / "config.json").write_text(json.dumps(meta))
    (run / "metrics.jsonl").write_text(
        json.dumps({"step": 50, "images": 100, "elapsed": 10.0, "loss": 0.5, "img_per_s": 10})
        + "\n"
        + '{"step": 6'
    )  # a last line cut mid-write is passed over
    p = ui_runs.progress(run, meta)
    assert p["step"] == 50 and p["fraction"] == 0.25 and p["eta"] == pytest.approx(30.0)
    assert ui_runs.status_of(meta, p, live=False) == "training"
    old = time.time() - 3600
    os.utime(run / "metrics.jsonl", (old, old))
    assert ui_runs.status_of(meta, ui_runs.progress(run, meta), live=False) == "stale"
    assert ui_runs.status_of(meta, ui_runs.progress(run, meta), live=True) == "training"
    minutes = {"status": "training", "train_config": {"minutes": 2}}
    assert ui_runs.progress(run, minutes)["fraction"] == pytest.approx(10 / 120)


# ----------------------------------------------------------------------------- sampling
def test_sampled_images_equal_the_library_and_download_with_their_record(client, ui_runs):
    r = client.post("/api/sample", json={"run": "ddpm-digits", "n": 5, "seed": 7})
    assert r.status_code == 200, r.text
    s = wait_task(client, r.json()["task"])
    assert s["error"] is None and s["count"] == 5 and [it["k"] for it in s["items"]] == list(range(5))
    ref = gv.sample(str(ui_runs / "ddpm-digits"), 5, seed=7, out=ui_runs.parent / "ref.npz")
    with np.load(ui_runs.parent / "ref.npz") as f:
        want = f["images"][..., 0]
    for k in range(5):
        shown = decode_data_url(s["items"][k]["png"])
        png = client.get(f"/api/tasks/{s['id']}/image/{k}.png")
        assert png.status_code == 200
        im = Image.open(io.BytesIO(png.content))
        record = json.loads(im.text["genvision"])
        assert record["seed"] == 7 and record["index"] == k and record["registry_name"] == "ddpm"
        assert record["weights_sha256"] == ref["record"]["weights_sha256"]
        np.testing.assert_array_equal(np.asarray(im), want[k])
        np.testing.assert_array_equal(shown, want[k])
    npz = client.get(f"/api/tasks/{s['id']}/images.npz")
    with np.load(io.BytesIO(npz.content)) as f:
        np.testing.assert_array_equal(f["images"][..., 0], want)
        assert json.loads(str(f["metadata"]))["seed"] == 7


def test_sample_errors_are_one_line(client):
    r = client.post("/api/sample", json={"run": "ddpm-digits", "n": 0})
    assert r.status_code == 400 and "n must be between" in r.json()["error"]
    r = client.post("/api/sample", json={"run": "ddpm-digits", "n": 2, "temperature": 0.5})
    s = wait_task(client, r.json()["task"])
    assert "does not take sampling option" in s["error"] and len(s["error"].splitlines()) == 1
    r = client.post("/api/sample", json={"run": "vae-digits", "n": 2, "sampler": "ddim"})
    assert "does not take" in wait_task(client, r.json()["task"])["error"]
    assert (
        client.post(
            "/api/sample", content=b"{not json", headers={"content-type": "application/json"}
        ).status_code
        == 400
    )


def test_options_list_what_each_model_takes(client):
    d = client.get("/api/run/options", params={"run": "ddpm-digits"}).json()
    assert "sampler" in d["accepts"] and "dpm++2m" in d["samplers"] and not d["prompts"]
    assert set(d["apps"]) == {"inpaint", "upscale", "translate", "edit"}  # grey: no colorize
    v = client.get("/api/run/options", params={"run": "vae-digits"}).json()
    assert "interpolate" in v["apps"] and "translate" not in v["apps"] and "sampler" not in v["accepts"]


# ----------------------------------------------------------------------------- applications
def _mask_url(size: int, box) -> tuple[str, np.ndarray]:
    m = np.zeros((size, size), np.uint8)
    y0, y1, x0, x1 = box
    m[y0:y1, x0:x1] = 255
    return "data:image/png;base64," + base64.b64encode(png_of(m)).decode(), m > 0


def test_inpaint_keeps_the_known_pixels(client):
    url, hole = _mask_url(8, (2, 6, 2, 6))
    r = client.post(
        "/api/apps/inpaint",
        json={"run": "ddpm-digits", "images": [{"test": 3}], "mask": url, "params": {"seed": 1}},
    )
    s = wait_task(client, r.json()["task"])
    assert s["error"] is None, s["error"]
    panels = {p["title"]: decode_data_url(p["png"][0]) for p in s["items"][0]["panels"]}
    assert set(panels) == {"input", "degraded", "output"}
    np.testing.assert_array_equal(panels["output"][~hole], panels["input"][~hole])


def test_app_errors_are_one_line(client):
    url, _ = _mask_url(8, (0, 0, 0, 0))
    r = client.post("/api/apps/inpaint", json={"run": "ddpm-digits", "images": [{"test": 0}], "mask": url})
    assert "mask is empty" in wait_task(client, r.json()["task"])["error"]
    r = client.post("/api/apps/colorize", json={"run": "ddpm-digits", "images": [{"test": 0}]})
    assert "cannot colorize" in wait_task(client, r.json()["task"])["error"]
    r = client.post("/api/apps/upscale", json={"run": "ddpm-digits", "images": []})
    assert "pick or upload" in wait_task(client, r.json()["task"])["error"]
    assert client.post("/api/apps/nothing", json={"run": "ddpm-digits"}).status_code == 404


def test_upscale_translate_edit_and_interpolate_run(client):
    cases = [
        ("upscale", "ddpm-digits", [{"test": 1}], {"scale": 2}),
        ("translate", "ddpm-digits", [{"test": 1}], {"strength": 0.4}),
        ("edit", "vae-digits", [{"test": 1}], {"attribute": "thickness", "amount": 1.5}),
        ("interpolate", "vae-digits", [{"test": 1}, {"test": 2}], {"frames": 5}),
    ]
    for app, run, images, params in cases:
        r = client.post(f"/api/apps/{app}", json={"run": run, "images": images, "params": params})
        s = wait_task(client, r.json()["task"])
        assert s["error"] is None, (app, s["error"])
        out = [p for p in s["items"][0]["panels"] if p["title"] == "output"][0]["png"]
        assert len(out) == (5 if app == "interpolate" else 1)
        assert decode_data_url(out[0]).shape == (8, 8)


def test_uploaded_image_feeds_an_app(client):
    arr = np.zeros((16, 16), np.uint8)
    arr[4:12, 6:10] = 255
    up = client.post(
        "/api/upload?run=ddpm-digits", files={"file": ("x.png", png_of(arr), "image/png")}
    ).json()
    url, _ = _mask_url(8, (0, 4, 0, 8))
    r = client.post(
        "/api/apps/inpaint", json={"run": "ddpm-digits", "images": [{"upload": up["upload"]}], "mask": url}
    )
    assert wait_task(client, r.json()["task"])["error"] is None


# ----------------------------------------------------------------------------- training jobs
def test_train_refuses_bad_input_in_one_line(client, ui_runs):
    for body, words in [
        ({"model": "nope"}, "unknown model"),
        ({"model": "ddpm", "name": "../escape"}, "run name"),
        ({"model": "ddpm", "name": "ddpm-digits"}, "exists"),
        ({"model": "ddpm", "steps": 5, "minutes": 1}, "not both"),
        ({"model": "ddpm", "set": {"a;b": "1"}}, "setting"),
    ]:
        r = client.post("/api/train", json=body)
        assert r.status_code == 400, body
        assert words in r.json()["error"].lower() and len(r.json()["error"].splitlines()) == 1


def test_train_stop_and_resume(client, ui_runs):
    r = client.post(
        "/api/train",
        json={
            "model": "ddpm",
            "data": "digits",
            "steps": 100000,
            "name": "stop-me",
            "batch_size": 16,
            "set": {"train.log_every": "1"},
        },
    )
    assert r.status_code == 200, r.text
    job = r.json()
    t0 = time.time()
    while time.time() - t0 < 120:
        runs = {c["name"]: c for c in client.get("/api/runs").json()["runs"]}
        if "stop-me" in runs and runs["stop-me"]["progress"]:
            break
        time.sleep(0.5)
    card = runs["stop-me"]
    assert card["status"] == "training" and 0 < card["progress"]["fraction"] < 1
    # while a child trains, the app's own computations take one thread (no oversubscription)
    from genvision.ui.jobs import Task

    jobs = client.app.state.ui.jobs
    probe = jobs.submit(Task("probe"), lambda t: t.add(torch.get_num_threads()))
    wait_task(client, probe.id)
    assert probe.items == [1]
    client.post(f"/api/jobs/{job['id']}/stop")
    t0 = time.time()
    while time.time() - t0 < 60:
        state = [j for j in client.get("/api/jobs").json()["jobs"] if j["id"] == job["id"]][0]
        if state["state"] != "running":
            break
        time.sleep(0.3)
    assert state["state"] == "stopped", state
    meta = json.loads((ui_runs / "stop-me" / "config.json").read_text())
    assert meta["status"] == "interrupted" and (ui_runs / "stop-me" / "training_state").exists()
    again = client.post("/api/resume", json={"run": "stop-me"})
    assert again.status_code == 200 and again.json()["kind"] == "resume"
    assert client.post("/api/resume", json={"run": "stop-me"}).status_code == 400  # already running
    client.post(f"/api/jobs/{again.json()['id']}/stop")
    client.app.state.ui.jobs.processes[again.json()["id"]].proc.wait(timeout=60)


# ----------------------------------------------------------------------------- the quiz
def test_wilson_interval_matches_scipy():
    from scipy.stats import binomtest

    for k, n in [(0, 10), (3, 10), (27, 40), (50, 50)]:
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert wilson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_quiz_records_answers_and_reports_them(client, ui_runs):
    q = client.post("/api/quiz", json={"run": "ddpm-digits", "per_kind": 3}).json()
    assert q["count"] == 6
    quiz = client.app.state.ui.quizzes[q["quiz"]]
    truths = [t for t, _, _ in quiz.items]
    assert sorted(truths) == ["generated"] * 3 + ["real"] * 3
    for i in range(6):
        png = client.get(f"/api/quiz/{q['quiz']}/{i}.png")
        assert png.status_code == 200 and np.asarray(Image.open(io.BytesIO(png.content))).shape == (8, 8)
        answer = "real" if i % 2 == 0 else "generated"
        res = client.post(
            f"/api/quiz/{q['quiz']}/answer", json={"i": i, "answer": answer, "ms": 400 + i}
        ).json()
    rows = [json.loads(x) for x in (ui_runs / "ddpm-digits" / "human_eval.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and {r["ms"] for r in rows} == {400.0 + i for i in range(6)}
    wrong = sum((("real" if i % 2 == 0 else "generated") != truths[i]) for i in range(6))
    assert res["summary"]["error_rate"] == pytest.approx(wrong / 6)
    assert res["summary"]["judgements"] == 6
    assert client.post(f"/api/quiz/{q['quiz']}/answer", json={"i": 0, "answer": "real"}).status_code == 400
    report = (ui_runs / "ddpm-digits" / "report.md").read_text()
    assert "## Human judgement" in report and "human error rate" in report
    cards = {c["name"]: c for c in client.get("/api/runs").json()["runs"]}
    assert cards["ddpm-digits"]["metrics"]["human_error_rate"] == pytest.approx(wrong / 6)


def test_summary_per_kind():
    rows = [
        {"session": "a", "truth": "real", "answer": "real", "ms": 1},
        {"session": "a", "truth": "generated", "answer": "real", "ms": 3},
        {"session": "b", "truth": "generated", "answer": "generated", "ms": 2},
    ]
    s = summarise(rows)
    assert (
        s["error_rate"] == pytest.approx(1 / 3)
        and s["error_rate_generated"] == 0.5
        and s["error_rate_real"] == 0
    )
    assert s["sessions"] == 2 and s["median_response_ms"] == 2


def test_cli_ui_refuses_a_missing_runs_folder(tmp_path, capsys):
    from genvision.cli import main

    assert main(["ui", "--runs", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and len(err.strip().splitlines()) == 1


def test_tensor_roundtrip_helpers():
    from genvision.ui.web import from_u8, to_u8

    x = torch.linspace(-1, 1, 2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    u = to_u8(x, 256)
    assert u.shape == (2, 4, 4, 3)
    np.testing.assert_allclose(from_u8(u[0]).numpy(), x[:1].numpy(), atol=1 / 127.5)


def test_cli_ui_refuses_a_port_in_use(ui_runs, capsys):
    import socket

    from genvision.cli import main

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["ui", "--runs", str(ui_runs), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert "pick another --port" in err and len(err.strip().splitlines()) == 1


def test_leaderboards_of_compare_outputs_are_listed(client, ui_runs):
    board = ui_runs / "cmp-digits"
    board.mkdir()
    (board / "leaderboard.json").write_text(
        json.dumps({"data": "digits", "models": [{"model": "ddpm"}, {"model": "vae"}]})
    )
    (board / "report.md").write_text(
        "# compare\n\n| model | fid |\n|---|---|\n| ddpm | 4.2 |\n\n![grids](grids.png)\n"
    )
    try:
        boards = {b["name"]: b for b in client.get("/api/leaderboards").json()["leaderboards"]}
        b = boards["cmp-digits"]
        assert b["models"] == ["ddpm", "vae"] and "<td>4.2</td>" in b["report_html"]
        assert 'src="/files/cmp-digits/grids.png"' in b["report_html"]
    finally:
        shutil.rmtree(board)


def test_upload_without_length_or_over_the_limit_is_refused_before_reading(client):
    r = client.post(
        "/api/upload?run=ddpm-digits",
        content=b"x" * 10,
        headers={"content-type": "multipart/form-data; boundary=b", "content-length": str(10**9)},
    )
    assert r.status_code == 400 and "limit" in r.json()["error"]
