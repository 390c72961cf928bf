"""The Singer SDK's standard tap tests against a sandbox (every test applies; one parameter is
left out, below)."""

from __future__ import annotations

import typing as t
from functools import cached_property

import pytest
from singer_sdk.testing import SuiteConfig, get_tap_test_class
from singer_sdk.testing.runners import TapTestRunner
from singer_sdk.testing.templates import AttributeTestTemplate

from chatra_sandbox import SandboxServer
from tap_chatra.tap import TapChatra

if t.TYPE_CHECKING:
    from collections.abc import Iterator

SUITE = SuiteConfig(max_records_limit=150)

# pytest collects the tests from the stream list of a tap built with this config; no request is
# made with it. The `runner` fixture below runs every test against a real sandbox instead.
_COLLECTION_CONFIG = {"api_key_pair": "collect:only", "api_url": "http://127.0.0.1:9/api"}

StandardTests = get_tap_test_class(TapChatra, config=_COLLECTION_CONFIG, suite_config=SUITE)
# A pushed message never carries a file (Chatra's API posts text only; the sandbox has none), so
# "pushed_messages.file is an object" has no value to check and would fail on "no records".
_OBJECT_TEST = "test_tap_stream_attribute_is_object"
StandardTests.params[_OBJECT_TEST] = [
    param for param in StandardTests.params[_OBJECT_TEST] if param.id != "pushed_messages.file"
]


@pytest.fixture(scope="module")
def standard_sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(seed=7, clients=20, messages=60, pushed_messages=15) as server:
        yield server


class TestTapChatraStandard(StandardTests):
    """Discovery, CLI, connection test, valid final STATE and every per-stream check."""

    @pytest.fixture(autouse=True)
    def _each_attribute_test_reads_its_own_attribute(self, request: pytest.FixtureRequest) -> None:
        """The SDK (0.54) runs every parameter of an attribute test on one template object,
        which caches the values it read (`non_null_attribute_values`): each parameter after the
        first in a process checked the first one's attribute, and a parameter that ran first
        checked its own. Forget the cache before each test, so each checks its own."""
        template = getattr(request.function, "__self__", None)
        if isinstance(template, AttributeTestTemplate):
            vars(template).pop("non_null_attribute_values", None)

    @pytest.fixture(scope="class")
    @classmethod
    def runner(
        cls,
        standard_sandbox: SandboxServer,
        tmp_path_factory: pytest.TempPathFactory,
        module_kit: t.Any,
    ) -> TapTestRunner:
        files = standard_sandbox.write_id_files(tmp_path_factory.mktemp("ids"))
        events, _ = module_kit.events_file(standard_sandbox, 8)
        config = {
            "api_key_pair": standard_sandbox.key_pair,
            "api_url": standard_sandbox.api_url,
            "requests_per_minute": 0,
            "message_ids_file": str(files["messages"]),
            "pushed_message_ids_file": str(files["pushed_messages"]),
            "webhook_events_file": str(events),
        }
        runner = TapTestRunner(TapChatra, config=config, suite_config=SUITE)
        runner.sync_all()
        return runner


def test_standard_run_fetched_every_stream(standard_sandbox: SandboxServer) -> None:
    # The standard tests share one sync; make sure it reached the API for all three streams
    # (the webhook streams' records are checked by the standard tests themselves).
    resources = {entry["resource"] for entry in standard_sandbox.request_log()}
    assert {"messages", "pushedMessages", "clients"} <= resources


def test_the_attribute_tests_still_share_one_caching_template() -> None:
    """The fixture above forgets `non_null_attribute_values` because the SDK runs every
    parameter on one template object that caches it. If the SDK stops doing either, the
    fixture does nothing any more and can go (docs/maintainers.md, upgrading the SDK)."""
    assert isinstance(vars(AttributeTestTemplate)["non_null_attribute_values"], cached_property)
    template = StandardTests.test_tap_stream_attribute_is_object.__self__
    assert isinstance(template, AttributeTestTemplate)
    assert len(StandardTests.params[_OBJECT_TEST]) > 1
