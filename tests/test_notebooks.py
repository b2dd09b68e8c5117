"""The notebooks in notebooks/ execute from a clean kernel and show what they promise.

Each notebook runs in a fresh ipykernel through nbclient (as ``jupyter nbconvert --execute``
would), with the kernel spec written into a temporary directory: a clean clone in a fresh
venv needs nothing from the user's ~/.local or ~/.jupyter.  A cell that raises fails the test;
the checks then read the outputs the notebook produced.
"""

from __future__ import annotations

import html
import importlib.util
import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

import hkrt  # noqa: E402  (after the skips: the checks above say what is missing)

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
KERNEL = "hkrt-notebooks"
CELL_TIMEOUT = 180  # seconds; each notebook takes about 3-12 s on a 2-core machine


def generator() -> Any:
    spec = importlib.util.spec_from_file_location("make_notebooks", NOTEBOOKS / "make_notebooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernel spec running this interpreter, found through JUPYTER_PATH in a temporary
    directory; the kernel imports hkrt from where this test did (the source tree or site-packages)."""
    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    package_root = str(Path(hkrt.__file__).resolve().parents[1])
    python_path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "hkrt notebooks test",
        "language": "python",
        "env": {"PYTHONPATH": python_path, "IPYTHONDIR": str(tmp_path / "ipython")},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))  # connection files
    return KERNEL


def outputs(nb: Any) -> list[Any]:
    return [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]


def stdout(nb: Any) -> str:
    return "".join(o.text for o in outputs(nb) if o.output_type == "stream" and o.name == "stdout")


def rich(nb: Any, mime: str) -> list[str]:
    return [o.data[mime] for o in outputs(nb) if o.output_type in ("display_data", "execute_result") and mime in o.data]


def check_live_kdata(nb: Any) -> None:
    tables = [t for t in rich(nb, "text/plain") if "volume" in t and "amount" in t]
    minute_table = next(t for t in tables if "2026-11-20 09:31:00" in t and "2026-11-20 09:32:00" in t)
    assert "2026-11-20 11:30:00" in minute_table  # the morning's last (forming) MIN bar
    pages = [html.unescape(t) for t in rich(nb, "text/html")]
    assert any('<iframe src="http://127.0.0.1:' in t and "/static/live.html?symbol=SH600001&ktype=MIN" in t
               for t in pages), "no live chart"  # fmt: skip
    assert any("hkrtCandles.create" in t and '"time": ' in t for t in pages), "no self-contained chart"
    text = stdout(nb)
    assert "the morning plays on while this cell runs: True" in text  # the live chart does not block the kernel
    assert re.search(r"MIN5 bars reported complete by the on_bar hook: (\d+)", text)
    assert "gaps 0" in text
    assert "hkrt threads left: []" in text


def check_recorded_day(nb: Any) -> None:
    text = stdout(nb)
    assert "SH600001: 240 MIN bars, 48 MIN5 bars, 1 DAY bar" in text
    assert re.search(r"DAY equals the sum of its MIN bars for \d+ symbols: volume True, amount True", text)
    assert "ktype=MIN/date=2026-11-20/data.parquet" in text  # compacted by the recorder's stop()
    assert rich(nb, "image/png"), "no volume profile"
    charts = [html.unescape(t) for t in rich(nb, "text/html") if "hkrtCandles.create" in html.unescape(t)]
    assert len(charts) == 1 and '"running VWAP"' in charts[0] and charts[0].count('"open": ') == 48


def check_strategy_mail(nb: Any) -> None:
    text = stdout(nb)
    counted = re.search(r"mails received: (\d+), orders Sent by MailOrderBroker: (\d+)", text)
    assert counted, text
    mails, sent = map(int, counted.groups())
    assert mails == sent == 5  # five symbols bought at 14:50, one mail each
    subjects = re.findall(r"^\[hkrt\] BUY (\S+) (\d+) @ [\d.]+$", text, flags=re.MULTILINE)
    assert sorted(s for s, _ in subjects) == ["SH600001", "SH600002", "SZ000001", "SZ000003", "SZ300002"]
    assert all(int(n) % 100 == 0 for _, n in subjects)  # whole lots
    assert any("'order_statuses': {'filled': 5}" in t for t in rich(nb, "text/plain"))  # summary(): the paper fills
    charts = [html.unescape(t) for t in rich(nb, "text/html") if "hkrtCandles.create" in html.unescape(t)]
    assert len(charts) == 1 and '"side": "buy"' in charts[0], "no chart with the trades"
    assert "hkrt threads left: []" in text


CASES: dict[str, Callable[[Any], None]] = {
    "01_live_kdata.ipynb": check_live_kdata,
    "02_recorded_day_from_store.ipynb": check_recorded_day,
    "03_strategy_mail_broker.ipynb": check_strategy_mail,
}


@pytest.mark.parametrize("name", list(CASES))
def test_notebook_executes_and_shows_its_results(name: str, kernel: str, tmp_path: Path) -> None:
    if name.startswith("03"):
        pytest.importorskip("aiosmtpd")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    client = nbclient.NotebookClient(nb, kernel_name=kernel, timeout=CELL_TIMEOUT,
                                     resources={"metadata": {"path": str(workdir)}})  # fmt: skip
    started = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first failing cell
    print(f"{name}: {time.perf_counter() - started:.1f} s")
    stderr = [o.text for o in outputs(nb) if o.output_type == "stream" and o.name == "stderr"]
    assert not stderr, f"the notebook wrote to stderr (a warning or a logged error): {stderr}"
    CASES[name](nb)
    assert not list(workdir.iterdir()), "the notebook left files in its working directory"


def test_notebooks_are_stored_without_outputs_and_match_their_generator(tmp_path: Path) -> None:
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(CASES)
    make = generator()
    make.write_all(tmp_path)
    for name in CASES:
        stored = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(stored)
        for cell in stored.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{name} is stored with outputs"
        assert (NOTEBOOKS / name).read_text() == (tmp_path / name).read_text(), (
            f"{name} differs from notebooks/make_notebooks.py: run python notebooks/make_notebooks.py"
        )
