"""Benchmark: first paint of a page with charts (issue #12's goal: ≤ 3 s), in a real headless Chromium.

    python bench/bench_paint.py [--repeats 3] [--port 8610] [--starts streamlit,launcher] [--no-profile]
                                [--before DIR]

Each timing starts at the browser's request (the browser is already open on about:blank) and
polls the DOM every 40 ms for: the page title (an h1), the first chart drawn (a Plotly plot
with data and a drawn trace, outside any stale element), and all charts (as many drawn
charts as chart elements, and the script run ended). Scenarios:

- fresh server + fresh browser: a new server process, healthy, then a new Chromium opens Home
  (what a lecturer gets first after starting the app);
- warm server + fresh browser: the same server, a new Chromium opens Home, then Spectrum;
- page switch: in that browser, clicks on the navigation (Home → Spectrum evolution →
  River valleys → Home), timed from the click;
- warm server + returning browser: a new Chromium on the profile of the one before opens Home
  (Plotly's bundle from the HTTP cache: a lecturer's laptop that showed the app before);
- the floor, in the same run: a trivial Streamlit page with one Plotly chart of 10 points,
  fresh server + fresh browser and warm; and the same page after loopviz's per-run start
  (`present.style()`: the CSS, and the script that starts loading Plotly's chunk at once).

`--starts` picks how the app server starts: `streamlit` (`streamlit run app.py`) and/or
`launcher` (`python -m loopviz app`, which loads Home's modules before it serves).
`--before DIR` adds an older tree's app (`git archive COMMIT | tar -x -C DIR`) to every round.
The breakdown: when the frame holding the first figure arrived ("chart sent": the server's
side; the rest to "first chart" is the browser's) and the bytes the server sent over the
websocket (Chromium's performance log); the server's CPU seconds before and during the first
visit and during a later one (/proc: little changed by other people's load); the JavaScript
chunks the page fetched (resource timing: Plotly's bundle is the largest); and (unless
--no-profile) the server side of Home's script in a fresh interpreter: imports, reading the
bundled runs, building the figures, and their JSON (size and time), cold and warm.
Min and median over --repeats; every section carries the load average (2 shared cores). The
default run (3 repeats, one start) takes ~3 min: each round starts three servers and five
browsers.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import load_note  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
POLL = 0.04
STABLE = 0.5

# One round trip: (title text, drawn charts, chart elements, script running).
STATE_JS = """
const fresh = e => !e.closest('[data-stale="true"]');
const h1 = [...document.querySelectorAll('h1')].filter(fresh).map(h => h.textContent).join(' | ');
const plots = [...document.querySelectorAll('.js-plotly-plot')].filter(fresh);
const drawn = plots.filter(p => p._fullData && p._fullData.length
                           && p.querySelector('.trace, canvas')).length;
const elements = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')].filter(fresh).length;
const running = !!document.querySelector('[data-testid="stStatusWidgetRunningIcon"], '
                                         + '[data-testid="stStatusWidgetRunningManIcon"]');
return [h1, drawn, elements, running];
"""

FLOOR_APP = """
import plotly.graph_objects as go
import streamlit as st

