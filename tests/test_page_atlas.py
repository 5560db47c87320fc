"""AppTest of 'Where does it hold?': the bundled atlas's map, its statements, and a seed
opened in the explorer with its config in the sidebar and the URL."""
import pytest

from loopviz import atlas
from loopviz.config import RunConfig
from loopviz.sweeps import read_rows
from loopviz.ui.config_sidebar import SHARED_KEY
from tests.apptest_helpers import REPO, app_test

PAGE = "app_pages/atlas.py"
TABLE = read_rows(REPO / "assets" / "atlas.csv")

pytestmark = pytest.mark.usefixtures("fresh_jobs")


def test_the_map_and_its_statements_come_from_the_bundled_atlas():
    at = app_test(PAGE).run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 1
    overall = atlas.share_summary(atlas.outcomes(TABLE, "higher_acc"))
    at.selectbox(key="atlas-measure").set_value("higher_acc").run()
    text = " ".join(m.value for m in at.markdown)
    assert f"Over all {len(TABLE)} runs of the atlas, Looped-Attn is higher" in text
    assert f"in {overall['wins']} ({overall['share_win'] * 100:.0f} %, 95 % CI" in text
    assert "Click a cell" in at.info[0].value
    # QA: the same seed count everywhere reads "× 10 seeds", not "× 10–10 seeds".
    import re
    caption = next(c.value for c in at.caption if "configurations ×" in c.value)
    assert re.search(r"configurations × \d+(–\d+)? seeds", caption), caption
    assert not re.search(r"× (\d+)–\1 seeds", caption), caption


def test_the_axes_can_be_swapped():
    at = app_test(PAGE).run()
    axes = at.selectbox(key="atlas-x").options
    at.selectbox(key="atlas-x").set_value(axes[1]).run()
    assert not at.exception
    assert at.selectbox(key="atlas-y").value != axes[1]


def test_a_clicked_seed_opens_in_the_explorer_with_its_config():
    row = TABLE.iloc[len(TABLE) // 2]
    at = app_test("app.py").run()
    at.switch_page(PAGE).run()
    at.session_state["atlas_open"] = atlas.explorer_params(row)   # what the seed plot's click callback stores
    at.run()
    assert not at.exception, at.exception
    config = at.session_state[SHARED_KEY]   # what app.py's sidebar drew for the explorer
    assert isinstance(config, RunConfig)
    assert (config.d, config.lr, config.seed, config.data_seed, config.epochs) == \
        (row["d"], row["lr"], row["seed"], row["data_seed"], row["epochs"])
    assert at.query_params["seed"] == [str(row["seed"])] or at.query_params["seed"] == str(row["seed"])
    assert "Spectrum evolution" in at.title[0].value


def test_each_cell_of_the_map_shows_its_share_with_its_95_percent_interval():
    """QA: the squares read "8/20" and the interval lived only in an expander. Each square now
    reads count, share and its Clopper–Pearson interval, recomputed here from the beta
    distribution (independent of scipy's binomtest used by the app)."""
    from scipy import stats

    from loopviz.plots import atlas as plots

    cells = atlas.cell_shares(TABLE, "d", "lr", "higher_acc")
    fig = plots.share_map(cells, "d", "lr", "higher")
    texts = list(fig.data[0].text)
    assert len(texts) == len(cells)
    for text, (_, c) in zip(texts, cells.iterrows()):
        k, n = int(c["wins"]), int(c["n"])
        low = stats.beta.ppf(0.025, k, n - k + 1) if k > 0 else 0.0
        high = stats.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
        lines = text.split("<br>")
        assert lines[0].startswith(f"{k}/{n}"), text
        assert lines[1] == f"{k / n * 100:.0f} %", text
        assert lines[2] == f"CI {low * 100:.0f}–{high * 100:.0f} %", text
