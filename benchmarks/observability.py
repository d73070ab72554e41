"""How much of each latent the MTFSession-v1 observation explains: R^2 of a fitted regressor on held-out users.

    python -m mtf_bench.observability [--users 8192] [--request 3]

Users run under the control for ``--request`` requests (so the session part of the observation is filled); a
gradient-boosted regressor (scikit-learn ``HistGradientBoostingRegressor``) is fitted per latent on training users
(``mtf_bench.headroom.TRAIN_SEED``) and scored on evaluation users (``EVAL_SEED``): R^2 = 1 means the observation
reveals the latent exactly, 0 means it tells nothing beyond the population mean.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from mtf_bench.headroom import EVAL_SEED, TRAIN_SEED
from mtf_gym import BaselinePolicy
from mtf_gym.evaluation import SessionRunner
from mtf_gym.sim.config import MTFSessionV1Config
from mtf_gym.sim.layout import STATE_NAMES

__all__ = ["latent_table", "main"]

# Traits that are observed attributes rather than latents (a feature log has the account age).
OBSERVED_ATTRIBUTES = ("log_account_age",)


def _snapshot(config: MTFSessionV1Config, first_seed: int, users: int, request: int):
    """Observations and latents of the users still in their session after ``request`` requests under the control
    (users ``first_seed + i``, as every benchmark draws them), read through the project's one rollout loop."""
    runner = SessionRunner(users, dataclasses.replace(config, item_logs=False))
    sim = runner.env.sim
    action = BaselinePolicy(config).action
    actions = np.broadcast_to(action, (users, action.shape[0])).copy()
    snapshot: dict[str, np.ndarray] = {}
    calls = [0]

    def read_latents(rows: np.ndarray) -> None:  # before the step: the state `calls[0]` requests in
        if calls[0] == request:
            snapshot["rows"] = rows
            latents = {k: v.copy() for k, v in sim.traits().items() if k not in OBSERVED_ATTRIBUTES}
            latents.update({k: v.copy() for k, v in sim.latent_state().items()})
            latents["segment"] = sim.segment.astype(np.float64)
            latents.update({f"ranker_error_std[{t}]": v for t, v in zip(
                config.ranker_tasks, np.sqrt(np.mean(sim.users.ranker_error ** 2, axis=1)).T)})
            snapshot["latents"] = latents

    def control(obs: np.ndarray) -> np.ndarray:
        if calls[0] == request:
            snapshot["obs"] = np.array(obs, copy=True)
        calls[0] += 1
        return actions

    runner.run(control, first_seed, max_requests=request + 1, before_step=read_latents)
    if "rows" not in snapshot:  # every session ended before the snapshot request
        raise ValueError(f"request={request}: no session of {users} users lasts that long under the control")
    rows = snapshot["rows"]
    return snapshot["obs"][rows], {k: v[rows] for k, v in snapshot["latents"].items()}


def latent_table(config: MTFSessionV1Config, users: int, request: int) -> dict[str, float]:
    """R^2 on held-out users of a regressor of each latent on the observation."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.metrics import r2_score

    x_train, y_train = _snapshot(config, TRAIN_SEED, users, request)
    x_test, y_test = _snapshot(config, EVAL_SEED, users, request)
    table = {}
    for name in y_train:
        model = HistGradientBoostingRegressor(max_iter=200, random_state=0).fit(x_train, y_train[name])
        table[name] = float(r2_score(y_test[name], model.predict(x_test)))
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=8192, help="training and evaluation users each (default 8192)")
    parser.add_argument("--request", type=int, default=3, help="requests before the snapshot (default 3)")
    args = parser.parse_args(argv)
    if args.users < 64:
        parser.error(f"--users must be >= 64, got {args.users}")
    if args.request < 0:
        parser.error(f"--request must be >= 0, got {args.request}")
    table = latent_table(MTFSessionV1Config(), args.users, args.request)
    print(f"R^2 of each latent from the observation after {args.request} requests (held-out users, "
          f"{args.users} train / {args.users} eval, users still in session)\n")
    print("| latent | kind | R^2 |\n|---|---|---|")
    for name, r2 in table.items():
        kind = "state" if name in STATE_NAMES else "trait"
        print(f"| {name} | {kind} | {r2:.3f} |")


if __name__ == "__main__":
    main()
