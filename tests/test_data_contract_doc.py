"""docs/data-contract.md is exactly what the code declares (mbolake.contract_doc)."""
from pathlib import Path

import pytest

from mbolake import contract_doc
from mbolake.schemas import STREAM_TABLES, TABLES, render_markdown

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / contract_doc.DOC_PATH


def test_the_committed_doc_is_what_the_code_generates():
    assert DOC.is_file(), f"{contract_doc.DOC_PATH} is missing: run `{contract_doc.REGENERATE}`"
    assert DOC.read_text(encoding="utf-8") == contract_doc.render(), (
        f"{contract_doc.DOC_PATH} is stale (the schemas, the bus frame or the product rules changed): "
        f"run `{contract_doc.REGENERATE}` and commit the file"
    )


def test_the_doc_holds_every_table_the_frame_layout_and_the_product_rules():
    text = contract_doc.render()
    assert render_markdown().strip() in text
    for name in (*TABLES, *STREAM_TABLES):
        assert f"`{name}`" in text, name
    assert "## The bus: topics and frame layout" in text and "## Products" in text
    assert f"`{contract_doc.REGENERATE}`" in text.split("\n## ", 1)[0], "the header says how to regenerate"


def test_a_topic_without_a_description_fails_the_render(monkeypatch):
    monkeypatch.setattr(contract_doc, "TOPICS", {**contract_doc.TOPICS, "new_topic": 1})
    with pytest.raises(KeyError, match="new_topic"):
        contract_doc.render()


def test_main_writes_the_file(tmp_path, capsys):
    target = tmp_path / "docs" / "data-contract.md"
    assert contract_doc.main([str(target)]) == 0
    assert target.read_text(encoding="utf-8") == contract_doc.render()
    assert contract_doc.main([]) == 0
    assert capsys.readouterr().out.endswith(contract_doc.render())
