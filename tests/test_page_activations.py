
from tests.helpers import ROOT

PAGE = str(ROOT / "pages/3_activations.py")


def test_page_shows_numbers_and_responds_to_sliders(run_page):
    at = run_page(PAGE)
    assert not at.exception
    table = at.dataframe[0].value
    assert table.loc[table.activation == "sigmoid", "max |f'|"].item() == 0.25
    chain = next(m.value for m in at.markdown if m.value.startswith("sigmoid: 0.25^10"))
    assert "**9.54e-07**" in chain
    assert at.metric[0].value == "0.0%"  # sigmoid: no dead units
    next(s for s in at.selectbox if s.label == "Activation").set_value("relu").run()
    dead = float(at.metric[0].value.rstrip("%"))
    assert 48 < dead < 52  # a normal centred at 0: half the ReLUs are dead
    next(s for s in at.slider if s.label == "Mean").set_value(-3.0).run()
    assert float(at.metric[0].value.rstrip("%")) > 80


def test_course_softmax_example(run_page):
    at = run_page(PAGE)
    line = next(m.value for m in at.markdown if m.value.startswith("Cross-entropy"))
    assert line == "Cross-entropy for **cat**: −log p = **0.1699**"
    next(s for s in at.slider if s.label == "Temperature").set_value(10.0).run()
    line = next(m.value for m in at.markdown if m.value.startswith("Cross-entropy"))
    assert float(line.split("**")[-2]) > 0.8  # a hot softmax is less sure
