"""Never train an architecture twice, even with workers on several machines.

Small spaces make samplers repeat themselves (article 001's 27 modules), and two workers can
draw the same architecture at the same moment. Every trial takes part in a claim made of
storage writes and reads only (so it works on SQLite, PostgreSQL and journal files alike):

1. write ``arch`` (the architecture key) and ``rank`` (its trial number; a retry keeps the
   rank of the trial it retries) into the trial's user attributes, *then* read the others;
2. if another live claim of the same ``arch`` has a smaller rank, yield to it;
3. otherwise wait until every larger-ranked live claim has decided; if one decided to train,
   yield to it, else decide to train.

A decision is published as ``dedup = "owner"`` or ``"duplicate"`` (with ``duplicate_of``).
Because each trial writes before it reads, of two trials claiming the same architecture at
least one sees the other: if the larger-ranked one missed the smaller, the smaller one saw it
and waits for its decision (step 3), so exactly one of them trains. A claim is live when its
trial is waiting (a queued retry), running or finished -- failed trials are dead and their
retries carry their rank on.
"""

from __future__ import annotations

import time

from optuna.trial import FrozenTrial, TrialState

LIVE = (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)


def _rank(t: FrozenTrial) -> tuple[int, int]:
    return (t.user_attrs.get("rank", t.number), t.number)


def _rivals(study, number: int, key: str) -> list[FrozenTrial]:
    return [
        t
        for t in study.get_trials(deepcopy=False, states=LIVE)
        if t.number != number and t.user_attrs.get("arch") == key and t.user_attrs.get("dedup") != "duplicate"
    ]


def claim(study, trial, key: str, rank: int, wait_s: float = 30.0, poll_s: float = 0.1) -> FrozenTrial | None:
    """Claim architecture ``key`` for ``trial``: None when it is ours to train, else the trial that owns it.

    ``wait_s`` bounds the wait for an undecided rival (one whose worker died between its two
    writes is ignored after that long).
    """
    trial.set_user_attr("arch", key)
    trial.set_user_attr("rank", rank)
    mine = (rank, trial.number)
    deadline = time.monotonic() + wait_s
    while True:
        rivals = _rivals(study, trial.number, key)
        earlier = [t for t in rivals if _rank(t) < mine]
        if earlier:
            return _decide(trial, min(earlier, key=_rank))
        owners = [t for t in rivals if t.user_attrs.get("dedup") == "owner"]
        if owners:
            return _decide(trial, min(owners, key=_rank))
        undecided = [t for t in rivals if "dedup" not in t.user_attrs and t.state == TrialState.RUNNING]
        if not undecided or time.monotonic() > deadline:
            trial.set_user_attr("dedup", "owner")
            return None
        time.sleep(poll_s)


def _decide(trial, owner: FrozenTrial) -> FrozenTrial:
    trial.set_user_attr("dedup", "duplicate")
    trial.set_user_attr("duplicate_of", owner.number)
    return owner
