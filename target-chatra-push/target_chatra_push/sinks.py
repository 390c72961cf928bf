"""The sink: each row is settled (sent, skipped or dead-lettered) before the next is read."""

from __future__ import annotations

import sys
import typing as t

from singer_sdk.helpers.conform import DatetimeErrorTreatmentEnum
from singer_sdk.sinks import RecordSink
from singer_sdk.sinks.core import BaseJSONSchemaValidator, JSONSchemaValidator

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from collections.abc import Sequence

    from target_chatra_push.target import TargetChatraPush

# The stream `meltano config test` feeds a loader: its row must never reach a real person.
MELTANO_TEST_STREAM = "meltano_test_stream"


class RowSchemaCheck(BaseJSONSchemaValidator):
    """Checks each row against the stream's schema without stopping the run.

    The SDK's own validator raises on the first wrong-typed row, which ends the whole run. A
    row of the wrong type must be dead-lettered instead, so the problem is kept here for
    `process_record`, which the SDK calls next for the same row.
    """

    def __init__(self, schema: dict[str, t.Any]) -> None:
        super().__init__(schema)
        # The SDK's validator checks the schema itself (InvalidJSONSchema) and holds the
        # jsonschema validator whose errors name the field and the rule.
        self._checker = JSONSchemaValidator(schema).validator
        self.problem: str | None = None

    @override
    def validate(self, record: dict[str, t.Any]) -> None:
        error = next(iter(self._checker.iter_errors(record)), None)
        if error is None:
            self.problem = None
            return
        where = ".".join(str(part) for part in error.absolute_path) or "the row"
        # Name the field and the rule, never the value: this line is also logged.
        self.problem = f"wrong type: '{where}' fails the stream schema ({error.validator})"

    def take_problem(self) -> str | None:
        """The last row's problem, cleared so it cannot leak to the next row."""
        problem, self.problem = self.problem, None
        return problem


class ChatraMessageSink(RecordSink):
    """Turns each row of a stream into one Chatra message, sent at most once."""

    def __init__(
        self,
        target: TargetChatraPush,
        stream_name: str,
        schema: dict[str, t.Any],
        key_properties: Sequence[str] | None,
    ) -> None:
        self._delivery = target.delivery
        self._stop_signals = target.stop_signals
        self._input = target.singer_input
        self._mapping = target.mappings.for_stream(stream_name)
        self._schema_check: RowSchemaCheck | None = None
        super().__init__(target, stream_name, schema, key_properties)

    @property
    @override
    def datetime_error_treatment(self) -> DatetimeErrorTreatmentEnum:
        # A date the SDK cannot parse must not stop the run: it becomes null, and a template
        # that prints it makes that one row invalid rather than sending a blank.
        return DatetimeErrorTreatmentEnum.NULL

    @override
    def get_validator(self) -> BaseJSONSchemaValidator | None:
        self._schema_check = RowSchemaCheck(self.schema) if self.validate_schema else None
        return self._schema_check

    @override
    def _singer_validate_message(self, record: dict[str, t.Any]) -> None:
        """Leave a row without its key properties to the delivery, which dead-letters it.

        Changes SDK 0.54 behaviour: the SDK raises MissingKeyPropertiesError here, which ends
        the whole run. The delivery builds each row's dedupe key and dead-letters a row that
        lacks one as `missing_key`; a row keyed by `dedupe_key_properties` needs no stream key.
        Guarded by tests/faults/test_bad_input.py.
        """

    @override
    def process_record(self, record: dict[str, t.Any], context: dict[str, t.Any]) -> None:
        problem = self._schema_check.take_problem() if self._schema_check else None
        if self.stream_name == MELTANO_TEST_STREAM:
            self._delivery.check_credentials()
            return
        with self._stop_signals.busy():  # a signal waits until the row is settled
            self._delivery.deliver(
                self.stream_name,
                self._mapping,
                record,
                self.key_properties,
                problem=problem,
                line=self._input.line_number,
            )
