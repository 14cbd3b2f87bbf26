"""The score-model facade on the torch backend (:class:`sdelang.score.score_model.ScoreModel`)."""
from __future__ import annotations

from sdelang.score.score_model import ScoreModel as _ScoreModel


class ScoreModel(_ScoreModel):
    """:class:`sdelang.score.ScoreModel` compiling its spec with the torch backend."""

    backend = "torch"
