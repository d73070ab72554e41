"""Minari storage of :class:`TransitionData`: atomic writes, verified reads.

Layout of a dataset ``<root>/<namespace>/<name>-v<k>/data/`` (a regular Minari HDF5 dataset; ``minari.load_dataset``
reads it with ``MINARI_DATASETS_PATH=<root>``):

* ``main_data.hdf5`` (written by Minari's ``create_dataset_from_buffers``, then by default rewritten with
  contiguous datasets, same content): per episode ``observations`` ``(T+1, obs_dim)``, ``actions``, ``rewards``,
  ``terminations``, ``truncations`` and ``infos/centres``, ``infos/lower``, ``infos/upper`` ``(T, A)``, plus
  ``infos/reward_components`` ``(T, C)`` when the data has per-group rewards (``C > 1``; datasets without it load
  with the single column ``rewards``);
* ``metadata.json`` (Minari) with our datasheet: ``mtf_metadata`` (the collection's ``TransitionData.metadata``)
  and ``mtf_storage`` (format version, sizes, content SHA-256, sidecar checksum);
* ``mtf_item_logs.npz``: the item-level logs as flat arrays, beside Minari's file (``docs/datasets.md`` says why).

Writes go to a hidden temporary directory in the destination's parent and are moved into place with
``os.replace``; any exception (or ``KeyboardInterrupt``) removes the temporary directory, so a dataset directory
either is complete or does not exist. Reads check the datasheet against the HDF5 content, the sidecar's checksum and
the content hash of every array, and raise :class:`DatasetError` naming the file and the problem.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mtf_gym.atomic import replace_dir
from mtf_gym.envs.versions import make_env_config

from .transitions import TransitionData

__all__ = ["SIDECAR_NAME", "DatasetError", "dataset_path", "from_minari", "load_dataset", "save_dataset"]

SIDECAR_NAME = "mtf_item_logs.npz"
STORAGE_VERSION = 1
_ITEM_FIELDS = ("item_ids", "predictions", "responses", "item_rewards")
_BAND_FIELDS = ("centres", "lower", "upper")


class DatasetError(ValueError):
    """A dataset on disk is missing, corrupt or inconsistent with its datasheet."""


def _minari() -> Any:
    try:
        import minari
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError('dataset storage needs Minari with HDF5: pip install "mtf-gym[datasets]"') from exc
    return minari


def _parse_id(dataset_id: str) -> str | None:
    """The namespace of ``dataset_id``; ``ValueError`` unless it is Minari's ``(namespace/)name-v<k>``."""
    from minari.dataset.minari_dataset import DATASET_ID_RE

    match = DATASET_ID_RE.fullmatch(dataset_id) if isinstance(dataset_id, str) else None
    if match is None or match.group("version") is None:
        raise ValueError(f"dataset_id must look like 'namespace/name-v0' (Minari's id format), got {dataset_id!r}")
    return match.group("namespace") or None


def dataset_path(root: str | os.PathLike[str], dataset_id: str) -> Path:
    """Directory of ``dataset_id`` under ``root`` (``minari``'s layout: ``<root>/<dataset_id>``)."""
    _parse_id(dataset_id)
    return Path(root) / dataset_id


@contextlib.contextmanager
def _minari_root(root: Path) -> Iterator[None]:
    """Point Minari at ``root`` for the duration (its dataset-creation API reads only this variable)."""
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = old


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _env_spec(metadata: dict[str, Any]) -> tuple[Any, bool]:
    """The registered spec of the datasheet's env version with every scalar config override as kwargs, and
    whether that is the whole config.

    ``EnvSpec`` kwargs must be JSON; nested configs and tuples do not survive JSON into the config, so those
    overrides live only in the datasheet (``mtf_metadata["env_config"]``).
    """
    import gymnasium as gym

    from .transitions import LEGACY_ENV_ID

    env_id = str(metadata.get("env_id", LEGACY_ENV_ID))
    default = json.loads(json.dumps(make_env_config(env_id).to_dict()))
    kwargs: dict[str, Any] = {}
    complete = True
    for key, value in metadata.get("env_config", default).items():
        if value == default.get(key):
            continue
        if isinstance(value, (bool, int, float, str)):
            kwargs[key] = value
        else:
            complete = False
    return dataclasses.replace(gym.spec(env_id), kwargs=kwargs), complete


