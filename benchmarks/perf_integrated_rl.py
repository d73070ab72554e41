"""Update throughput of IntegratedRL (24 critics: one set, and 3 sets x 8) vs d3rlpy TD3+BC with 24 and 2 critics.

All algorithms run in one process on the same synthetic data (obs dim 20, action dim 10), batch 256 and 256x256
ReLU MLPs. Two rates are reported per algorithm:

- ``update/s``: ``algo.update(batch)`` on pre-sampled batches (the algorithm's own cost);
- ``fit step/s``: sample a batch from the algorithm's dataset + update, i.e. what ``fit`` does per step
  (TD3+BC samples from a d3rlpy ``MDPDataset``, IntegratedRL from its ``BandedReplayBuffer``).

``IntegratedRL(3x8)`` is the later version's arrangement at the same q*m = 24: three critic sets (one per reward
component, synthetic components summing to the reward) of eight critics, still one batched ensemble.

Acceptance: IntegratedRL(24) is no slower than TD3PlusBC(24), and IntegratedRL(3x8) no slower than IntegratedRL(24)
(ratio column ``vs IRL(24)``). ``--only-integrated`` times just the two IntegratedRL runs.

Usage (from the repository root)::

    python -m mtf_bench.perf_integrated_rl [--steps 20] [--rounds 3] [--device cpu:0] [--threads N] [--clock wall|cpu]
        [--only-integrated] [--compile-graph]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import d3rlpy
import numpy as np
import torch
from d3rlpy.algos import QLearningAlgoBase, TD3PlusBCConfig
from d3rlpy.dataset import MDPDataset, ReplayBufferBase
from d3rlpy.models import VectorEncoderFactory

from mtf_agents.integrated_rl import IntegratedRLConfig, make_banded_dataset

OBS_DIM, ACTION_DIM, N_ROWS, EPISODE_LEN, BATCH = 20, 10, 20_000, 20, 256


def synthetic_data(seed: int) -> tuple[MDPDataset, ReplayBufferBase, ReplayBufferBase]:
    """Bounded-uniform exploration around a state-dependent baseline policy; the same rows feed every dataset
    (plain, banded, banded with three reward components summing to the reward)."""
    rng = np.random.default_rng(seed)
    observations = rng.normal(size=(N_ROWS, OBS_DIM)).astype(np.float32)
    baseline = rng.normal(scale=0.3, size=(OBS_DIM, ACTION_DIM))
    centres = (0.8 * np.tanh(observations @ baseline)).astype(np.float32)
    actions = (centres + rng.uniform(-0.15, 0.15, size=centres.shape)).astype(np.float32)
    rewards = (actions[:, 0] - 0.1 * np.abs(actions[:, 1:]).sum(axis=1)).astype(np.float32)
    terminals = np.zeros(N_ROWS, dtype=np.float32)
    timeouts = np.zeros(N_ROWS, dtype=np.float32)
    timeouts[EPISODE_LEN - 1 :: EPISODE_LEN] = 1.0
    plain = MDPDataset(observations, actions, rewards, terminals, timeouts)
    banded = make_banded_dataset(observations, actions, rewards, terminals, timeouts, centres, -0.15, 0.15)
    penalty = -0.1 * np.abs(actions[:, 1:])
    components = np.stack([actions[:, 0], penalty[:, :4].sum(1), penalty[:, 4:].sum(1)], axis=1)
    rewards3 = components.sum(1).astype(np.float32)
    sets = make_banded_dataset(observations, actions, rewards3, terminals, timeouts, centres, -0.15, 0.15,
                               reward_components=components)
    return plain, banded, sets


def timed_rate(fn: Callable[[], object], steps: int, clock: Callable[[], float]) -> float:
    start = clock()
    for _ in range(steps):
        fn()
    return steps / (clock() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="timed updates per algorithm, mode and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median round is reported")
    parser.add_argument("--warmup", type=int, default=3, help="untimed updates per algorithm before timing")
    parser.add_argument("--device", default="cpu:0", help="torch device, e.g. cpu:0 or cuda:0")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: elapsed time; cpu: this process's CPU time, robust to other jobs on a shared machine but only "
        "meaningful with --threads 1 (idle worker threads spin and would be counted)",
    )
    parser.add_argument("--only-integrated", action="store_true", help="skip the TD3PlusBC runs")
    parser.add_argument(
        "--compile-graph",
        action="store_true",
        help="d3rlpy's compile_graph=True for every algorithm (torch.compile + CUDA graphs; CUDA devices only)",
    )
    args = parser.parse_args(argv)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    if args.threads:
        torch.set_num_threads(args.threads)
    d3rlpy.seed(0)
    plain, banded, sets = synthetic_data(0)
    encoder = VectorEncoderFactory(hidden_units=[256, 256])

    def td3bc(n_critics: int) -> QLearningAlgoBase:
        return TD3PlusBCConfig(
            batch_size=BATCH, n_critics=n_critics, actor_encoder_factory=encoder, critic_encoder_factory=encoder,
            compile_graph=args.compile_graph,
        ).create(device=args.device)

    integrated = IntegratedRLConfig(
        batch_size=BATCH, n_critics=24, actor_encoder_factory=encoder, critic_encoder_factory=encoder,
        compile_graph=args.compile_graph,
    ).create(device=args.device)
    integrated_sets = IntegratedRLConfig(
        batch_size=BATCH, n_critics=8, num_critic_sets=3, actor_encoder_factory=encoder, critic_encoder_factory=encoder,
        compile_graph=args.compile_graph,
    ).create(device=args.device)
    runs: list[tuple[str, QLearningAlgoBase, ReplayBufferBase]] = [
        ("IntegratedRL(24)", integrated, banded),
        ("IntegratedRL(3x8)", integrated_sets, sets),
    ]
    if not args.only_integrated:
        runs += [("TD3PlusBC(24)", td3bc(24), plain), ("TD3PlusBC(2)", td3bc(2), plain)]
    # Distinct pre-sampled batches: repeating one batch overfits it, and the resulting tiny (denormal) gradients
    # slow CPU arithmetic down by an order of magnitude.
    batches = {}
    for name, algo, dataset in runs:
        algo.build_with_dataset(dataset)
        batches[name] = iter([dataset.sample_transition_batch(BATCH) for _ in range(args.steps * args.rounds)])
        for _ in range(args.warmup):
            algo.update(dataset.sample_transition_batch(BATCH))

    # Interleave algorithms round by round so a load change on a shared machine hits all of them alike.
    load_before = os.getloadavg()[0]
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in runs}
    for _ in range(args.rounds):
        for name, algo, dataset in runs:
            update_rate = timed_rate(lambda a=algo, b=batches[name]: a.update(next(b)), args.steps, clock)
            fit_rate = timed_rate(
                lambda a=algo, d=dataset: a.update(d.sample_transition_batch(BATCH)), args.steps, clock
            )
            samples[name].append((update_rate, fit_rate))
    results = {name: tuple(float(np.median(col)) for col in zip(*rows, strict=True)) for name, rows in samples.items()}
    reference = results.get("TD3PlusBC(24)")
    irl = results["IntegratedRL(24)"]
    print(
        f"device={args.device} torch_threads={torch.get_num_threads()} batch={BATCH} obs_dim={OBS_DIM} "
        f"action_dim={ACTION_DIM} hidden=256x256 steps={args.steps}x{args.rounds} rounds (median round) "
        f"clock={args.clock} compile_graph={args.compile_graph}"
    )
    # Other processes on the cores distort CPU timings badly (OpenMP threads wait on each other): show the load.
    print(f"cpus={os.cpu_count()} load average before/after: {load_before:.2f}/{os.getloadavg()[0]:.2f}")
    print(f"{'algorithm':<18}{'update/s':>10}{'fit step/s':>12}{'update ratio':>14}{'fit ratio':>11}"
          f"{'vs IRL(24) update':>19}{'fit':>6}")
    for name, (update_rate, fit_rate) in results.items():
        td3 = (f"{update_rate / reference[0]:>14.2f}{fit_rate / reference[1]:>11.2f}" if reference
               else f"{'-':>14}{'-':>11}")
        print(f"{name:<18}{update_rate:>10.1f}{fit_rate:>12.1f}{td3}"
              f"{update_rate / irl[0]:>19.2f}{fit_rate / irl[1]:>6.2f}")
    print("update/fit ratio: relative to TD3PlusBC(24) (acceptance: IntegratedRL(24) >= 1); vs IRL(24): relative to "
          "IntegratedRL(24) in the same process (acceptance: IntegratedRL(3x8) >= ~1, same q*m = 24)")


if __name__ == "__main__":
    main()
