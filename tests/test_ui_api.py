"""The typed endpoints through ``gradio_client`` against the app served in-process (retrieval only:
the real hybrid retriever, no LLM, so it runs in seconds once the embeddings are cached).

    .venv/bin/python -m pytest -m slow tests/test_ui_api.py
"""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from conftest import serve_app

    from recommender.pipeline import Recommender

    pipeline = Recommender.from_pretrained(retrieval_only=True)
    demo, store = serve_app(pipeline, tmp_path_factory.mktemp("api") / "feedback.sqlite", concurrency=4)
    yield demo.local_url, store
    demo.close()


def test_recommend_endpoint_returns_items(served):
    from gradio_client import Client

    url, _ = served
    client = Client(url, verbose=False)
    rows = client.predict(message="something like Toy Story but no animation", user_id="new user", k=10,
                          api_name="/recommend")  # fmt: skip
    assert len(rows) >= 5
    assert {"item_id", "title", "year", "genres", "score", "reasons", "rank"} <= set(rows[0])
    assert not any("Animation" in row["genres"] for row in rows)
    assert len(client.predict(message="", user_id="196", k=5, api_name="/recommend")) == 5
    with pytest.raises(Exception, match="not in ml-100k"):
        client.predict(message="comedy", user_id="no-such-user", k=5, api_name="/recommend")


def test_chat_and_feedback_endpoints_store_rows(served):
    from gradio_client import Client

    url, store = served
    client = Client(url, verbose=False)
    first = client.predict(message="a funny 90s comedy", user_id="196", k=5, session_id="", api_name="/chat")
    assert first["session_id"] and len(first["items"]) == 5 and first["source"] == "template"
    more = client.predict(message="show me more", user_id="196", k=5, session_id=first["session_id"], api_name="/chat")
    assert more["session_id"] == first["session_id"]
    assert not {i["item_id"] for i in more["items"]} & {i["item_id"] for i in first["items"]}
    item = more["items"][0]["item_id"]
    out = client.predict(session_id=first["session_id"], item_id=item, action="like", api_name="/feedback")
    assert out["stored"]
    rows = store.feedback(first["session_id"])
    assert [(r["item_id"], r["action"], r["user_id"]) for r in rows] == [(item, "like", "196")]
    escaped = client.predict(message="<script>alert(1)</script> comedy", user_id="new user", k=5, session_id="",
                             api_name="/chat")  # fmt: skip
    assert "<script>" not in escaped["reply"]
