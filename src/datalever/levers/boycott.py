"""Boycott: a strike whose participants also leave the service, so they leave evaluation
("everyone" is who remains) and are not judged as participants."""

from __future__ import annotations

from datalever.levers.strike import Strike


class Boycott(Strike):
    """Strike and leave: the records are withheld and the participants are no longer served."""

    kind = "boycott"
    leaves_service = True
