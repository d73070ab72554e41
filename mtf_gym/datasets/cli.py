"""``mtf-collect``: collect one of the paper's exploration datasets and store it as a Minari dataset.

The installed ``mtf-collect`` command is ``agents/collect_cli.py``, which calls :func:`main` with the agent
registry's trainer for ``progressive --agent NAME``; ``python -m mtf_gym.datasets.cli`` runs without the zoo and
collects every recipe except a progressive one with more than one round.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mtf_gym.envs.versions import DEFAULT_SESSION_ENV_ID, SESSION_ENV_IDS, make_env_config
from mtf_gym.exploration import DEFAULT_SIGMA, NOMINAL_LOWER, NOMINAL_UPPER
from mtf_gym.validation import parse_key_value

from .recipes import RECIPES, RecipeConfig, TrainFn, collect_recipe
from .storage import SIDECAR_NAME, save_dataset

__all__ = ["TrainerFactory", "build_parser", "main"]

# Builds progressive collection's train_fn from --agent NAME, the recipe, --train-steps, whether to show progress
# bars and the --agent-set config overrides. Supplied from the agent layer (agents/collect_cli.py): mtf_gym imports
# no agent.
TrainerFactory = Callable[[str, RecipeConfig, int, bool, Mapping[str, Any]], TrainFn]

_EPILOG = """\
examples:
  mtf-collect uniform --sessions 10000 --seed 0 --out datasets
  mtf-collect gaussian --sessions 10000 --seed 0 --out datasets --sigma 0.2
  mtf-collect baseline --sessions 10000 --seed 0 --out datasets --env max_requests=20 --env item_logs=false
  mtf-collect uniform --sessions 10000 --seed 0 --out datasets --env-id MTFSession-v0   # the first env version
  mtf-collect progressive --agent integrated_rl --train-steps 20000 --rounds 5 --sessions 10000 --out datasets
  mtf-collect progressive --agent integrated_rl --agent-set progressive_data=current_round \
      --agent-set progressive_init=warm_start --agent-set n_critics=8 --out datasets

The dataset is written atomically to OUT/<dataset-id>/ and can be read with
  mtf_gym.datasets.load_dataset(ID, OUT)
  MINARI_DATASETS_PATH=OUT python -c "import minari; print(minari.load_dataset(ID))"
"""


def _floats(text: str) -> float | tuple[float, ...]:
    """``0.2`` or a comma-separated per-dimension list ``0.1,0.2,...``."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number or comma-separated numbers, got {text!r}") from exc
    return values[0] if len(values) == 1 else values


def _key_value(option: str, hint: str) -> Callable[[str], tuple[str, Any]]:
    """The argparse type of a repeatable ``option KEY=VALUE`` (values parsed as TOML; lists become tuples, the
    configs' sequence type)."""
    def parse(text: str) -> tuple[str, Any]:
        key, value = parse_key_value(text, option=option, hint=hint, error=argparse.ArgumentTypeError)
        return key, tuple(value) if isinstance(value, list) else value

    return parse


# --env: a field of the env version's config (dotted for nested ones: dynamics.leave_bias); --agent-set: a field of
# the progressive agent's config.
_env_override = _key_value("--env", "a field of the env config, e.g. max_requests=20")
_agent_override = _key_value("--agent-set", "a field of the --agent's config, e.g. progressive_data=current_round")


