"""The headroom ladder of MTFSession-v1: how much room each kind of fusion policy has over the production control.

    python -m mtf_bench.headroom [--eval-users 8192] [--train-users 2048] [--generations 60] [--out results/headroom]

Rungs, all on the same evaluation users (common random numbers: user ``i`` is the user of ``reset(seed=E + i)``,
disjoint from the training users every search uses), each lift a paired bootstrap interval over users:

* ``random``: fusion drawn uniformly at every request;
* ``control``: the environment's ``BaselinePolicy`` (a converged CMA-ES constant, see ``mtf_bench.tune_control``);
* ``best constant``: a fresh CMA-ES constant on other training users (should not beat the control);
* ``per-segment table``: one constant per segment (CMA-ES over 4 x 2T numbers);
* ``oracle per-user``: a constant per user, linear in the user's latent traits (CMA-ES);
* ``oracle state-dependent``: linear in the latent traits and the latent session state (satisfaction, fatigue,
  top boredom, requests so far);
* ``observable-only``: linear in the observation (what a production feature log holds);
* ``greedy`` vs ``long-horizon``: the best constant for the first request's reward vs for the session return.

Every searched policy is ``a = clip(a0 + phi(x) W, -1, 1)`` with standardised features ``phi``, found by
(separable) CMA-ES on the training users' mean session return; the budget is printed and saved. A linear policy is
a lower bound on what its information allows, so the oracles' lifts are conservative.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mtf_gym.evaluation import SessionOutcomes, SessionRunner
from mtf_gym.metrics import paired_lift_ci
from mtf_gym.rng import seed_keys
from mtf_gym.sim.config import MTFSessionV1Config
from mtf_gym.sim.layout import STATE_NAMES, TRAIT_NAMES
from mtf_gym.sim.simulator import UserSimulator

__all__ = ["EVAL_SEED", "FEATURE_SETS", "SECOND_TRAIN_SEED", "TRAIN_SEED", "LinearFeaturePolicy", "cma_search",
           "constant_actor", "ladder_oracle", "main", "menu_oracle_checks", "rollout", "user_keys"]

# Seeds of the user populations: training (searches), a second training set (the independent constant search) and
# evaluation. Disjoint by construction (each holds < 10^6 users).
TRAIN_SEED = 1_000_000
SECOND_TRAIN_SEED = 2_000_000
EVAL_SEED = 0


def user_keys(first_seed: int, count: int) -> np.ndarray:
    """Session keys of the users of ``reset(seed=first_seed + i)``: exactly what the envs draw (CRN with them)."""
    return seed_keys(range(first_seed, first_seed + count))


def rollout(runner: SessionRunner, seeds: int | np.ndarray,
            act: Callable[[UserSimulator, np.ndarray], np.ndarray]) -> SessionOutcomes:
    """Every sub-env of ``runner`` plays one session to its end (users ``seeds + i``, or one seed per session),
    through the project's one rollout loop; ``act(sim, obs)`` gives the ``(N, 2T)`` actions (it may read the
    simulator's latent state: that is what makes an oracle)."""
    sim = runner.env.sim
    return runner.run(lambda obs: act(sim, obs), seeds if isinstance(seeds, int) else [int(x) for x in seeds])


def constant_actor(action: np.ndarray) -> Callable[[UserSimulator, np.ndarray], np.ndarray]:
    """The same action for every row and request."""
    action = np.clip(np.asarray(action, np.float32), -1.0, 1.0)
    return lambda sim, obs: np.broadcast_to(action, (sim.num_rows, action.shape[0])).copy()


# ----------------------------------------------------------------------------------------------------- features
def _trait_matrix(sim: UserSimulator) -> np.ndarray:
    t = sim.users.traits
    cols = [TRAIT_NAMES.index(n) for n in ("log_activity", "log_patience", "engagement_offset", "log_account_age")]
    logs = [TRAIT_NAMES.index(n) for n in ("clickbait_aversion", "boredom_sensitivity", "fatigue_rate")]
    drive = t[:, TRAIT_NAMES.index("watch_drive")]
    # The ranker's per-task error scale for this user (how far to trust each prediction).
    error_std = np.sqrt(np.mean(sim.users.ranker_error ** 2, axis=1))
    return np.concatenate([t[:, cols], np.log(t[:, logs]), np.log(drive / (1 - drive))[:, None], error_std], axis=1)


