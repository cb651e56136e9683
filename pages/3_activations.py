import streamlit as st

from ui import page_header

page_header("pages/3_activations.py")
st.info("This page is not built yet: its issue is still open.")
