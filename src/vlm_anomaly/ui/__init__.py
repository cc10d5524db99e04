"""The Streamlit dashboard: a thin shell over the library (start it with ``vlm-anomaly ui``)."""
