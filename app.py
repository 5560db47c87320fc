"""loopviz: `streamlit run app.py` — the pages of the explorer, one navigation."""
from pathlib import Path

import streamlit as st

from loopviz.config import RunConfig
from loopviz.ui import present
from loopviz.ui.config_sidebar import shared_sidebar_config

# A bundled image, not a :material: icon: Streamlit fetches those favicons from Google's servers.
ICON = Path(__file__).resolve().parent / "assets" / "icon.png"

presenting = present.enabled()
st.set_page_config(page_title="loopviz: looped vs single-pass transformers", page_icon=str(ICON), layout="wide",
                   initial_sidebar_state="collapsed" if presenting else "auto")
present.style()

pages = [
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/spectrum.py", title="Spectrum evolution", icon=":material/ssid_chart:", url_path="spectrum"),
    st.Page("app_pages/river_valley.py", title="River valleys", icon=":material/landscape:", url_path="river-valley"),
    st.Page("app_pages/landscape.py", title="Landscape", icon=":material/terrain:", url_path="landscape"),
    st.Page("app_pages/shift.py", title="SHIFT", icon=":material/swap_horiz:", url_path="shift"),
    st.Page("app_pages/length_generalisation.py", title="Length generalisation", icon=":material/straighten:",
            url_path="length"),
    st.Page("app_pages/atlas.py", title="Where does it hold?", icon=":material/grid_on:", url_path="atlas"),
    st.Page("app_pages/algo.py", title="Algorithmic tasks", icon=":material/functions:", url_path="algo"),
]
# In presenter mode the sidebar is hidden, so the navigation moves to the top bar.
page = st.navigation(pages, position="top" if presenting else "sidebar")
shared_sidebar_config(RunConfig(), needed=page.url_path in ("spectrum", "shift", "length"))
page.run()
present.leave_button()
