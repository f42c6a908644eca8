"""benchmarks/make_table.py flags a result stale when the code it measured has changed since.

A throw-away git repository stands in for genvision's: results record the blob hashes of the
files they measure (``common.provenance``), a file is then edited, and the table must mark the
results that measured it, and only those, as stale.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import common  # noqa: E402
import make_table  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")


def git(root: Path, *args: str) -> str:
    cmd = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false"]
    return subprocess.run([*cmd, *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A committed repository: a package folder, a benchmark script, the shared helpers."""
    for path, text in {
        "src/genvision/pkg/model.py": "WIDTH = 32\n",
        "src/genvision/pkg/nets.py": "DEPTH = 2\n",
        "src/genvision/other/flows.py": "STEPS = 4\n",
        "benchmarks/common.py": "# helpers\n",
        "benchmarks/bench.py": "# the script\n",
    }.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "start")
    return tmp_path


def result(name: str, record: dict | None) -> dict:
    out = {"benchmark": name, "mode": "quick", "table": [{"figure": f"{name} figure", "value": 1.0}]}
    return out | ({"provenance": record} if record is not None else {})


def table_cells(results: Path, root: Path) -> dict[str, str]:
    """benchmark -> its provenance cell in the generated table."""
    lines = make_table.rows(results, root)
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    cells = {}
    for line in lines[2:]:
        row = [c.strip() for c in line.strip("|").split("|")]
        cells[row[0]] = row[header.index("code")]
    return cells


def test_changed_measured_file_makes_only_its_results_stale(repo: Path, tmp_path_factory):
    head = git(repo, "rev-parse", "HEAD")
    record = common.provenance(["src/genvision/pkg/", "benchmarks/bench.py"], root=repo)
    assert record["commit"] == head and record["dirty"] is False and record["uncommitted"] == []
    assert set(record["measures"]) == {
        "benchmarks/bench.py",
        "benchmarks/common.py",
        "src/genvision/pkg/model.py",
        "src/genvision/pkg/nets.py",
    }
    # the recorded hash is git's own blob hash of the working-tree file
    assert record["measures"]["src/genvision/pkg/model.py"] == git(
        repo, "hash-object", "src/genvision/pkg/model.py"
    )
    other = common.provenance(["src/genvision/other/"], root=repo)

    results = tmp_path_factory.mktemp("results")
    (results / "pkg.json").write_text(json.dumps(result("pkg", record)))
    (results / "other.json").write_text(json.dumps(result("other", other)))
    (results / "old.json").write_text(json.dumps(result("old", None)))

    cells = table_cells(results, repo)
    assert cells == {"pkg": head[:7], "other": head[:7], "old": "stale: no provenance record"}

    (repo / "src/genvision/pkg/model.py").write_text("WIDTH = 64\n")  # the measured code changes
    cells = table_cells(results, repo)
    assert cells["pkg"] == "stale: files changed since: pkg/model.py"
    assert cells["other"] == head[:7]  # it did not measure that file
    assert cells["old"] == "stale: no provenance record"

    # a run recorded on the dirty tree is honest about it, and current again
    again = common.provenance(["src/genvision/pkg/", "benchmarks/bench.py"], root=repo)
    assert again["dirty"] is True and again["uncommitted"] == ["src/genvision/pkg/model.py"]
    (results / "pkg.json").write_text(json.dumps(result("pkg", again)))
    assert table_cells(results, repo)["pkg"] == f"{head[:7]}, uncommitted: pkg/model.py"


def test_new_or_deleted_file_in_a_measured_folder_is_a_change(repo: Path):
    record = common.provenance(["src/genvision/pkg/"], root=repo)
    (repo / "src/genvision/pkg/extra.py").write_text("X = 1\n")
    (repo / "src/genvision/pkg/nets.py").unlink()
    changed, new = common.changed_files(record, repo)
    assert changed == ["src/genvision/pkg/nets.py"] and new == ["src/genvision/pkg/extra.py"]
    note = make_table.code_note(result("pkg", record), repo)
    assert note == "stale: files changed since: pkg/nets.py, pkg/extra.py (new)"


def test_merged_result_is_stale_where_its_parts_measured_different_code(repo: Path):
    first = common.provenance(["src/genvision/pkg/"], root=repo)
    (repo / "src/genvision/pkg/nets.py").write_text("DEPTH = 3\n")
    second = common.provenance(["src/genvision/pkg/"], root=repo)
    merged = common.merged_provenance([first, second])
    assert merged["parts_differ"] == ["src/genvision/pkg/nets.py"]
    assert make_table.code_note(result("m", merged), repo) == "stale: files changed since: pkg/nets.py"
    assert common.merged_provenance([first, None])["measures"] is None  # a part without a record


def test_quick_and_full_results_go_to_different_files():
    assert common.default_json("quality_budget", quick=True).name == "quality_budget-quick.json"
    assert common.default_json("quality_budget", quick=False).name == "quality_budget.json"


def test_training_records_leave_out_validation_and_header_lines(tmp_path):
    lines = [
        {"model_config": {"channels": 1}},
        {"step": 10, "images": 640, "elapsed": 1.0, "img_per_s": 640.0, "loss": 0.5},
        {"step": 10, "val_loss": 0.6},
        {"step": 20, "images": 1280, "elapsed": 2.0, "img_per_s": 650.0, "loss": 0.4},
        {"step": 20, "val_loss": 0.55},
    ]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines) + "\n")
    records = common.training_records(tmp_path)
    assert [r["step"] for r in records] == [10, 20] and records[-1]["images"] == 1280
