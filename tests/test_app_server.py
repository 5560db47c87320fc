"""`python -m loopviz app`: the launcher serves the app, warms the pages' modules without torch,
refuses a bad or busy port with one line, and stops cleanly on Ctrl-C."""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import pytest

from loopviz import app_server

REPO = app_server.REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(*args: str, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, LOOPVIZ_STORE=tempfile.mkdtemp(prefix="loopviz-launcher-store-"),
               PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "loopviz", "app", *args], cwd=tempfile.gettempdir(), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def test_page_modules_reads_every_import_and_puts_home_first(tmp_path):
    page = tmp_path / "page.py"
    page.write_text("import os, json\nfrom loopviz import stats\nfrom loopviz.stats import share_of\n"
                    "from . import sibling\n\ndef later():\n    from loopviz.plots import shift\n")
    assert app_server.page_modules([page]) == ["os", "json", "loopviz", "loopviz.stats", "loopviz.plots",
                                               "loopviz.plots.shift"]
    modules = app_server.page_modules()
    assert {"pandas", "loopviz.verdicts", "loopviz.landscape", "loopviz.plots.valley"} <= set(modules)
    # Home's own modules come before any other page's.
    assert modules.index("loopviz.verdicts") < modules.index("loopviz.plots.valley")
    assert not any(m == "torch" or m.startswith("torch.") for m in modules)


def test_homes_modules_are_app_and_home_imports_only():
    first = app_server.home_modules()
    assert {"pandas", "loopviz.verdicts", "loopviz.plots.training", "loopviz.ui.present"} <= set(first)
    assert "loopviz.plots.valley" not in first and "loopviz.landscape" not in first
    assert first == app_server.page_modules()[:len(first)]


def test_warm_up_loads_the_pages_modules_and_never_torch():
    code = ("import sys; from loopviz import app_server; seconds = app_server.warm_up(); "
            "print(seconds > 0, all(m in sys.modules for m in app_server.page_modules()), 'torch' in sys.modules,"
            " 'plotly.graph_objects' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True", "False", "True"], out.stdout + out.stderr


def test_port_problem_names_a_busy_port_and_a_bad_number():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert "already in use" in app_server.port_problem("localhost", port)
        assert "already in use" in app_server.port_problem("127.0.0.1", port)
    assert app_server.port_problem("127.0.0.1", port) is None  # free again once closed
    assert "between 1 and 65535" in app_server.port_problem("localhost", 70000)
    assert "between 1 and 65535" in app_server.port_problem("localhost", 0)


@pytest.mark.parametrize("port, says", [("70000", "between 1 and 65535"), ("eighty", "invalid int value")])
def test_a_bad_port_is_one_line_and_exit_2(port, says):
    proc = launch("--port", port)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert out.strip().count("\n") == 0 and out.startswith("error:") and says in out, out


def test_a_busy_port_is_refused_before_anything_starts():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = launch("--port", str(port))
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert out == f"error: port {port} is already in use (another server?); choose another with --port\n"


@pytest.mark.slow
def test_it_serves_the_app_warms_up_and_stops_on_ctrl_c():
    port = free_port()
    proc = launch("--port", str(port))
    watchdog = threading.Timer(120, proc.kill)  # a hung server fails the test instead of blocking it
    watchdog.start()
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("the launcher's server did not become healthy in 60 s")
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
        assert "<html" in page.lower() and "streamlit" in page.lower()
        # Streamlit prints its URL once it serves; the warm-up reports when the other pages'
        # modules are loaded too. Ctrl-C after both.
        lines = []
        while not (any("the other pages' modules loaded" in line for line in lines)
                   and any(f"URL: http://localhost:{port}" in line for line in lines)):
            line = proc.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = "".join(lines) + out
    assert proc.returncode == 0, log
    assert f"localhost:{port}" in log and "Stopping" in log
    # Home's modules load before the server answers; the rest beside it.
    assert log.index("Home's modules loaded") < log.index(f"localhost:{port}")
    assert "Traceback" not in log and "WARNING" not in log, log