def save_dataset(
    data: TransitionData,
    root: str | os.PathLike[str],
    dataset_id: str,
    *,
    overwrite: bool = False,
    description: str | None = None,
    compact: bool = True,
) -> Path:
    """Write ``data`` as the Minari dataset ``dataset_id`` (e.g. ``"mtf/uniform-seed0-v0"``) under ``root``.

    Args:
        data: the transitions (every episode complete; ``data.metadata`` becomes the datasheet).
        root: datasets directory (Minari's ``MINARI_DATASETS_PATH``), created if missing.
        dataset_id: ``namespace/name-v<k>``.
        overwrite: replace an existing dataset of that id (otherwise ``FileExistsError``).
        description: Minari ``description`` (default: derived from the behaviour policy).
        compact: rewrite Minari's HDF5 with contiguous datasets and compact groups (~5x smaller for short
            sessions; same content, still read by ``minari.load_dataset``); ``False`` keeps Minari's file as is.

    Returns:
        The dataset directory ``<root>/<dataset_id>``.
    """
    if not isinstance(data, TransitionData):
        raise TypeError(f"data must be a TransitionData, got {type(data).__name__}")
    if data.num_episodes == 0:
        raise ValueError("data must contain at least one episode")
    minari = _minari()
    from minari.data_collector.episode_buffer import EpisodeBuffer

    from mtf_gym.envs.session import action_space, observation_space

    namespace = _parse_id(dataset_id)
    # Absolute: Minari joins MINARI_DATASETS_PATH with paths it derived from it, so a relative root ("ds") would be
    # joined twice (ds/mtf/.mtf-tmp-.../data/ds/mtf/...).
    root = Path(root).absolute()
    final = root / dataset_id
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final} already exists; pass overwrite=True (CLI: --overwrite) to replace it")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".mtf-tmp-", dir=final.parent))  # same filesystem: os.replace is atomic
    try:
        config = data.env_config()
        spec, spec_complete = _env_spec(data.metadata)
        buffers = []
        for e, rows in enumerate(data.episode_slices()):
            last = rows.stop - 1
            buffers.append(EpisodeBuffer(
                id=e,
                observations=np.concatenate([data.observations[rows], data.next_observations[last : last + 1]]),
                actions=data.actions[rows],
                rewards=data.rewards[rows],
                terminations=data.terminals[rows],
                truncations=data.truncations[rows],
                infos={name: getattr(data, name)[rows] for name in _stored_infos(data)},
            ))
        behaviour = data.metadata.get("behaviour", {})
        with _minari_root(tmp), warnings.catch_warnings():
            # Minari nags about a code permalink; a local research dataset has none.
            warnings.filterwarnings("ignore", message=".*code_permalink.*")
            dataset = minari.create_dataset_from_buffers(
                dataset_id=dataset_id,
                buffer=buffers,
                env=spec,
                eval_env=spec,
                algorithm_name=f"mtf-gym {data.metadata.get('recipe', behaviour.get('kind', 'custom'))} exploration",
                author="mtf-gym",
                author_email="n/a",
                observation_space=observation_space(config),
                action_space=action_space(config),
                description=description or _describe(data),
            )
            data_dir = Path(dataset.storage.data_path)
            if compact:
                _compact_hdf5(data_dir / "main_data.hdf5")
            sidecar: dict[str, Any] | None = None
            if data.has_item_logs:
                path = data_dir / SIDECAR_NAME
                with open(path, "wb") as f:
                    np.savez(f, **{name: getattr(data, name) for name in _ITEM_FIELDS})
                sidecar = {"file": SIDECAR_NAME, "sha256": _sha256_file(path), "bytes": path.stat().st_size,
                           "arrays": {name: list(getattr(data, name).shape) for name in _ITEM_FIELDS}}
            dataset.storage.update_metadata({
                "mtf_metadata": data.metadata,
                "mtf_storage": {
                    "storage_version": STORAGE_VERSION,
                    "num_episodes": data.num_episodes,
                    "num_transitions": data.num_transitions,
                    "obs_dim": data.obs_dim,
                    "action_dim": data.action_dim,
                    "item_logs": data.has_item_logs,
                    "num_tasks": int(data.predictions.shape[2]),
                    "num_response_fields": int(data.responses.shape[2]),
                    "content_sha256": data.content_hash(),
                    "sidecar": sidecar,
                    "env_spec_has_full_config": spec_complete,
                    "infos_alignment": "infos[name][t] belongs to observations[t] and actions[t] (T rows per episode)",
                    "hdf5_layout": "compact (rewritten by mtf-gym)" if compact else "chunked (as Minari wrote it)",
                },
                "dataset_size": dataset.storage.get_size(),
            })
        if namespace is not None:
            _ensure_namespace(root, namespace)
        replace_dir(tmp / dataset_id, final)  # the previous dataset stays until the new one is in place
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _stored_infos(data: TransitionData) -> tuple[str, ...]:
    # A single reward component is the reward itself: not stored twice.
    return _BAND_FIELDS + (("reward_components",) if data.num_reward_components > 1 else ())


