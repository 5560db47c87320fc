"""Small Streamlit helpers shared by the pages (the only place loopviz imports Streamlit)."""
