"""Dashboard entry point: ``streamlit run src/vlm_anomaly/ui/app.py`` (or ``vlm-anomaly ui``)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from vlm_anomaly.ui import live_page, login, models_page, test_page, train_page

#: shipped with the package: a ``:material/...:`` page icon makes the browser fetch the favicon from a
#: font host on the internet, and the dashboard must work offline without any third-party request
ICON = Path(__file__).parent / "assets" / "icon.png"

PAGES = [
    st.Page(train_page.render, title="Train", icon=":material/school:", url_path="train", default=True),
    st.Page(test_page.render, title="Test", icon=":material/troubleshoot:", url_path="test"),
    st.Page(live_page.render, title="Live", icon=":material/videocam:", url_path="live"),
    st.Page(models_page.render, title="Models", icon=":material/inventory_2:", url_path="models"),
]


def main() -> None:
    st.set_page_config(page_title="vlm-anomaly", page_icon=str(ICON), layout="wide")
    allowed = login.gate()
    # every page is registered either way (a deep link such as /live stays where it is through the
    # login), but without a login no page runs and no navigation is shown
    page = st.navigation(PAGES, position="sidebar" if allowed else "hidden")
    if not allowed:
        return
    st.sidebar.caption("vlm-anomaly · video anomaly detection with vision-language models")
    page.run()


main()