def _compact_hdf5(path: Path) -> None:
    """Rewrite Minari's HDF5 file compactly: same groups, names, dtypes, shapes, values and attributes.

    Minari creates every per-episode array as a resizable chunked dataset (each with a chunk B-tree) inside
    old-style groups (each with a symbol table); for short sessions these few KB per object are ~5x the data.
    The rewrite uses contiguous datasets and compact groups, which Minari reads identically (contiguous datasets
    only cannot be resized, which Minari does only when appending steps to an existing episode id).
    """
    import h5py
    from h5py import h5p

    # Tracking link creation order makes HDF5 keep a group's links in its header (a "compact" group) instead of
    # a separate symbol table.
    gcpl = h5p.create(h5p.GROUP_CREATE)
    gcpl.set_link_creation_order(h5p.CRT_ORDER_TRACKED)
    tmp = path.with_name(path.name + ".compact")
    with h5py.File(path, "r") as src, h5py.File(tmp, "w") as dst:
        _copy_contiguous(h5py.h5g.open(src.id, b"/"), h5py.h5g.open(dst.id, b"/"), gcpl)
    os.replace(tmp, path)


def _copy_contiguous(src: Any, dst: Any, gcpl: Any) -> None:
    """Copy group ``src`` into ``dst`` (low-level ids: h5py's high-level objects cost ~2x more per tiny dataset)."""
    from h5py import h5a, h5d, h5g, h5s

    _copy_attrs(src, dst)
    for i in range(src.get_num_objs()):
        name = src.get_objname_by_idx(i)
        if src.get_objtype_by_idx(i) == h5g.GROUP:
            _copy_contiguous(h5g.open(src, name), h5g.create(dst, name, gcpl=gcpl), gcpl)
            continue
        dataset = h5d.open(src, name)
        shape = dataset.get_space().shape
        data = np.empty(shape, dtype=dataset.dtype)
        dataset.read(h5s.ALL, h5s.ALL, data)
        space = h5s.create_simple(shape) if shape else h5s.create(h5s.SCALAR)  # fixed size: contiguous layout
        new = h5d.create(dst, name, dataset.get_type(), space)
        new.write(h5s.ALL, h5s.ALL, data)
        if h5a.get_num_attrs(dataset):
            _copy_attrs(dataset, new)


def _copy_attrs(src_id: Any, dst_id: Any) -> None:
    from h5py import h5a

    for i in range(h5a.get_num_attrs(src_id)):
        attr = h5a.open(src_id, index=i)
        value = np.empty(attr.shape, dtype=attr.dtype)
        attr.read(value)
        h5a.create(dst_id, attr.name, attr.get_type(), attr.get_space()).write(value)


def _ensure_namespace(root: Path, namespace: str) -> None:
    """Write Minari's namespace marker files (``minari.list_local_namespaces`` looks for them)."""
    from minari.namespace import NAMESPACE_METADATA_FILENAME, namespace_hierarchy

    for name in [*namespace_hierarchy(namespace), namespace]:
        marker = root / name / NAMESPACE_METADATA_FILENAME
        if not marker.exists():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text("{}")


