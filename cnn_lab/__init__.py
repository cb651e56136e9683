"""CNN Lab's headless core: everything the pages show is computed here, without Streamlit."""
