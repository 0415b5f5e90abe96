"""What ``topics apply`` lays out: the catalogue's topics and the dead-letter topic of every group.

``tiltstream topics apply``, ``tiltstream up``, ``tiltstream demo``, the live session and the Strimzi
``KafkaTopic`` manifests all take their topic list from :func:`laid_out_topics`, so none of them can
forget a group's dead-letter topic.
"""

from __future__ import annotations

from tiltstream.stages.builtin import REGISTRY
from tiltstream.stages.registry import StageRegistry
from tiltstream.streams.catalogue import Catalogue, Topic

__all__ = ["laid_out_topics"]


def laid_out_topics(catalogue: Catalogue, registry: StageRegistry | None = None) -> list[Topic]:
    """The pipeline topics, the schemas topic and ``<prefix>.dlq.<group>`` for each registry group.

    Parameters
    ----------
    catalogue
        The catalogue laid out with the cluster's settings.
    registry
        Whose groups get dead-letter topics (default: :data:`~tiltstream.stages.REGISTRY`).
    """
    registry = registry or REGISTRY
    return [*catalogue.all_topics(), *(catalogue.dlq(group) for group in registry.groups())]
