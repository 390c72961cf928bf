"""target-chatra-push: warehouse rows in, Chatra messages out, each sent at most once."""

from __future__ import annotations

import sys
import typing as t

from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.target_base import Target

from chatra_client import ConfigError, ConnectionSettings, connection_properties
from chatra_client.plugin import ChatraPlugin
from chatra_client.stopping import StopRequested, StopSignals
from target_chatra_push.delivery import Delivery, RunStoppedError
from target_chatra_push.mapping import StreamMappings
from target_chatra_push.policy import DeliveryOptions
from target_chatra_push.settings import (
    delivery_properties,
    mapping_properties,
    stream_settings_property,
)
from target_chatra_push.singer_input import SingerInput
from target_chatra_push.sinks import ChatraMessageSink

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import PurePath

    from singer_sdk.singerlib.encoding.base import GenericSingerReader

_KEY_SETTINGS = ("api_key_pair", "public_key", "private_key")


def _connection(config: Mapping[str, t.Any], *, dry_run: bool) -> ConnectionSettings | None:
    """The connection settings; a dry run may go without keys, since it calls nobody."""
    if dry_run and not any(config.get(name) for name in _KEY_SETTINGS):
        return None
    return ConnectionSettings.from_config(config, plugin="target-chatra-push")


class TargetChatraPush(ChatraPlugin, Target):
    """Sends each row as one Chatra pushed or agent message, never the same one twice."""

    name = "target-chatra-push"

    config_jsonschema = th.PropertiesList(
        *connection_properties(),
        *mapping_properties(),
        stream_settings_property(),
        *delivery_properties(),
    ).to_dict()

    default_sink_class = ChatraMessageSink
    message_reader_class = SingerInput
    #: SIGTERM and SIGINT, handled while `invoke` runs: between rows, or at once while idle.
    stop_signals = StopSignals(interrupt=True)

    def __init__(
        self,
        *,
        config: dict[str, t.Any] | PurePath | str | list[PurePath | str] | None = None,
        parse_env_config: bool = False,
        validate_config: bool = True,
        setup_mapper: bool = True,
        message_reader: GenericSingerReader[t.Any] | None = None,
    ) -> None:
        """Validate the settings, compile the templates, and prepare the run; send nothing.

        Raises:
            ConfigValidationError: When settings contradict each other, the keys are malformed
                or a template does not compile, one line per problem.
        """
        super().__init__(
            config=config,
            parse_env_config=parse_env_config,
            validate_config=validate_config,
            setup_mapper=setup_mapper,
            message_reader=message_reader,
        )
        # Each row is settled inside process_record, so draining has no work for a thread pool.
        self.max_parallelism = 1
        self._state_written: dict[str, t.Any] | None = None
        self.mappings = StreamMappings(self.config)
        options = DeliveryOptions.from_config(self.config)
        errors = list(self.mappings.errors)
        connection = None
        try:
            connection = _connection(self.config, dry_run=options.dry_run)
        except ConfigError as exc:
            errors.append(str(exc))
        if errors:
            raise ConfigValidationError("Config validation failed", errors=errors)
        self.delivery = Delivery(
            options, connection=connection, logger=self.logger, stop_signals=self.stop_signals
        )
        self.stop_signals.on_interrupt = self.delivery.stop_for_signal
        if not isinstance(self.message_reader, SingerInput):
            msg = "target-chatra-push reads its input with SingerInput, which counts lines."
            raise TypeError(msg)
        self.singer_input = self.message_reader
        self.singer_input.on_bad_input = self.delivery.stop_for_bad_input
        self.singer_input.on_failure = self.delivery.finish

    @override
    def _process_state_message(self, message_dict: dict[str, t.Any]) -> None:
        """Pass each STATE on as soon as it arrives (never in a dry run).

        Changes SDK 0.54 behaviour: `Target._process_state_message` only remembers the latest
        STATE, and `drain_all` writes it when a sink is full (never, for a RecordSink), when
        the oldest row is `_MAX_RECORD_AGE_IN_MINUTES` (5) old, or at the end of input. Here
        every row is settled (sent, skipped or dead-lettered) inside `process_record` before
        the next line is read, so all rows before this STATE are settled and it can go out at
        once; Meltano then never records progress for rows not yet handled, and a killed run
        resumes from the last row that was. A dry run passes no STATE on at all, so it changes
        no state. Guarded by tests/test_state.py.
        """
        if self.delivery.options.dry_run:
            return
        with self.stop_signals.busy():  # never half a STATE line
            super()._process_state_message(message_dict)
            self.drain_all()

    @override
    def _write_state_message(self, state: dict[str, t.Any]) -> None:
        """Write each STATE once, and none after a row that must go out on a later run.

        The SDK's end-of-input drain repeats the last STATE; `Delivery.state_held` names the
        row (deferred, or rejected to be tried again) that holds STATE back.
        """
        if state == self._state_written or self.delivery.state_held is not None:
            return
        self._state_written = state
        super()._write_state_message(state)

    @override
    def process_endofpipe(self) -> None:
        with self.stop_signals.busy():
            super().process_endofpipe()
            self.delivery.finish()

    @classmethod
    @override
    def invoke(cls, **kwargs: t.Any) -> None:
        """Run the target; a stopped run ends with one line naming the fix, never exit 0.

        Exit code 1 when the run stopped itself, 128 + the signal's number when stopped by
        SIGTERM or SIGINT.
        """
        stop = cls.stop_signals
        stop.reset()
        try:
            with stop.installed():
                super().invoke(**kwargs)
        except RunStoppedError as stopped:
            cls.logger.error("%s", stopped)
            sys.exit(stopped.exit_code)
        except StopRequested as stopped:  # before the run had started
            cls.logger.error("%s", stopped)
            sys.exit(stop.exit_code(stopped.signum))
        if stop.received is not None:
            # The signal came as the input ended: every row is settled, but the run was stopped.
            cls.logger.error("Stopped by signal %d after the last row.", stop.received)
            sys.exit(stop.exit_code(stop.received))
