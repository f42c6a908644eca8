"""The web app's real-or-generated quiz: start one on a run, show its items, record answers
(``quiz.Quiz``), and rewrite the run's report.md once every item is answered."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import Response

from .quiz import Quiz
from .web import float_field, in_worker, int_field, json_body, png_bytes

if TYPE_CHECKING:
    from .server import UI


def add_routes(app: FastAPI, ui: UI) -> None:
    """Quiz routes: start, item images, answers."""

    # ---- human judgement
    @app.post("/api/quiz")
    async def quiz_start(request: Request):
        body = await json_body(request)
        run = body.get("run")
        path = ui.run_dir(run)
        per_kind = int_field(body, "per_kind", 10, 1, 100)

        def work():
            model, _ = ui.model(run)
            q = Quiz(path, model, per_kind=per_kind)
            ui.quizzes[q.session] = q
            return {"quiz": q.session, "count": len(q.items)}

        return await in_worker(ui, work)

    @app.get("/api/quiz/{quiz_id}/{i}.png")
    async def quiz_item(quiz_id: str, i: int):
        q = _quiz(ui, quiz_id)
        return Response(
            png_bytes(q.item(i).numpy()), media_type="image/png", headers={"Cache-Control": "no-store"}
        )

    @app.post("/api/quiz/{quiz_id}/answer")
    async def quiz_answer(quiz_id: str, request: Request):
        body = await json_body(request)
        q = _quiz(ui, quiz_id)
        result = q.answer(
            int_field(body, "i", None, 0, 10_000), str(body.get("answer")), float_field(body, "ms")
        )
        if len(q.answered) == len(q.items):
            from ..metrics.report import write_report

            write_report(q.run)
        return result


def _quiz(ui: UI, quiz_id: str) -> Quiz:
    q = ui.quizzes.get(quiz_id)
    if q is None:
        raise FileNotFoundError(f"no quiz {quiz_id}; start one from a run's page")
    return q
