"""Where does it hold? The bundled atlas (python -m loopviz atlas): over a grid of
configurations × seeds, how often Looped-Attn is faster or higher than Single-Attn on
high-IC sequences (Observation 1, Sec. 4.1), with binomial intervals."""
from pathlib import Path

import pandas as pd
import streamlit as st

from loopviz import atlas
from loopviz.config import RunConfig
from loopviz.plots import atlas as plots
from loopviz.sweeps import ATLAS_CONFIG_COLUMNS, read_rows
from loopviz.ui import present
from loopviz.ui.config_sidebar import KNOB_NAMES

ATLAS_FILE = Path(__file__).resolve().parent.parent / "assets" / "atlas.csv"
EXPLORER = "app_pages/spectrum.py"

pending = st.session_state.pop("atlas_open", None)
if pending is not None:  # a seed was clicked: load its config into the sidebar and open the explorer
    config = RunConfig.from_dict({**RunConfig().to_dict(), **pending})
    for name in KNOB_NAMES:  # the sidebar's widgets are keyed by their URL parameter's name
        st.session_state[name] = getattr(config, name)
    st.switch_page(EXPLORER, query_params=pending)

st.title("Where does it hold?")
st.caption("The paper's Observation 1 (Sec. 4.1): Looped-Attn learns the high-information sequences that "
           "Single-Attn does not. Here every configuration of a grid is trained on many seeds (both models, same "
           "data and initial weights per seed), and each seed is scored: is Looped *faster* (reaches a high-IC "
           "accuracy level earlier) or *higher* (ends higher)? Shares come with 95 % Clopper–Pearson intervals.")


@st.cache_data
def load_atlas(path: str, mtime: float) -> pd.DataFrame:
    return read_rows(Path(path))


if not ATLAS_FILE.exists():
    st.warning("No bundled atlas found (assets/atlas.csv); README.md, 'Sweeps and the atlas', says how to make it.")
    st.stop()
table = load_atlas(str(ATLAS_FILE), ATLAS_FILE.stat().st_mtime)
axes = atlas.grid_axes(table, tuple(c for c in ATLAS_CONFIG_COLUMNS if c not in ("seed", "data_seed")))
if len(axes) < 2:
    st.warning(f"This atlas varies {len(axes)} config field(s) ({', '.join(axes) or 'none'}); the map needs two.")
    st.stop()

left, middle, right = st.columns(3)
x = left.selectbox("horizontal axis", axes, index=0, key="atlas-x")
y = middle.selectbox("vertical axis", [a for a in axes if a != x], index=0, key="atlas-y")
measures = atlas.measures()
measure = right.selectbox("Looped ahead means", list(measures), format_func=measures.get, key="atlas-measure")

cells = atlas.cell_shares(table, x, y, measure)
overall = atlas.share_summary(atlas.outcomes(table, measure))
others = [a for a in axes if a not in (x, y)]
st.markdown("\n".join(f"- {line}" for line in atlas.where_it_holds(cells, x, y, measure, overall)))
seeds_per = table.groupby(axes).size()
seeds_text = f"{seeds_per.min()}" + (f"–{seeds_per.max()}" if seeds_per.max() != seeds_per.min() else "")  # not "10–10"
st.caption(f"{len(table)} runs: {table.groupby(axes).ngroups} configurations × "
           f"{seeds_text} seeds, {int(table['epochs'].max())} "
           f"epochs. Each cell pools its seeds" + (f" over {', '.join(others)}" if others else "") +
           ". * / †: Looped / Single significantly more often ahead (two-sided sign test over the decided seeds, "
           f"Benjamini–Hochberg q < {atlas.FDR:g} across the cells). 'Faster' levels are accuracy points above the "
           "higher of the two models' epoch-0 high-IC accuracy; never reaching a level counts as slower.")

event = present.chart(st, plots.share_map(cells, x, y, measures[measure], present.enabled()), key="atlas-map",
                      on_select="rerun", selection_mode="points")
with st.expander("the numbers of every cell"):
    st.dataframe(cells, hide_index=True)

points = (event.selection.points if event else None) or []
if not points:
    st.info("Click a cell to see its seeds.")
    st.stop()
xv, yv = points[0]["customdata"]
rows = table[(table[x].astype(str) == xv) & (table[y].astype(str) == yv)]
rows = rows.assign(config=[atlas.config_label(r, others) or "this cell" for _, r in rows.iterrows()])
st.subheader(f"{x} = {xv}, {y} = {yv}: {len(rows)} runs")
summary = atlas.share_summary(atlas.outcomes(rows, measure))
st.markdown(f"Looped ahead in **{summary['wins']}/{summary['n']}** ({summary['share_win']:.0%}, 95 % CI "
            f"{summary['win_low']:.0%}–{summary['win_high']:.0%}), Single in {summary['losses']}/{summary['n']} "
            f"({summary['loss_low']:.0%}–{summary['loss_high']:.0%}), ties {summary['ties']}.")
label = ("Looped − Single final high-IC accuracy" if measure.startswith("higher")
         else "epochs Looped is earlier (Single − Looped; never = last epoch + 1)")


def open_seed() -> None:
    """Callback of the seed plot: remember the clicked run; the next rerun opens it."""
    picked = st.session_state["atlas-seeds"]["selection"]["points"]
    if picked:
        st.session_state["atlas_open"] = atlas.explorer_params(table.loc[int(picked[0]["customdata"])])


present.chart(st, plots.cell_seeds(rows, atlas.difference(rows, measure), label), key="atlas-seeds",
                on_select=open_seed, selection_mode="points")
split = "val_acc" if "val_acc" in measure else "acc"
st.dataframe(atlas.seeds_view(rows, split), hide_index=True)
seed = st.selectbox("or pick a seed", list(rows.index), key="atlas-pick",
                    format_func=lambda i: f"seed {rows.loc[i, 'seed']} ({rows.loc[i, 'config']})")
st.page_link(EXPLORER, label="open it in the spectrum explorer", query_params=atlas.explorer_params(rows.loc[seed]),
             icon=":material/open_in_new:")
