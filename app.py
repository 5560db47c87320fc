"""loopviz: `streamlit run app.py` — the pages of the explorer, one navigation."""
import streamlit as st

st.set_page_config(page_title="loopviz: looped vs single-pass transformers", page_icon="🔁", layout="wide")

pages = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("pages/spectrum.py", title="Spectrum evolution", icon="📈", url_path="spectrum"),
    st.Page("pages/river_valley.py", title="River valleys", icon="⛰️", url_path="river-valley"),
]
st.navigation(pages).run()
