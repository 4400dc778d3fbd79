"""Publishing Output intents to GitHub, idempotently: one module per output kind, `github` joins them.

Every output carries the hidden marker `<!-- waooaw:{agent}:{kind}:{key} -->` and is
remembered in `published_outputs`, so a redelivered event edits what it posted
before instead of posting again. A marker names an output within one repository of
one installation: the record is keyed by all three. When the record is missing (a
crash between "GitHub created it" and "we recorded it"), GitHub itself is searched for
the marker before anything is created; an object found there is ours only if our App
wrote it and the marker ends its body, where we put it — one anywhere else was quoted
or planted.

`published_outputs.github_id` holds what the API addresses the object by: the
comment, review, check run or reaction id, and the issue or pull request *number*.
A workflow dispatch leaves no object behind, so its record is all there is of it; labels
(recorded by the issue's number) carry no marker either, and their record keeps a redelivery
from setting again what a maintainer changed since.

`publish` answers with one `Published` per output, in order: what it became on GitHub.
"""

from bot.publish.common import Origin, Published, Publisher, PublishError, with_marker
from bot.publish.dry_run import DryRunPublisher, describe
from bot.publish.github import GitHubPublisher
from bot.publish.reviews import REVIEW_PROBE_LIMIT, bisect_accepted

__all__ = [
    "REVIEW_PROBE_LIMIT",
    "DryRunPublisher",
    "GitHubPublisher",
    "PublishError",
    "Origin",
    "Published",
    "Publisher",
    "bisect_accepted",
    "describe",
    "with_marker",
]
