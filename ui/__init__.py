"""The Streamlit pieces that the pages share, one module a concern (the core in cnn_lab/ never imports Streamlit):

nav             the page list, each page's header, the way to "Inside the network"
links           shareable links: widgets whose values live in the URL
inputs          uploads handled once, clicks applied once, the image picker, a photo or the camera
identity        who is asking (shared mode's sign-in)
model_settings  the train page's widgets for a model's own settings
download_panel  a download a page starts, with progress and Cancel
jobs_panel      Start / Pause / Resume / Stop, the queue and the live panel of a job
live            the live chart: its component and the two HTTP routes app.py serves
results         a run's results, its files, classify with it, import a checkpoint
"""
