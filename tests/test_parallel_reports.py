"""A test report with a lone surrogate in it reaches the pytest-xdist controller."""

from __future__ import annotations

import execnet.gateway_base
import pytest

from tests.conftest import REPO_ROOT


def test_a_report_with_a_lone_surrogate_can_be_sent_to_the_controller(
    pytestconfig: pytest.Config,
) -> None:
    root_conftest = pytestconfig.pluginmanager.get_plugin(str(REPO_ROOT / "conftest.py"))
    assert root_conftest is not None
    report = {
        "sections": [("Captured log call", "DEBUG body b'\\xa1' -> \udca1 done")],
        "longrepr": {"reprcrash": {"message": "assert '\ud800' == ''", "lineno": 3}},
        "keywords": {"test": 1},
    }
    with pytest.raises(execnet.gateway_base.DumpError):
        execnet.gateway_base.dumps_internal(report)
    safe = root_conftest.utf8_safe(report)
    execnet.gateway_base.dumps_internal(safe)
    assert safe["sections"] == [("Captured log call", "DEBUG body b'\\xa1' -> \\udca1 done")]
    assert safe["longrepr"]["reprcrash"] == {"message": "assert '\\ud800' == ''", "lineno": 3}
    assert safe["keywords"] == {"test": 1}
