"""The README shows the data contract exactly as the code declares it."""
from pathlib import Path

from mbolake.schemas import render_markdown

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_renders_the_current_data_contract():
    assert render_markdown().strip() in README.read_text(), (
        "README.md's data contract is stale: regenerate it from mbolake.schemas.render_markdown()"
    )


def test_readme_quick_start_is_the_two_make_commands():
    text = README.read_text()
    assert "make demo" in text and "make test" in text