def _session_state_matrix(sim: UserSimulator) -> np.ndarray:
    """The latent session state: satisfaction, fatigue, top boredom, and the session's progress."""
    s = sim.users.state
    progress = sim.users.request_index[:, None] / sim.config.max_requests
    return np.concatenate([s[:, [STATE_NAMES.index("satisfaction"), STATE_NAMES.index("fatigue"),
                                 STATE_NAMES.index("top_boredom")]], progress], axis=1)


def _state_matrix(sim: UserSimulator) -> np.ndarray:
    return np.concatenate([_trait_matrix(sim), _session_state_matrix(sim)], axis=1)


def _segment_matrix(sim: UserSimulator) -> np.ndarray:
    return np.eye(4, dtype=np.float64)[sim.users.segment]


FEATURE_SETS: dict[str, Callable[[UserSimulator, np.ndarray], np.ndarray]] = {
    "constant": lambda sim, obs: np.zeros((sim.num_rows, 0)),
    "segment": lambda sim, obs: _segment_matrix(sim),
    "traits": lambda sim, obs: _trait_matrix(sim),
    "traits+state": lambda sim, obs: _state_matrix(sim),
    "state": lambda sim, obs: _session_state_matrix(sim),
    "observation": lambda sim, obs: np.asarray(obs, np.float64),
}


@dataclass(frozen=True)
class LinearFeaturePolicy:
    """``a = clip(base + standardise(phi) W, -1, 1)`` for the rows of a simulator; ``phi`` a :data:`FEATURE_SETS`
    entry. With ``"segment"`` features the standardisation is off (the weights are a per-segment table)."""

    features: str
    base: np.ndarray  # (2T,)
    weights: np.ndarray  # (F, 2T)
    mean: np.ndarray  # (F,)
    std: np.ndarray  # (F,)

    def __call__(self, sim: UserSimulator, obs: np.ndarray) -> np.ndarray:
        phi = (FEATURE_SETS[self.features](sim, obs) - self.mean) / self.std
        return np.clip(self.base + phi @ self.weights, -1.0, 1.0).astype(np.float32)


