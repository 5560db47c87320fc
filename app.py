"""loopviz: `streamlit run app.py` — the pages of the explorer, one navigation."""
import streamlit as st

st.set_page_config(page_title="loopviz: looped vs single-pass transformers", page_icon=":material/all_inclusive:",
                   layout="wide")

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
st.navigation(pages).run()
