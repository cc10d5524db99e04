"""The Train page's gamma field (ocsvm): a value training cannot use is refused when saved."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers import rendered
from vlm_anomaly.ui import state


@pytest.mark.parametrize("gamma", ["nan", "-1", "0", "inf", "wide"])
def test_unusable_gamma_is_refused_and_not_saved(dash_env, gamma):
    at = AppTest.from_string("from vlm_anomaly.ui import train_page\ntrain_page.render()", default_timeout=240).run()
    at.selectbox(key="train_detector").set_value("ocsvm").run()
    before = state.training_set().load_params().get("gamma")
    next(t for t in at.text_input if t.label == "gamma").set_value(gamma)
    next(b for b in at.button if b.label == "Save parameters").click()
    at.run()
    assert not at.exception, at.exception
    assert not at.success
    assert [rendered(e.value) for e in at.error] == [f"invalid setting gamma: Value error, gamma must be 'scale', "
                                                     f"'auto' or a number > 0, not {gamma!r}"]
    assert state.training_set().load_params().get("gamma") == before