def feature_scaling(config: MTFSessionV1Config, features: str, sample: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Population mean and std of a feature set, from a rollout of the training population under random fusion
    (so state features are seen across their range)."""
    runner = SessionRunner(sample, config)
    rows = []
    rng = np.random.default_rng(0)

    def act(s: UserSimulator, obs: np.ndarray) -> np.ndarray:
        rows.append(FEATURE_SETS[features](s, obs))
        return rng.uniform(-1, 1, (s.num_rows, config.action_dim)).astype(np.float32)

    rollout(runner, TRAIN_SEED + 500_000, act)
    x = np.concatenate(rows)
    if features == "segment":
        return np.zeros(x.shape[1]), np.ones(x.shape[1])
    return x.mean(axis=0), np.maximum(x.std(axis=0), 1e-6)


def cma_search(config: MTFSessionV1Config, features: str, *, train_users: int, generations: int, seed: int,
               base: np.ndarray, objective: str = "return", first_seed: int = TRAIN_SEED, sigma0: float = 0.3,
               popsize: int | None = None, log: Callable[[str], None] = print) -> LinearFeaturePolicy:
    """CMA-ES (``cma``; separable above 60 parameters) over ``(a0, W)`` maximising the training users' mean
    session return (``objective="first"``: the first request's reward, the greedy policy; ``"requests"``: requests
    per session, the exploit search). The whole population
    runs as one batched simulator per generation, every candidate on the same users (common random numbers)."""
    import cma

    dim = config.action_dim
    # Scaling sample: enough users for stable moments, never more than the search itself runs.
    sample = min(4096, max(256, 8 * train_users))
    mean, std = feature_scaling(config, features, sample) if features != "constant" else (np.zeros(0), np.ones(0))
    num_features = mean.shape[0]
    num_params = dim + num_features * dim
    x0 = np.concatenate([np.asarray(base, np.float64), np.zeros(num_features * dim)])
    options = {"seed": seed, "verbose": -9, "CMA_diagonal": num_params > 60, "bounds": None}
    if popsize:
        options["popsize"] = popsize
    es = cma.CMAEvolutionStrategy(x0, sigma0, options)
    runner = SessionRunner(es.popsize * train_users, dataclasses.replace(config, item_logs=False))
    all_seeds = np.tile(np.arange(first_seed, first_seed + train_users), es.popsize)  # every candidate, same users
    start = time.perf_counter()
    for gen in range(generations):
        candidates = np.asarray(es.ask())
        bases = candidates[:, :dim]
        weights = candidates[:, dim:].reshape(len(candidates), num_features, dim)
        member = np.repeat(np.arange(len(candidates)), train_users)
        row_weights = weights[member]

        def act(s: UserSimulator, obs: np.ndarray, bases=bases, row_weights=row_weights, member=member) -> np.ndarray:
            a = bases[member]
            if num_features:
                phi = (FEATURE_SETS[features](s, obs) - mean) / std
                a = a + np.einsum("nf,nfd->nd", phi, row_weights)
            return np.clip(a, -1.0, 1.0).astype(np.float32)

        result = rollout(runner, all_seeds, act)
        values = {"return": result.returns, "first": result.first_rewards,
                  "requests": result.requests}[objective].reshape(len(candidates), -1)
        fitness = values.mean(axis=1)
        es.tell(list(candidates), list(-fitness))
        if gen % 10 == 0 or gen == generations - 1:
            log(f"  [{features}/{objective}] gen {gen + 1}/{generations}: best {fitness.max():.3f}, "
                f"mean {fitness.mean():.3f}, ({time.perf_counter() - start:.0f} s)")
    # The distribution mean is the less noisy estimate of the optimum than the best sample.
    final = np.asarray(es.result.xfavorite)
    return LinearFeaturePolicy(features, final[:dim].copy(), final[dim:].reshape(num_features, dim).copy(), mean,
                               std)


# ----------------------------------------------------------------------------------------------------- the ladder
@dataclass(frozen=True)
class Rung:
    name: str
    description: str
    lift: dict[str, float]  # estimate, low, high vs the control
    mean_return: float
    mean_requests: float
    policy: dict | None = None  # a searched policy's features, base and weights (to rerun it)


def _lift(treatment: np.ndarray, control: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
    return paired_lift_ci(treatment, control, rng=rng).as_dict()


def ladder(config: MTFSessionV1Config, *, eval_users: int, train_users: int, generations: int,
           log: Callable[[str], None] = print) -> tuple[list[Rung], dict[str, float]]:
    """Every rung on the same evaluation users; returns the rungs and the greedy vs long-horizon lift."""
    from mtf_gym import BaselinePolicy

    control_action = BaselinePolicy(config).action.astype(np.float64)
    searches = {
        "best constant": ("constant", "a fresh CMA-ES constant on other training users", SECOND_TRAIN_SEED),
        "per-segment table": ("segment", "one constant per segment (4 x 2T)", TRAIN_SEED),
        "oracle per-user": ("traits", "linear in the user's latent traits and per-task ranker error", TRAIN_SEED),
        "oracle state-dependent": ("traits+state", "linear in latent traits + latent session state", TRAIN_SEED),
        "observable-only": ("observation", "linear in the observation", TRAIN_SEED),
    }
    policies: dict[str, tuple[str, Callable]] = {}
    for seed, (name, (features, description, first_seed)) in enumerate(searches.items()):
        log(f"searching: {name} ({description})")
        start = np.zeros(config.action_dim) if features == "constant" else control_action
        policies[name] = (description, cma_search(
            config, features, train_users=train_users, generations=generations, seed=100 + seed, base=start,
            first_seed=first_seed, sigma0=0.5 if features == "constant" else 0.15, log=log))
    log("searching: greedy constant (first request's reward)")
    greedy = cma_search(config, "constant", train_users=train_users, generations=generations, seed=99,
                        base=np.zeros(config.action_dim), objective="first", sigma0=0.5, log=log)
    runner = SessionRunner(eval_users, dataclasses.replace(config, item_logs=False))
    control = rollout(runner, EVAL_SEED, constant_actor(control_action))
    rng = np.random.default_rng(0)
    random_rng = np.random.default_rng(1)
    results = {"random": ("uniform fusion at every request",
                          rollout(runner, EVAL_SEED, lambda s, o: random_rng.uniform(
                              -1, 1, (s.num_rows, config.action_dim)).astype(np.float32))),
               "control": ("BaselinePolicy: the tuned production constant", control)}
    for name, (description, policy) in policies.items():
        results[name] = (description, rollout(runner, EVAL_SEED, policy))
    def saved(name: str) -> dict | None:
        if name not in policies:
            return None
        policy = policies[name][1]
        return {"features": policy.features, "base": policy.base.tolist(), "weights": policy.weights.tolist(),
                "mean": policy.mean.tolist(), "std": policy.std.tolist()}

    rungs = [Rung(name, description, _lift(r.returns, control.returns, rng), float(r.returns.mean()),
                  float(r.requests.mean()), saved(name)) for name, (description, r) in results.items()]
    greedy_run = rollout(runner, EVAL_SEED, greedy)
    long_vs_greedy = _lift(control.returns, greedy_run.returns, rng)
    return rungs, long_vs_greedy




def ladder_oracle(record: dict) -> tuple[str, LinearFeaturePolicy]:
    """The best oracle rung of a saved ladder record (the highest lift among the rungs named ``oracle ...`` that
    saved their policy) and that policy, to rerun on other users (``rollout``)."""
    oracles = [r for r in record.get("rungs", []) if r["name"].startswith("oracle") and r.get("policy")]
    if not oracles:
        raise ValueError("the headroom ladder record has no oracle rung with a saved policy")
    best = max(oracles, key=lambda r: r["lift"]["estimate"])
    p = best["policy"]
    base, mean, std = (np.asarray(p[k], np.float64) for k in ("base", "mean", "std"))
    # JSON keeps no shape for an empty matrix (no features: ``[]``), hence the reshape.
    weights = np.asarray(p["weights"], np.float64).reshape(len(mean), len(base))
    return best["name"], LinearFeaturePolicy(p["features"], base, weights, mean, std)


def menu_oracle_checks(record: dict) -> dict[str, bool]:
    """The targets judged by the non-linear oracles of ``mtf_bench.per_user_oracle`` (its JSON record): the
    per-user menu choice (last point of its curve), its in-session correction by the latent state over the choice
    alone, and the observable menu policy (with its correction by the observation, when measured). Their users are
    the ladder's first evaluation users (fewer of them: see the record's settings)."""
    users = record["settings"]["users"]
    per_user = record["curve"][-1]["lift"]["estimate"]
    checks = {f"oracle per-user >= +6% over control (menu oracle, {users} users)": per_user >= 0.06}
    if "state_correction" in record:
        over = record["state_correction"]["over_choice"]["estimate"]
        checks[f"oracle state-dependent >= +2% over oracle per-user (menu oracle + state correction, {users} "
               "users)"] = over >= 0.02
    if "two_phase" in record:
        checks[f"oracle state-dependent >= +2% over oracle per-user (two-phase menu oracle, {users} users)"] = (
            record["two_phase"]["over_per_user"]["estimate"] >= 0.02)
    observable = [record[k]["lift"]["estimate"] for k in ("observable", "observable_correction") if k in record]
    if observable:
        checks[f"observable-only >= +3% over control (menu policy, {users} users)"] = max(observable) >= 0.03
    return checks


def _plot(rungs: list[Rung], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Random fusion is an order of magnitude below the rest: it is named in the title, not drawn.
    random = next((r for r in rungs if r.name == "random"), None)
    rungs = [r for r in rungs if r.name != "random"]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    est = np.array([r.lift["estimate"] for r in rungs]) * 100
    low = np.array([r.lift["low"] for r in rungs]) * 100
    high = np.array([r.lift["high"] for r in rungs]) * 100
    colours = ["#444444", "#5b8def", "#5b8def", "#e07b39", "#d1495b", "#2e9e6b"][:len(rungs)]
    y = np.arange(len(rungs))[::-1]
    ax.barh(y, est, xerr=[est - low, high - est], color=colours, capsize=3)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, [r.name for r in rungs])
    ax.set_xlabel("session return vs the control (%, 95% paired bootstrap CI)")
    title = "MTFSession-v1 headroom ladder (same evaluation users)"
    if random is not None:
        title += f"\nrandom fusion: {100 * random.lift['estimate']:+.1f}% (not drawn)"
    ax.set_title(title)
    span = max(float(np.max(np.abs(np.concatenate([low, high])))), 1.0)
    ax.set_xlim(-1.3 * span, 1.3 * span)
    for yi, lo, hi, e in zip(y, low, high, est):
        ax.text(hi + 0.05 * span if e >= 0 else lo - 0.05 * span, yi, f"{e:+.2f}%", va="center",
                ha="left" if e >= 0 else "right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-users", type=int, default=8192, help="evaluation users per arm (default 8192)")
    parser.add_argument("--train-users", type=int, default=2048, help="training users per search (default 2048)")
    parser.add_argument("--generations", type=int, default=60, help="CMA-ES generations per search (default 60)")
    parser.add_argument("--out", type=Path, default=Path("results/headroom"), help="output folder")
    parser.add_argument("--replot", action="store_true", help="redraw headroom.png from the saved headroom.json")
    parser.add_argument("--menu-oracle", type=Path, default=None,
                        help="per_user_oracle.json of `python -m mtf_bench.per_user_oracle`: its non-linear oracles "
                             "(per-user menu choice, its state correction, the observable menu policy) join the "
                             "target checks beside this ladder's linear rungs")
    args = parser.parse_args(argv)
    if args.replot:
        saved = json.loads((args.out / "headroom.json").read_text())
        _plot([Rung(**r) for r in saved["rungs"]], args.out / "headroom.png")
        print(f"redrew {args.out / 'headroom.png'}")
        return
    for name in ("eval_users", "train_users", "generations"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    menu = None
    if args.menu_oracle is not None:
        try:
            menu = json.loads(args.menu_oracle.read_text())
        except (OSError, ValueError) as exc:
            parser.error(f"--menu-oracle: cannot read {args.menu_oracle}: {exc}")
    config = MTFSessionV1Config()
    start = time.perf_counter()
    rungs, long_vs_greedy = ladder(config, eval_users=args.eval_users, train_users=args.train_users,
                                   generations=args.generations, log=lambda s: print(s, flush=True))
    by_name = {r.name: r for r in rungs}
    print(f"\nHeadroom ladder, MTFSession-v1, {args.eval_users} evaluation users (seeds {EVAL_SEED}..), searches: "
          f"CMA-ES, {args.generations} generations x {args.train_users} training users each\n")
    print("| rung | policy | mean return | requests | lift vs control [95% CI] |")
    print("|---|---|---|---|---|")
    for r in rungs:
        print(f"| {r.name} | {r.description} | {r.mean_return:.2f} | {r.mean_requests:.2f} | "
              f"{r.lift['estimate']:+.2%} [{r.lift['low']:+.2%}, {r.lift['high']:+.2%}] |")
    per_user, state = by_name["oracle per-user"], by_name["oracle state-dependent"]
    state_over_user = (1 + state.lift["estimate"]) / (1 + per_user.lift["estimate"]) - 1
    print(f"\nlong-horizon (control) vs greedy (best constant for the first request): "
          f"{long_vs_greedy['estimate']:+.2%} [{long_vs_greedy['low']:+.2%}, {long_vs_greedy['high']:+.2%}]")
    print(f"oracle state-dependent over oracle per-user (ratio of lifts): {state_over_user:+.2%}")
    checks = {
        "best constant <= control + 1% (upper CI)": by_name["best constant"].lift["high"] <= 0.01,
        "oracle per-user >= +6% over control": per_user.lift["estimate"] >= 0.06,
        "oracle state-dependent >= +2% over oracle per-user": state_over_user >= 0.02,
        "observable-only >= +3% over control": by_name["observable-only"].lift["estimate"] >= 0.03,
        "long-horizon >= +5% over greedy": long_vs_greedy["estimate"] >= 0.05,
    }
    if menu is not None:
        checks.update(menu_oracle_checks(menu))
    print("\n| target | holds |\n|---|---|")
    for name, ok in checks.items():
        print(f"| {name} | {'yes' if ok else 'NO'} |")
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {"rungs": [dataclasses.asdict(r) for r in rungs], "long_vs_greedy": long_vs_greedy,
               "state_over_per_user": state_over_user, "checks": checks, "eval_users": args.eval_users,
               "train_users": args.train_users, "generations": args.generations,
               "wall_s": time.perf_counter() - start}
    tmp = args.out / "headroom.json.tmp"
    tmp.write_text(json.dumps(payload, indent=2))
    tmp.replace(args.out / "headroom.json")
    _plot(rungs, args.out / "headroom.png")
    print(f"\nwrote {args.out / 'headroom.json'} and {args.out / 'headroom.png'} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
