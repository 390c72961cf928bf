"""The page's data without a browser: any row text stays data, and who the sender is."""

from __future__ import annotations

import json
import logging
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from target_chatra_push.page_rows import script_json, sender_of
from target_chatra_push.preview_page import MessagePage
from target_chatra_push.rendering import Outbound
from target_chatra_push.summary import Outcome

# Any code point, lone surrogates included, with the markup that matters made likely.
ANY_TEXT = st.lists(
    st.one_of(
        st.characters(exclude_categories=()),
        st.sampled_from(["<", ">", "&", "\u2028", "\u2029", "</script>", "<!--", "</SCRIPT "]),
    ),
    max_size=30,
).map("".join)


@given(ANY_TEXT)
def test_any_text_is_script_safe_json_that_reads_back(text):
    encoded = script_json([text, {"key": text}])

    assert re.search(r"[<>&\u2028\u2029]", encoded) is None
    assert json.loads(encoded) == [text, {"key": text}]


@settings(max_examples=40, deadline=None)
@given(texts=st.lists(st.tuples(ANY_TEXT, ANY_TEXT), min_size=1, max_size=8))
def test_a_page_of_any_rows_has_exactly_its_own_scripts(tmp_path_factory, texts):
    path = tmp_path_factory.mktemp("page") / "preview.html"
    page = MessagePage(path, dry_run=True)
    for number, (client, text) in enumerate(texts):
        outbound = Outbound("pushedMessages", {"clientId": client, "text": text}, f"[{number}]")
        page.rows.add("orders", Outcome.PREVIEWED, outbound.key, outbound)
    page.write(logging.getLogger("test-page-rows"), stopped="<script>stop</script>")
    html = path.read_text(encoding="utf-8")

    assert len(re.findall(r"<script", html, flags=re.IGNORECASE)) == 3
    assert len(re.findall(r"</script", html, flags=re.IGNORECASE)) == 3
    assert "<!--" not in html
    data = re.search(r'<script type="application/json" id="page-rows">(.*?)</script>', html)
    assert data is not None
    rows = json.loads(data.group(1))
    assert [(row[1], row[4]) for row in rows] == texts
    assert "&lt;script&gt;stop&lt;/script&gt;" in html  # the stop message is escaped too


@pytest.mark.parametrize(
    ("resource", "body", "shown"),
    [
        ("pushedMessages", {"agentId": "A1"}, "Pushed message from agent A1"),
        ("pushedMessages", {"groupId": "G1"}, "Pushed message from group G1"),
        ("pushedMessages", {}, "Pushed message from an agent Chatra picks"),
        ("messages", {"agentId": "A1"}, "Agent message from agent A1"),
        (
            "messages",
            {"agentEmail": "dani@example.com", "agentName": "Daniela"},
            "Agent message from Daniela <dani@example.com>",
        ),
    ],
)
def test_the_sender_is_named_as_the_client_will_see_it(resource, body, shown):
    outbound = Outbound(resource, {"clientId": "c", "text": "t", **body}, "[1]")

    assert sender_of(outbound) == shown