def _describe(data: TransitionData) -> str:
    meta = data.metadata
    return (f"{data.env_id} exploration dataset: {data.num_episodes} sessions, {data.num_transitions} transitions, "
            f"behaviour {json.dumps(meta.get('behaviour', {}), sort_keys=True)}, seed {meta.get('seed')}. "
            "Every transition records its exploration centre mu_bp(s) and band offsets (infos/centres, lower, "
            "upper); item logs are in mtf_item_logs.npz. See mtf-gym docs/datasets.md.")


def load_dataset(dataset_id: str, root: str | os.PathLike[str], *, verify: bool = True) -> TransitionData:
    """Read the dataset ``dataset_id`` under ``root`` back into :class:`TransitionData`.

    Raises:
        DatasetError: missing dataset, unreadable or truncated HDF5, datasheet/content mismatch (e.g. observation
            dimension), missing sidecar or checksum mismatch. The message names the file.
    """
    data_dir = dataset_path(root, dataset_id) / "data"
    meta_file = data_dir / "metadata.json"
    if not meta_file.is_file():
        raise DatasetError(f"{meta_file}: no dataset {dataset_id!r} under {root} (metadata.json missing)")
    try:
        raw = json.loads(meta_file.read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{meta_file}: unreadable metadata ({exc})") from exc
    if not isinstance(raw, dict) or "mtf_storage" not in raw:
        raise DatasetError(f"{meta_file}: not an mtf-gym dataset (no 'mtf_storage' datasheet)")
    minari = _minari()
    try:
        dataset = minari.MinariDataset(data_dir)
    except Exception as exc:  # Minari raises ValueError/AssertionError/OSError for a broken directory
        raise DatasetError(f"{data_dir}: Minari cannot open the dataset ({type(exc).__name__}: {exc})") from exc
    return from_minari(dataset, verify=verify)


def from_minari(dataset: Any, *, verify: bool = True) -> TransitionData:
    """Convert a ``minari.MinariDataset`` written by :func:`save_dataset` into :class:`TransitionData`.

    Observations are aligned per episode: ``observations = obs[:-1]``, ``next_observations = obs[1:]``.
    ``verify`` re-hashes every array against the datasheet's ``content_sha256``.
    """
    data_dir = Path(dataset.storage.data_path)
    meta_file = data_dir / "metadata.json"
    h5_file = data_dir / "main_data.hdf5"
    meta = dataset.storage.metadata
    storage = meta.get("mtf_storage")
    if not isinstance(storage, dict):
        raise DatasetError(f"{meta_file}: not an mtf-gym dataset (no 'mtf_storage' datasheet)")
    if storage.get("storage_version") != STORAGE_VERSION:
        raise DatasetError(f"{meta_file}: storage_version {storage.get('storage_version')!r} is not supported "
                           f"(this mtf-gym reads {STORAGE_VERSION})")
    obs_dim, a_dim = int(storage["obs_dim"]), int(storage["action_dim"])
    space_obs = tuple(dataset.observation_space.shape)
    if space_obs != (obs_dim,):
        raise DatasetError(f"{meta_file}: observation space {space_obs} does not match the datasheet obs_dim "
                           f"{obs_dim}")
    if dataset.total_episodes != storage["num_episodes"] or dataset.total_steps != storage["num_transitions"]:
        raise DatasetError(f"{meta_file}: Minari counts {dataset.total_episodes} episodes / {dataset.total_steps} "
                           f"steps, the datasheet {storage['num_episodes']} / {storage['num_transitions']}")

    columns: dict[str, list[np.ndarray]] = {name: [] for name in (
        "observations", "next_observations", "actions", "rewards", "terminals", "truncations", *_BAND_FIELDS,
        "reward_components")}
    lengths = []
    try:
        for episode in dataset.iterate_episodes():
            obs = np.asarray(episode.observations)
            t = len(episode.rewards)
            if obs.shape != (t + 1, obs_dim):
                raise DatasetError(f"{h5_file}: episode {episode.id} observations have shape {obs.shape}, expected "
                                   f"({t + 1}, {obs_dim}) from the datasheet (obs_dim {obs_dim})")
            if np.shape(episode.actions) != (t, a_dim):
                raise DatasetError(f"{h5_file}: episode {episode.id} actions have shape {np.shape(episode.actions)}, "
                                   f"expected ({t}, {a_dim})")
            infos = episode.infos or {}
            for name in _BAND_FIELDS:
                if name not in infos or np.shape(infos[name]) != (t, a_dim):
                    raise DatasetError(f"{h5_file}: episode {episode.id} infos/{name} missing or not of shape "
                                       f"({t}, {a_dim})")
                columns[name].append(infos[name])
            if "reward_components" in infos:
                components = np.asarray(infos["reward_components"])
                if components.ndim != 2 or components.shape[0] != t:
                    raise DatasetError(f"{h5_file}: episode {episode.id} infos/reward_components has shape "
                                       f"{components.shape}, expected ({t}, C)")
                columns["reward_components"].append(components)
            columns["observations"].append(obs[:-1])
            columns["next_observations"].append(obs[1:])
            columns["actions"].append(episode.actions)
            columns["rewards"].append(episode.rewards)
            columns["terminals"].append(episode.terminations)
            columns["truncations"].append(episode.truncations)
            lengths.append(t)
    except DatasetError:
        raise
    except Exception as exc:  # h5py raises OSError/KeyError on truncated or damaged files
        raise DatasetError(f"{h5_file}: cannot read the HDF5 data ({type(exc).__name__}: {exc})") from exc

    if columns["reward_components"] and len(columns["reward_components"]) != len(lengths):
        raise DatasetError(f"{h5_file}: infos/reward_components present in some episodes only")
    dtypes = {"terminals": np.bool_, "truncations": np.bool_}
    arrays = {name: np.concatenate(parts).astype(dtypes.get(name, np.float32), copy=False)
              for name, parts in columns.items() if parts}
    counts = np.asarray(lengths, dtype=np.int64)
    arrays["episode_ids"] = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    arrays["step_ids"] = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(starts, counts)
    arrays.update(_read_sidecar(data_dir, storage, int(counts.sum())))
    try:
        data = TransitionData(**arrays, metadata=meta.get("mtf_metadata", {}))
    except ValueError as exc:
        raise DatasetError(f"{h5_file}: the stored transitions are inconsistent ({exc})") from exc
    if verify and data.content_hash() != storage["content_sha256"]:
        raise DatasetError(f"{data_dir}: content checksum mismatch (datasheet {storage['content_sha256'][:12]}..., "
                           f"data {data.content_hash()[:12]}...): the files were modified or damaged")
    return data


def _read_sidecar(data_dir: Path, storage: dict[str, Any], n: int) -> dict[str, np.ndarray]:
    sidecar = storage.get("sidecar")
    if not sidecar:
        return {
            "item_ids": np.zeros((n, 0), np.int64),
            "predictions": np.zeros((n, 0, int(storage["num_tasks"])), np.float32),
            "responses": np.zeros((n, 0, int(storage["num_response_fields"])), np.float32),
            "item_rewards": np.zeros((n, 0), np.float32),
        }
    path = data_dir / sidecar["file"]
    if not path.is_file():
        raise DatasetError(f"{path}: item-log sidecar missing (the datasheet lists it)")
    digest = _sha256_file(path)
    if digest != sidecar["sha256"]:
        raise DatasetError(f"{path}: checksum mismatch (expected sha256 {sidecar['sha256'][:12]}..., file has "
                           f"{digest[:12]}...)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in _ITEM_FIELDS}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{path}: unreadable item-log sidecar ({type(exc).__name__}: {exc})") from exc
    for name, arr in arrays.items():
        if list(arr.shape) != sidecar["arrays"][name] or arr.shape[0] != n:
            raise DatasetError(f"{path}: {name} has shape {arr.shape}, the datasheet says {sidecar['arrays'][name]} "
                               f"for {n} transitions")
    return arrays