def _nested(pairs: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """``[("dynamics.leave_bias", -3.0)]`` -> ``{"dynamics": {"leave_bias": -3.0}}``."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"--env {key}: {part} is set both as a value and as a table")
        node[leaf] = value
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mtf-collect",
        description="Collect an MTFSession exploration dataset (paper Sec. 4; MTFSession-v1 unless --env-id says "
                    "otherwise): every transition records its "
                    "exploration centre mu(s) and band, and the dataset is stored as a Minari dataset with a "
                    "datasheet (env config, behaviour policy, parameters, seed, sizes).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("recipe", choices=RECIPES,
                        help="baseline: baseline policy, no noise (test set); gaussian: baseline + N(0, sigma^2); "
                             "uniform: baseline + U(lower, upper) (the paper's bounded exploration); progressive: "
                             "R rounds of bounded-uniform exploration around the latest trained policy (needs "
                             "--agent)")
    parser.add_argument("--sessions", type=int, default=10_000,
                        help="session budget: exact number of complete sessions (episodes) (default 10000)")
    parser.add_argument("--seed", type=int, default=0,
                        help="the one seed users and exploration noise are derived from (default 0)")
    parser.add_argument("--out", required=True,
                        help="datasets directory (Minari's MINARI_DATASETS_PATH); created if missing")
    parser.add_argument("--dataset-id", help="Minari dataset id (default mtf/<recipe>-seed<seed>-v0)")
    parser.add_argument("--sigma", type=_floats, default=DEFAULT_SIGMA,
                        help=f"Gaussian noise std, > 0; one number or one per action dimension, comma-separated "
                             f"(default {DEFAULT_SIGMA})")
    parser.add_argument("--lower", type=_floats, default=NOMINAL_LOWER,
                        help=f"lower band offset relative to the centre, in [-2, 2]: the uniform noise's lower "
                             f"bound and the band recorded with every transition (default {NOMINAL_LOWER})")
    parser.add_argument("--upper", type=_floats, default=NOMINAL_UPPER,
                        help=f"upper band offset, > lower, in [-2, 2] (default {NOMINAL_UPPER})")
    parser.add_argument("--rounds", type=int, default=5,
                        help="progressive rounds R; each collects sessions/R sessions (default 5)")
    parser.add_argument("--agent",
                        help="progressive only: offline agent (mtf_agents.registry name, e.g. integrated_rl) trained "
                             "on the previous rounds to give each round's exploration centre (from scratch on all of "
                             "them unless --agent-set says otherwise)")
    parser.add_argument("--agent-set", type=_agent_override, action="append", default=[], metavar="KEY=VALUE",
                        help="progressive only: a field of --agent's config, repeatable (values parsed as TOML), "
                             "e.g. --agent-set progressive_data=current_round (train each round on the newest round "
                             "only; default cumulative) --agent-set progressive_init=warm_start (start each round "
                             "from the previous round's model; default scratch) --agent-set n_critics=8")
    parser.add_argument("--train-steps", type=int, default=20_000,
                        help="progressive only: gradient steps per round for --agent (default 20000)")
    parser.add_argument("--num-envs", type=int, default=1024,
                        help="sessions simulated in parallel (default 1024); recorded in the datasheet")
    parser.add_argument("--env-id", choices=sorted(SESSION_ENV_IDS), default=DEFAULT_SESSION_ENV_ID,
                        help=f"environment version (default {DEFAULT_SESSION_ENV_ID}); recorded in the datasheet")
    parser.add_argument("--env", type=_env_override, action="append", default=[], metavar="KEY=VALUE",
                        help="override of a field of the --env-id version's config (MTFSessionV1Config for v1, "
                             "MTFSessionConfig for v0), repeatable, dotted for nested fields, e.g. --env "
                             "max_requests=20 --env item_logs=false --env reward.like=2 (values parsed as TOML: "
                             "20, 0.5, true, [1, 2], else a string)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset with the same id")
    parser.add_argument("--no-compact", action="store_true",
                        help="keep Minari's chunked HDF5 layout (faster to write, ~4x larger on disk; by default "
                             "the file is rewritten with contiguous datasets, same content)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def _resolve_trainer(agent: str | None, config: RecipeConfig, train_steps: int, progress: bool,
                     overrides: Mapping[str, Any], make_trainer: TrainerFactory | None) -> TrainFn:
    """``train_fn`` that fits a fresh offline agent ``agent`` on the data of the finished rounds."""
    hint = ("progressive collection needs a trainer: each round explores around a policy trained on the data of "
            "the previous rounds. ")
    if agent is None:
        raise SystemExit(f"mtf-collect: error: {hint}Pass --agent NAME (an offline agent of mtf_agents.registry), or "
                         "call mtf_gym.datasets.collect_recipe(config, train_fn=...) from Python.")
    if make_trainer is None:
        raise SystemExit(f"mtf-collect: error: {hint}--agent needs the agent zoo: run the installed `mtf-collect` "
                         "(or `python -m mtf_agents.collect_cli`), or call mtf_gym.datasets.collect_recipe(config, "
                         "train_fn=...) from Python.")
    try:
        return make_trainer(agent, config, train_steps, progress, overrides)
    except (ValueError, ImportError) as exc:
        raise SystemExit(f"mtf-collect: error: {hint}{exc}") from exc


def main(argv: Sequence[str] | None = None, *, make_trainer: TrainerFactory | None = None) -> int:
    """Run ``mtf-collect``; ``make_trainer`` supplies progressive collection's trainer (see ``TrainerFactory``)."""
    args = build_parser().parse_args(argv)
    try:
        env = make_env_config(args.env_id, _nested(args.env))
        config = RecipeConfig(recipe=args.recipe, sessions=args.sessions, seed=args.seed, sigma=args.sigma,
                              lower=args.lower, upper=args.upper, rounds=args.rounds, num_envs=args.num_envs,
                              env=env)
    except (TypeError, ValueError) as exc:
        raise SystemExit(f"mtf-collect: error: {exc}") from exc
    if args.agent and args.recipe != "progressive":
        raise SystemExit("mtf-collect: error: --agent is only used by the progressive recipe")
    if args.agent_set and not args.agent:
        raise SystemExit("mtf-collect: error: --agent-set sets a field of --agent's config; pass --agent NAME")
    overrides = dict(args.agent_set)
    train_fn = (_resolve_trainer(args.agent, config, args.train_steps, not args.no_progress, overrides,
                                 make_trainer)
                if args.recipe == "progressive" and args.rounds > 1 else None)
    dataset_id = args.dataset_id or config.dataset_id

    data = collect_recipe(config, train_fn=train_fn, progress=not args.no_progress)
    try:
        path = save_dataset(data, args.out, dataset_id, overwrite=args.overwrite, compact=not args.no_compact)
    except FileExistsError as exc:
        raise SystemExit(f"mtf-collect: error: {exc}") from exc
    returns = data.episode_returns()
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    print(f"dataset {dataset_id} written to {path}")
    print(f"  env {data.env_id}, recipe {config.recipe}, seed {config.seed}, "
          f"behaviour {json.dumps(data.metadata['behaviour'])}")
    print(f"  {data.num_episodes} sessions, {data.num_transitions} transitions "
          f"({data.num_transitions / data.num_episodes:.2f} requests/session), "
          f"{int(data.terminals.sum())} ended by the user leaving, {int(data.truncations.sum())} by the request cap")
    print(f"  return/session mean {returns.mean():.3f} (sd {returns.std(ddof=1) if returns.size > 1 else 0:.3f})")
    print(f"  {size / 1e6:.1f} MB on disk ({size / max(data.num_transitions, 1):.0f} bytes/transition), "
          f"item logs {'in ' + SIDECAR_NAME if data.has_item_logs else 'off'}")
    default = make_env_config(args.env_id)
    changed = [f.name for f in dataclasses.fields(env) if getattr(env, f.name) != getattr(default, f.name)]
    if changed:
        print(f"  env overrides: {', '.join(f'{k}={getattr(env, k)!r}' for k in changed)}")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
