"""Settings from the environment, security by configuration alone, logging and metrics helpers."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from contextlib import redirect_stderr

import pytest
from prometheus_client import CollectorRegistry, Counter
from pydantic import SecretStr, ValidationError

from tiltstream.log import configure_logging, get_logger
from tiltstream.metrics import start_metrics_server
from tiltstream.settings import CliSettings, KafkaSettings, LoggingSettings
from tiltstream.streams.clients import consumer_config, producer_config


def test_environment_variables_configure_every_part(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TILTSTREAM_KAFKA_BOOTSTRAP_SERVERS", "kafka-0:9093,kafka-1:9093")
    monkeypatch.setenv("TILTSTREAM_TOPICS_PARTITIONS", "24")
    monkeypatch.setenv("TILTSTREAM_BROKER_KAFKA_VERSION", "4.4.0")
    settings = CliSettings()
    assert settings.kafka.bootstrap_servers == "kafka-0:9093,kafka-1:9093"
    assert settings.topics.partitions == 24
    assert settings.broker.kafka_version == "4.4.0"
    with pytest.raises(ValidationError):
        settings.topics.partitions = 3  # type: ignore[misc]  # frozen


def test_sasl_ssl_by_configuration_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TILTSTREAM_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("TILTSTREAM_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("TILTSTREAM_KAFKA_SASL_USERNAME", "tiltstream")
    monkeypatch.setenv("TILTSTREAM_KAFKA_SASL_PASSWORD", "s3cret-value")
    monkeypatch.setenv("TILTSTREAM_KAFKA_SSL_CA_LOCATION", "/etc/kafka/ca.crt")
    settings = KafkaSettings()
    assert "s3cret-value" not in repr(settings)
    config = producer_config(settings)
    assert config["security.protocol"] == "sasl_ssl"
    assert config["sasl.mechanism"] == "SCRAM-SHA-512"
    assert config["sasl.username"] == "tiltstream"
    assert config["sasl.password"] == "s3cret-value"
    assert config["ssl.ca.location"] == "/etc/kafka/ca.crt"
    assert config["enable.idempotence"] is True
    assert config["acks"] == "all"
    consumer = consumer_config(settings, "motioncorr")
    assert consumer["partition.assignment.strategy"] == "cooperative-sticky"
    assert consumer["enable.auto.offset.store"] is False
    assert consumer["sasl.password"] == "s3cret-value"


def test_sasl_without_credentials_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="needs sasl_username"):
        producer_config(KafkaSettings(security_protocol="SASL_SSL", sasl_mechanism="PLAIN"))
    with pytest.raises(ValueError, match="needs sasl_mechanism"):
        producer_config(KafkaSettings(security_protocol="SASL_PLAINTEXT", sasl_password=SecretStr("x")))


def test_json_logs_carry_bound_ids() -> None:
    stream = io.StringIO()
    with redirect_stderr(stream):
        configure_logging(LoggingSettings(level="INFO", format="json"))
        get_logger("test").bind(tilt_series_id="cm1:Position_1", movie_id="m-7").info("corrected", motion=3.5)
        get_logger("test").debug("hidden")
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    assert len(lines) == 1
    assert lines[0]["event"] == "corrected"
    assert lines[0]["tilt_series_id"] == "cm1:Position_1"
    assert lines[0]["movie_id"] == "m-7"
    assert lines[0]["level"] == "info"
    assert lines[0]["logger"] == "test"


def test_metrics_endpoint_serves_the_registry() -> None:
    registry = CollectorRegistry()
    processed = Counter("tiltstream_processed", "Events processed", ["stage"], registry=registry)
    processed.labels(stage="motioncorr").inc(3)
    server = start_metrics_server(0, address="127.0.0.1", registry=registry)
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5).read().decode()
    finally:
        server.close()
    assert 'tiltstream_processed_total{stage="motioncorr"} 3.0' in body


def test_health_and_readiness_probes() -> None:
    ready = {"value": False}
    server = start_metrics_server(
        0, address="127.0.0.1", registry=CollectorRegistry(), ready=lambda: ready["value"]
    )
    base = f"http://127.0.0.1:{server.port}"
    try:
        assert urllib.request.urlopen(f"{base}/healthz", timeout=5).status == 200
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/readyz", timeout=5)
        assert refused.value.code == 503
        ready["value"] = True
        assert urllib.request.urlopen(f"{base}/readyz", timeout=5).status == 200
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{base}/nothing", timeout=5)
        assert missing.value.code == 404
    finally:
        server.close()


def test_a_logger_made_before_configuration_follows_its_level() -> None:
    early = get_logger("made-at-import")  # as a module-level logger is, before the entry point runs
    stream = io.StringIO()
    with redirect_stderr(stream):
        configure_logging(LoggingSettings(level="WARNING", format="json"))
        early.info("too chatty")
        early.bind(series="s1").warning("worth seeing")
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    assert [line["event"] for line in lines] == ["worth seeing"]
    assert lines[0]["logger"] == "made-at-import"
    assert lines[0]["series"] == "s1"
