"""How far the simulator's numbers moved since a git commit: the same rollout under both, compared field by field.

    python -m mtf_bench.compare_to_commit a054511 [--env MTFSession-v0] [--users 512] [--requests 60]

Checks the working tree's ``mtf_gym`` against the one at ``COMMIT`` (checked out into a temporary ``git worktree``):
both run ``--env`` (``MTFSession-v0``, ``MTFSession-v1`` or ``MTFSlate-v0``) as a vector env of ``--users`` users
seeded 123.. with the same random actions for ``--requests`` steps, autoresets included: fusion actions uniform in
[-1.2, 1.2] (so clipping is exercised), or for the slate env random pages of distinct items from its catalogue.
It prints, per output, the fraction of entries that differ at all and, for real-valued ones, by more than 1e-4
(float32 rounding stays below).
Use it after a change meant to be a pure refactoring or speed-up: anything beyond float rounding shows up here.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

# Float differences below this are rounding (float32 has ~7 digits); above it, a different outcome.
_TOLERANCE = 1e-4
_FIELDS = ("observations", "rewards", "terminated", "truncated", "item_ids", "predictions", "responses")


_ENVS = ("MTFSession-v0", "MTFSession-v1", "MTFSlate-v0")


def _actions(env_id: str, env, users: int, requests: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    if env_id != "MTFSlate-v0":
        return rng.uniform(-1.2, 1.2, (requests, users, env.single_action_space.shape[0])).astype(np.float32)
    num_items, page_size = env.single_action_space.num_items, env.single_action_space.page_size
    return np.stack([[rng.choice(num_items, page_size, replace=False) for _ in range(users)]
                     for _ in range(requests)]).astype(np.int64)


def rollout(users: int, requests: int, env_id: str = "MTFSession-v0") -> dict[str, np.ndarray]:
    """The rollout of whichever ``mtf_gym`` this process imports (logged fields zeroed on autoreset steps)."""
    import gymnasium as gym

    import mtf_gym  # noqa: F401  (registers the env)

    env = gym.make_vec(env_id, num_envs=users)
    actions = _actions(env_id, env, users, requests)
    obs, _ = env.reset(seed=123)
    out: dict[str, list[np.ndarray]] = {name: [] for name in _FIELDS}
    out["observations"].append(obs)
    for step in range(requests):
        obs, reward, terminated, truncated, info = env.step(actions[step])
        out["observations"].append(obs)
        out["rewards"].append(reward)
        out["terminated"].append(terminated)
        out["truncated"].append(truncated)
        for name in ("item_ids", "predictions", "responses"):
            live = info[f"_{name}"].reshape((-1,) + (1,) * (info[name].ndim - 1))
            out[name].append(np.where(live, info[name], 0))
    return {name: np.stack(values) for name, values in out.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("commit", help="git commit (or branch/tag) to compare the working tree against")
    parser.add_argument("--env", choices=_ENVS, default="MTFSession-v0", help="env to roll out (default v0)")
    parser.add_argument("--users", type=int, default=512)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--dump", help=argparse.SUPPRESS)  # internal: write this process's rollout to a .npz
    args = parser.parse_args(argv)
    if args.dump:
        np.savez(args.dump, **rollout(args.users, args.requests, args.env))
        return
    repo = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(tree), args.commit], check=True,
                       capture_output=True)
        try:
            files = {}
            for label, root in (("reference", tree), ("current", repo)):
                files[label] = Path(tmp) / f"{label}.npz"
                env = {**os.environ, "PYTHONPATH": str(root)}
                # This file runs in both, by path: the reference commit may predate it.
                command = [sys.executable, str(Path(__file__).resolve()), args.commit, "--env", args.env, "--users",
                           str(args.users), "--requests", str(args.requests), "--dump", str(files[label])]
                subprocess.run(command, check=True, env=env, cwd=root)
            reference, current = np.load(files["reference"]), np.load(files["current"])
            print(f"{args.env}, {args.users} users x {args.requests} requests, working tree vs {args.commit}:")
            for name in _FIELDS:
                a, b = reference[name], current[name]
                line = f"  {name:13s} {a.size:>10,} entries: {float(np.mean(a != b)):.2e} differ"
                if a.dtype.kind == "f":
                    gap = np.abs(a.astype(np.float64) - b)
                    line += (f" at all, {float(np.mean(gap > _TOLERANCE)):.2e} by more than {_TOLERANCE:g} "
                             f"(largest {float(gap.max()):.3g})")
                print(line)
        finally:
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)], check=False,
                           capture_output=True)


if __name__ == "__main__":
    main()