st.title("floor")
%s
st.plotly_chart(go.Figure(go.Scatter(x=list(range(10)), y=[i * i for i in range(10)])))
"""


def start_server(kind: str, script: Path, port: int, env: dict) -> tuple[subprocess.Popen, float]:
    """Start a server; return it and the seconds until /_stcore/health answers."""
    if kind == "launcher":
        cmd = [PY, "-m", "loopviz", "app", "--port", str(port)]
    else:
        cmd = [PY, "-m", "streamlit", "run", str(script), "--server.port", str(port), "--server.headless", "true",
               "--server.address", "127.0.0.1"]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=script.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/_stcore/health"
    while time.perf_counter() - started < 120:
        try:
            if urllib.request.urlopen(url, timeout=1).status == 200:
                return proc, time.perf_counter() - started
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{kind} server on port {port} did not become healthy in 120 s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads (from /proc): unlike wall time,
    barely changed by other people's load on the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def new_browser(profile: str | None = None):
    """A headless Chromium on about:blank; a new profile (empty HTTP and code caches) unless
    `profile` names one a browser used before (a returning visitor's)."""
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000",
                 f"--user-data-dir={profile or tempfile.mkdtemp(prefix='loopviz-paint-')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(executable_path=shutil.which("chromedriver")))
    driver.get("about:blank")
    driver.get_log("performance")  # drop the start-up entries
    return driver


def watch(driver, title: str, since: float, min_charts: int = 1, timeout: float = 120) -> dict[str, float]:
    """Seconds from `since` to the title holding `title`, the first drawn chart, and all charts."""
    out: dict[str, float] = {}
    deadline = since + timeout
    while time.perf_counter() < deadline:
        try:
            h1, drawn, elements, running = driver.execute_script(STATE_JS)
        except Exception:  # noqa: BLE001 - a page being replaced mid-read; poll again
            h1, drawn, elements, running = "", 0, 0, True
        now = time.perf_counter() - since
        if title in h1:
            out.setdefault("title", now)
            if drawn:
                out.setdefault("first chart", now)
            if drawn >= max(elements, min_charts) and not running:
                # Held for STABLE s: a rerun shows its running icon only after a moment.
                out.setdefault("all charts", now)
                out["charts"] = drawn
                if now - out["all charts"] >= STABLE:
                    return out
            else:
                out.pop("all charts", None)
        time.sleep(POLL)
    raise RuntimeError(f"timed out waiting for '{title}': {out}")


def websocket(driver) -> dict[str, float]:
    """Since the last call: bytes of websocket frames the browser received (Streamlit's deltas),
    and when the first frame holding a Plotly figure arrived, in seconds after the page's
    request (Chromium's own timestamps): the server's side of the first chart."""
    total, start, figure = 0, None, None
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message["method"] == "Network.requestWillBeSent" and params.get("type") == "Document" and start is None:
            start = params["timestamp"]
        if message["method"] == "Network.webSocketFrameReceived":
            frame = params["response"]
            data = base64.b64decode(frame["payloadData"]) if frame.get("opcode") == 2 else \
                frame["payloadData"].encode()
            total += len(data)
            if figure is None and b'"layout":' in data:
                figure = params["timestamp"]
    out = {"ws": total}
    if start is not None and figure is not None:
        out["chart sent"] = figure - start
    return out


def js_chunks(driver, top: int = 3) -> str:
    """The largest JavaScript files the page fetched: size (decoded) and fetch time."""
    entries = driver.execute_script(
        "return performance.getEntriesByType('resource').filter(e => e.name.endsWith('.js'))"
        ".map(e => [e.name.split('/').pop(), e.decodedBodySize, e.startTime, e.duration]);")
    entries.sort(key=lambda e: -e[1])
    return ", ".join(f"{name[:28]} {size / 1e6:.2f} MB from {start / 1e3:.2f} s in {ms / 1e3:.2f} s"
                     for name, size, start, ms in entries[:top])


def click_nav(driver, title: str) -> float:
    from selenium.webdriver.common.by import By

    link = driver.find_element(By.XPATH, f'//a[(@data-testid="stSidebarNavLink" or @data-testid="stTopNavLink")'
                                         f' and contains(., "{title}")]')
    clicked = time.perf_counter()
    link.click()
    return clicked


def stats_line(label: str, runs: list[dict[str, float]]) -> str:
    parts = []
    for key in ("title", "chart sent", "first chart", "all charts"):
        values = [r[key] for r in runs if key in r]
        if values:
            parts.append(f"{key} {min(values):.2f} / {statistics.median(values):.2f} s")
    extra = runs[-1].get("charts")
    return f"{label:<44} {'; '.join(parts)}  (min / median of {len(runs)}; {extra} charts)"


def app_round(kind: str, port: int, env: dict, repo: Path = REPO) -> dict[str, dict]:
    """One fresh server: fresh browser on Home, a second fresh browser (warm server), page switches."""
    out: dict[str, dict] = {}
    proc, healthy = start_server(kind, repo / "app.py", port, dict(env, PYTHONPATH=str(repo)))
    try:
        url = f"http://127.0.0.1:{port}"
        launched = time.perf_counter()
        out["healthy"] = {"healthy": healthy}
        driver = new_browser()
        browser_launch = time.perf_counter() - launched
        try:
            since = time.perf_counter()
            driver.get(url + "/")
            cpu_before = cpu_seconds(proc.pid)
            out["fresh"] = watch(driver, "why looped transformers", since)
            out["healthy"]["server CPU before the first visit"] = cpu_before
            out["healthy"]["server CPU, the first visit"] = cpu_seconds(proc.pid) - cpu_before
            # What a lecturer waits who opens the browser as soon as the server answers.
            out["healthy"]["start → first chart"] = healthy + browser_launch + out["fresh"]["first chart"]
            out["fresh"].update(websocket(driver))
            out["fresh"]["js"] = js_chunks(driver)
        finally:
            driver.quit()
        profile = tempfile.mkdtemp(prefix="loopviz-paint-")
        driver = new_browser(profile)
        try:
            since = time.perf_counter()
            driver.get(url + "/")
            cpu_before = cpu_seconds(proc.pid)
            out["warm"] = watch(driver, "why looped transformers", since)
            out["healthy"]["server CPU, a later visit"] = cpu_seconds(proc.pid) - cpu_before
            out["warm"].update(websocket(driver))
            since = time.perf_counter()
            driver.get(url + "/spectrum")
            out["warm spectrum"] = watch(driver, "Spectrum evolution", since)
            out["warm spectrum"].update(websocket(driver))
            for nav, heading in (("Home", "why looped transformers"), ("Spectrum evolution", "Spectrum evolution"),
                                 ("River valleys", "River valleys"), ("Home", "why looped transformers")):
                since = click_nav(driver, nav)
                out[f"switch → {nav}"] = watch(driver, heading, since)
                out[f"switch → {nav}"].update(websocket(driver))
        finally:
            driver.quit()
        out["warm, returning browser"] = returning_visit(profile, url, "why looped transformers")
    finally:
        stop(proc)
    return out


def returning_visit(profile: str, url: str, title: str) -> dict:
    """Home in a new Chromium on a profile that opened it before: Streamlit serves its chunks
    `immutable`, so Plotly's bundle comes from the HTTP cache (and V8's code cache), as on a
    lecturer's laptop that showed the app last week."""
    driver = new_browser(profile)
    try:
        since = time.perf_counter()
        driver.get(url + "/")
        out = watch(driver, title, since)
        out.update(websocket(driver))
        out["js"] = js_chunks(driver, top=1)
        return out
    finally:
        driver.quit()


def floor_round(port: int, env: dict, folder: Path, script: str) -> dict[str, dict]:
    proc, healthy = start_server("streamlit", folder / script, port, env)
    out: dict[str, dict] = {"healthy": {"healthy": healthy}}
    try:
        profile = tempfile.mkdtemp(prefix="loopviz-paint-")
        for label in ("fresh", "warm"):
            driver = new_browser(profile if label == "warm" else None)
            try:
                since = time.perf_counter()
                driver.get(f"http://127.0.0.1:{port}/")
                out[label] = watch(driver, "floor", since)
                out[label].update(websocket(driver))
                out[label]["js"] = js_chunks(driver, top=1)
            finally:
                driver.quit()
        out["warm, returning browser"] = returning_visit(profile, f"http://127.0.0.1:{port}", "floor")
    finally:
        stop(proc)
    return out


PROFILE = textwrap.dedent("""
    import json, sys, time
    t = {}
    s = time.perf_counter(); import streamlit; t["import streamlit"] = time.perf_counter() - s
    s = time.perf_counter(); import pandas, plotly.graph_objects; t["import pandas, plotly"] = time.perf_counter() - s
    s = time.perf_counter()
    from loopviz import shift, stats, verdicts
    from loopviz.plots import shift as shift_plots, training as plots
    from loopviz.ui import jobs
    t["import loopviz (home's modules)"] = time.perf_counter() - s
    from loopviz.config import RunConfig
    from loopviz.runs.format import read_run
    from loopviz.runs.store import RunStore
    import plotly.io as pio
    def once():
        r = {}
        c = RunConfig()
        s = time.perf_counter()
        runs = {name: read_run(RunStore().path(c.replace(model=m))) for name, m in (("Single-Attn", "single"),
                                                                                ("Looped-Attn", "looped"))}
        r["read both bundled runs"] = time.perf_counter() - s
        s = time.perf_counter()
        figs = [shift_plots.compare_accuracy_figure(runs, "high", None), plots.loss_figure(runs)]
        r["build Home's 2 figures"] = time.perf_counter() - s
        s = time.perf_counter()
        specs = [pio.to_json(f, validate=False) for f in figs]
        r["their JSON (as st.plotly_chart)"] = time.perf_counter() - s
        r["JSON bytes"] = sum(map(len, specs))
        return r
    cold = once(); warm = once()
    print(json.dumps({"imports": t, "cold": cold, "warm": warm, "torch": "torch" in sys.modules}))
    """)


def profile(env: dict) -> None:
    """Home's server-side work in a fresh interpreter, cold (first call) and warm (second)."""
    out = json.loads(subprocess.run([PY, "-c", PROFILE], cwd=REPO, env=env, capture_output=True, text=True,
                                    check=True).stdout.splitlines()[-1])
    print("server side of Home in a fresh interpreter (wall s):")
    print("  " + ", ".join(f"{k} {v:.2f}" for k, v in out["imports"].items()))
    for which in ("cold", "warm"):
        print(f"  {which}: " + ", ".join(f"{k} {v:.3f}" if k != "JSON bytes" else f"{k} {v / 1e3:.0f} kB"
                                         for k, v in out[which].items()))
    print(f"  torch imported: {out['torch']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--port", type=int, default=8610)
    parser.add_argument("--starts", default="launcher", help="comma-separated: streamlit, launcher (the README's)")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--before", type=Path, default=None,
                        help="another tree (e.g. `git archive COMMIT | tar -x -C DIR`): its app, started by "
                             "`streamlit run`, is one more variant of every round")
    args = parser.parse_args()
    env = dict(os.environ, LOOPVIZ_STORE=tempfile.mkdtemp(prefix="loopviz-paint-store-"),
               LOOPVIZ_ALGO_RUNS=tempfile.mkdtemp(prefix="loopviz-paint-algo-"),
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    folder = Path(tempfile.mkdtemp(prefix="loopviz-paint-floor-"))
    (folder / "floor.py").write_text(FLOOR_APP % "")
    (folder / "floor_start.py").write_text(FLOOR_APP % "from loopviz.ui import present\npresent.style()")
    print(f"bench_paint: {load_note()}; times from the browser's request, min / median of {args.repeats}")
    results: dict[str, list[dict[str, dict]]] = {"floor": [], "floor + present.style()": []}
    starts = args.starts.split(",")
    for kind in starts:
        results[kind] = []
    if args.before:
        results["before"] = []
    for _ in range(args.repeats):  # interleaved, so that load changes hit every variant alike
        results["floor"].append(floor_round(args.port, env, folder, "floor.py"))
        results["floor + present.style()"].append(floor_round(args.port, env, folder, "floor_start.py"))
        if args.before:
            results["before"].append(app_round("streamlit", args.port + 1, env, args.before.resolve()))
        for kind in starts:
            results[kind].append(app_round(kind, args.port + 1, env))
    for name, rounds in results.items():
        print(f"-- {name}  ({load_note()})")
        healthy = [r["healthy"]["healthy"] for r in rounds]
        line = f"   server start → healthy {min(healthy):.2f} / {statistics.median(healthy):.2f} s"
        if "start → first chart" in rounds[0]["healthy"]:
            total = [r["healthy"]["start → first chart"] for r in rounds]
            line += (f"; server start → Home's first chart in a browser opened then (its launch included) "
                     f"{min(total):.2f} / {statistics.median(total):.2f} s")
        print(line)
        cpu = [key for key in rounds[0]["healthy"] if key.startswith("server CPU")]
        if cpu:
            print("   " + "; ".join(f"{key} {min(r['healthy'][key] for r in rounds):.2f} / "
                                  f"{statistics.median(r['healthy'][key] for r in rounds):.2f} s" for key in cpu))
        for key in rounds[0]:
            if key == "healthy":
                continue
            runs = [r[key] for r in rounds]
            print("   " + stats_line(key, runs) + f"; websocket {runs[-1]['ws'] / 1e3:.0f} kB")
            if "js" in runs[-1]:
                print(f"      largest JS: {runs[-1]['js']}")
    scenarios = ("fresh", "warm", "warm, returning browser")
    floor = {k: min(r[k]["first chart"] for r in results["floor"]) for k in scenarios}
    for kind in ["before"] * bool(args.before) + starts:
        for key in scenarios:
            best = min(r[key]["first chart"] for r in results[kind])
            print(f"ratio {kind} {key}: Home's first chart / the floor's (min): ×{best / floor[key]:.2f}")
    if not args.no_profile:
        profile(env)


if __name__ == "__main__":
    main()
