"""``tiltstream k8s``: the Kubernetes manifests that are generated from code, and rendering ``k8s/``.

PyYAML comes with the ``k8s`` extra, so it is imported by the commands, not here: the light image's
CLI starts without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tiltstream.cli._common import err_console
from tiltstream.settings import CliSettings, TopicSettings
from tiltstream.streams.catalogue import Catalogue

__all__ = ["create_app"]


def create_app(settings: CliSettings) -> typer.Typer:
    """Build the ``k8s`` command group."""
    app = typer.Typer(
        help="Kubernetes: generate the Strimzi topics and the processors' manifests, render the Kustomize "
        "tree.",
        no_args_is_help=True,
    )
    defaults = settings.topics

    @app.command("topics")
    def topics(
        cluster: Annotated[str, typer.Option(help="Name of the Strimzi Kafka resource.")] = "tiltstream",
        prefix: Annotated[str, typer.Option(help="Topic name prefix.")] = defaults.prefix,
        partitions: Annotated[
            int, typer.Option(min=1, help="Partitions of every topic.")
        ] = defaults.partitions,
        replication_factor: Annotated[int, typer.Option(min=1)] = defaults.replication_factor,
        min_insync_replicas: Annotated[int, typer.Option(min=1)] = defaults.min_insync_replicas,
        dlq_group: Annotated[
            list[str] | None,
            typer.Option(
                "--dlq-group", help="Group whose dead-letter topic to declare (default: the registry's)."
            ),
        ] = None,
        output: Annotated[
            Path | None, typer.Option("--output", "-o", help="Write here, not to stdout.")
        ] = None,
    ) -> None:
        """Write a Strimzi KafkaTopic for every catalogue topic and every group's dead-letter topic."""
        from tiltstream.k8s.topics import kafka_topics_yaml  # PyYAML: the k8s extra

        topic_settings = TopicSettings(
            prefix=prefix,
            partitions=partitions,
            replication_factor=replication_factor,
            min_insync_replicas=min_insync_replicas,
        )
        text = kafka_topics_yaml(Catalogue(topic_settings), cluster=cluster, dlq_groups=dlq_group or None)
        if output is None:
            typer.echo(text, nl=False)
        else:
            output.write_text(text)
            err_console.print(f"Wrote {text.count('kind: KafkaTopic')} KafkaTopics to {output}.")

    @app.command("processors")
    def processors(
        prefix: Annotated[str, typer.Option(help="Topic name prefix.")] = defaults.prefix,
        partitions: Annotated[
            int, typer.Option(min=1, help="Partitions of every topic (bounds the replicas).")
        ] = defaults.partitions,
        output_dir: Annotated[
            Path, typer.Option("--output-dir", help="The k8s/ folder to write into.")
        ] = Path("k8s"),
    ) -> None:
        """Write each registry stage's Deployment, PodDisruptionBudget, ScaledObject and burst capacity."""
        from tiltstream.k8s.generated import write_processor_files  # PyYAML: the k8s extra

        catalogue = Catalogue(TopicSettings(prefix=prefix, partitions=partitions))
        written = write_processor_files(output_dir, catalogue)
        err_console.print(f"Wrote {len(written)} files under {output_dir}.")

    @app.command("render")
    def render(
        directory: Annotated[Path, typer.Argument(help="A folder with a kustomization.yaml.")],
    ) -> None:
        """Print what a kustomization renders to (``kustomize build``; see scripts/install.sh)."""
        import yaml

        from tiltstream.k8s.render import KustomizeError, ToolNotFoundError, render_kustomization

        try:
            manifests = render_kustomization(directory)
        except (KustomizeError, ToolNotFoundError) as error:
            err_console.print(f"[red]{error}[/]")
            raise typer.Exit(1) from error
        typer.echo(yaml.safe_dump_all(manifests, sort_keys=False, width=1000), nl=False)

    return app
