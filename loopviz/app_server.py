"""`python -m loopviz app`: the Streamlit app server, warmed before its first visitor.

`streamlit run app.py` imports only Streamlit at start; the first page request then pays for
pandas, scipy.stats, Plotly and every loopviz module the page needs (~1.6 s of server CPU,
measured by bench/bench_paint.py). This launcher imports the modules of app.py and Home (the
page a visitor opens first) and builds one throwaway figure, then starts the same server in
this process (streamlit.web.bootstrap, as `streamlit run` does); the other pages' modules load
in a thread beside it. Torch never loads: tests/test_thin_pages.py keeps the pages' imports
torch-free. Home's modules load before the server answers rather than beside it: on two
cores a first request that arrived while they loaded waited for them anyway, and shared the
CPU with the rest of the warm-up too. `streamlit run app.py` keeps working.
"""
from __future__ import annotations

import argparse
import ast
import errno
import importlib
import importlib.util
import logging
import socket
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "app.py"
PAGES = REPO / "app_pages"
DEFAULT_PORT = 8501
EXIT_OK, EXIT_BAD_INPUT = 0, 2


HOME = PAGES / "home.py"


def page_modules(files: list[Path] | None = None) -> list[str]:
    """The modules app.py and the page scripts import (anywhere in them), in first-seen order,
    Home's first; `from a import b` gives a, and a.b when that is a loopviz module."""
    names: dict[str, None] = {}
    for path in files if files is not None else [APP, HOME, *sorted(set(PAGES.glob("*.py")) - {HOME})]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(dict.fromkeys(alias.name for alias in node.names))
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names[node.module] = None
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    if node.module.startswith("loopviz") and _is_module(full):
                        names[full] = None
    return list(names)


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a name inside a module, not a submodule
        return False


def home_modules() -> list[str]:
    """What the first page a visitor sees needs: app.py's and Home's imports."""
    return page_modules([APP, HOME])


def warm_up(modules: list[str] | None = None) -> float:
    """Import the pages' modules and build and serialise one small figure (Plotly creates its
    validators on first use); return the seconds it took."""
    started = time.perf_counter()
    for name in modules if modules is not None else page_modules():
        importlib.import_module(name)
    import plotly.graph_objects as go
    import plotly.io as pio

    from .plots import style

    fig = go.Figure(go.Scatter(x=[0, 1], y=[0.0, 1.0], name="warm-up", line=dict(dash="dash")))
    style.vline(fig, x=0.5, annotation_text="warm-up")   # the pages' reference lines
    fig.update_layout(title="warm-up", legend=dict(orientation="h"), height=300)
    pio.to_json(fig, validate=False)
    return time.perf_counter() - started


def port_problem(address: str, port: int) -> str | None:
    """Why the server could not listen on (address, port), or None when it can."""
    if not 1 <= port <= 65535:
        return f"--port must be between 1 and 65535, got {port}"
    host = "127.0.0.1" if address in ("localhost", "") else address
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # As the server binds: a port in TIME_WAIT is free, one with a listener is not.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return f"port {port} is already in use (another server?); choose another with --port"
        if exc.errno in (errno.EACCES, errno.EPERM):
            return f"port {port} needs privileges this user lacks; choose one above 1023 with --port"
        return f"cannot listen on {address}:{port} ({exc.strerror or exc})"
    return None


def serve(port: int, address: str | None, warm: bool = True) -> int:
    """Run the app's Streamlit server in this process until Ctrl-C / SIGTERM (exit 0)."""
    from streamlit import config as st_config
    from streamlit.web import bootstrap

    # As `streamlit run app.py` does: the script's folder's .streamlit/config.toml, then flags.
    st_config._main_script_path = str(APP)
    flags = {"server_port": port, "server_headless": True}
    if address is not None:
        flags["server_address"] = address
    bootstrap.load_config_options(flag_options=flags)
    problem = port_problem(st_config.get_option("server.address") or "localhost", port)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if warm:
        # Streamlit checks each st.cache_data's options as it is decorated, against the running
        # server's cache store, and warns when there is none yet; the store that keeps the
        # values is chosen per call, once the server runs. The check's warning is noise here.
        checks = logging.getLogger("streamlit.runtime.caching.cache_data_api")
        level = checks.level
        checks.setLevel(logging.ERROR)
        started = time.perf_counter()
        try:
            first = home_modules()  # (finding which names are modules imports some of them)
            warm_up(first)
        finally:
            checks.setLevel(level)
        seconds = time.perf_counter() - started
        print(f"  loopviz: Home's modules loaded in {seconds:.1f} s; the other pages' load beside the server",
              flush=True)

        def rest() -> None:
            from streamlit import runtime

            while not runtime.exists():  # after the server made its runtime (and cache store)
                time.sleep(0.01)
            others = [name for name in page_modules() if name not in set(first)]
            print(f"  loopviz: the other pages' modules loaded in {warm_up(others):.1f} s", flush=True)
        # A daemon thread: Ctrl-C during the warm-up still stops the process at once.
        threading.Thread(target=rest, name="loopviz-warm-up", daemon=True).start()
    bootstrap.run(str(APP), False, [], flags)
    return EXIT_OK


def command_app(args: argparse.Namespace) -> int:
    return serve(args.port, args.address, warm=not args.no_warm_up)


def add_app_command(subparsers) -> None:
    """Register `app` on the main parser's subparsers (nothing heavy is imported here)."""
    app = subparsers.add_parser(
        "app", help="serve the app (as `streamlit run app.py`), its modules loaded before the first visit",
        description="Start the Streamlit app server on http://ADDRESS:PORT, and load the pages' modules "
                    "(pandas, scipy, Plotly, loopviz; never torch) beside it, so that the first page opens "
                    "as fast as later ones. Ctrl-C stops it.")
    app.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on (default: %(default)s)")
    app.add_argument("--address", default=None,
                     help="address to listen on (default: .streamlit/config.toml's, localhost: this machine only; "
                          "0.0.0.0 serves the network: the app has no login)")
    app.add_argument("--no-warm-up", action="store_true", help="serve without loading the pages' modules first")
    app.set_defaults(handler=command_app)
