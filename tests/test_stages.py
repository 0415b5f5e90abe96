"""The stage registry: its declarations agree with the code they name, it refuses clashes, and what is
made from it (the CLI's groups, the aggregator's series stages) follows it."""

from __future__ import annotations

import subprocess
import sys
import typing
from dataclasses import replace
from typing import Any

import pytest
from typer.testing import CliRunner

import tiltstream.cli.process as process_cli
from tiltstream.cli import create_app
from tiltstream.connectors.ispyb.settings import IspybSinkSettings
from tiltstream.settings import CliSettings
from tiltstream.stages import REGISTRY, Scope, StageRegistry
from tiltstream.streams.aggregator.fold import SERIES_STAGES
from tiltstream.streams.aggregator.settings import AggregatorSettings
from tiltstream.streams.catalogue import Catalogue


@pytest.mark.parametrize("stage", REGISTRY.stages(), ids=REGISTRY.names())
def test_declarations_agree_with_the_classes_they_name(stage: Any) -> None:
    processor, settings = stage.processor_class(), stage.settings_class()
    assert processor.stage == stage.name  # the stage its ProcessingFailed events name
    assert processor.input_record == stage.input_record
    assert processor.output_record in stage.output_records
    assert settings.model_config["env_prefix"] == stage.env_prefix
    assert settings.model_fields["group_id"].default == stage.group  # built directly, same group
    backend = settings.model_fields.get("backend")
    choices = typing.get_args(backend.annotation) if backend is not None else ()
    assert set(choices) == set(stage.backends)
    catalogue = Catalogue()
    for record in (stage.input_record, *stage.output_records):
        assert catalogue.for_record(record).record == record
    assert stage.subject_field in {"movie_id", "request_id"}
    assert (stage.scope is Scope.SERIES) == (stage.subject_field == "request_id")


def test_service_groups_are_the_services_defaults() -> None:
    assert REGISTRY.service("ispyb-sink").group == IspybSinkSettings.model_fields["group_id"].default
    assert REGISTRY.service("aggregator").group == AggregatorSettings.model_fields["app_id"].default
    assert len(set(REGISTRY.groups())) == len(REGISTRY.groups())


def test_the_aggregator_treats_series_stages_as_the_registry_says() -> None:
    assert REGISTRY.series_stages() == SERIES_STAGES
    for stage in REGISTRY.stages():
        assert (stage.name in SERIES_STAGES) == (stage.scope is Scope.SERIES)
    assert REGISTRY.service("aggregator").failure_stage in SERIES_STAGES


def test_register_refuses_clashes_and_extended_restores() -> None:
    motioncorr = REGISTRY.stage("motioncorr")
    registry = StageRegistry([motioncorr], REGISTRY.services())
    with pytest.raises(ValueError, match="registered already"):
        registry.register(motioncorr)
    clash = replace(REGISTRY.stage("ctf"), group="tiltstream-aggregator")
    with pytest.raises(ValueError, match="taken"):
        registry.register(clash)
    bad = replace(REGISTRY.stage("ctf"), name="CTF two", group="a b")
    with pytest.raises(ValueError, match=r"command name.*cannot name a topic"):
        registry.register(bad)
    with pytest.raises(KeyError, match="stages: motioncorr"):
        registry.stage("ctf")
    with registry.extended(REGISTRY.stage("ctf")) as extended:
        assert extended.names() == ("motioncorr", "ctf")
    assert registry.names() == ("motioncorr",)


def test_the_cli_runs_a_stage_in_its_registry_group(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(
        process_cli, "_run", lambda stage, _s, _d, group, *_a: calls.append((stage.name, group))
    )
    runner = CliRunner()
    app = create_app(CliSettings())
    assert runner.invoke(app, ["process", "ctf"]).exit_code == 0
    assert runner.invoke(app, ["process", "ctf"], env={"TILTSTREAM_CTF_GROUP_ID": "ctf-b"}).exit_code == 0
    assert runner.invoke(app, ["process", "denoise", "--group", "g"]).exit_code == 0
    assert calls == [("ctf", REGISTRY.stage("ctf").group), ("ctf", "ctf-b"), ("denoise", "g")]


def test_reading_the_registry_and_building_the_cli_import_no_processor() -> None:
    code = (
        "import sys; import tiltstream.stages; from tiltstream.cli import create_app; create_app(); "
        "print(sorted(m for m in sys.modules if m.startswith(('torch', 'numpy', 'tiltstream.processors'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
