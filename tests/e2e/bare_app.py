"""A bare Streamlit app: the accessibility test's yardstick (tests/e2e/test_accessibility.py). It holds one of each
element the pages are made of, drawn by Streamlit alone; what axe finds here is Streamlit's, not ours."""
import numpy as np
import streamlit as st

st.title("A bare Streamlit app")
st.header("A section")
st.caption("A caption")
st.slider("A slider", 0, 10, 5)
st.selectbox("A select", ["one", "two"])
st.line_chart({"y": [1, 3, 2, 4]})
st.plotly_chart({"data": [{"y": [1, 3, 2, 4], "type": "scatter"}]})
st.image(np.zeros((32, 32, 3), dtype=np.uint8), caption="A black square", alt="A black square")
st.table({"a": [1, 2]})
