"""Text and image views of the page last shown to a user and how they reacted."""

from __future__ import annotations

import numpy as np

from mtf_gym.config import RESPONSE_FIELDS, SEGMENT_NAMES
from mtf_gym.fusion import action_to_fusion_params
from mtf_gym.simulator import SessionSimulator

__all__ = ["render_ansi", "render_rgb"]

_C = {name: i for i, name in enumerate(RESPONSE_FIELDS)}
_FLAGS = (("valid_view", "V"), ("long_view", "L"), ("like", "♥"), ("comment", "C"), ("follow", "F"),
          ("share", "S"), ("hate", "H"), ("quick_skip", "x"))


def render_ansi(sim: SessionSimulator, row: int, action: np.ndarray | None) -> str:
    cfg = sim.config
    head = (
        f"request {int(sim.request_index[row])}/{cfg.max_requests}  segment={SEGMENT_NAMES[int(sim.segment[row])]}"
        f"  satisfaction={float(sim.satisfaction[row]):+.2f}  topic_repetition={float(sim.boredom[row].max()):.2f}"
    )
    lines = [head]
    if action is not None:
        powers, biases = action_to_fusion_params(action, cfg.fusion)
        lines.append("fusion: " + "  ".join(
            f"{t}^{p:.2f}(+{b:.2f})" for t, p, b in zip(cfg.ranker_tasks, powers, biases)))
    out = sim.last_step
    if out is None or out.item_ids is None:
        lines.append("(no page shown yet)" if out is None else "(item_logs disabled)")
        return "\n".join(lines)
    cat = sim.catalogue
    task_head = " ".join(f"{t[:6]:>6}" for t in cfg.ranker_tasks)
    lines.append(f"pos  item topic  dur_s  bait {task_head}  watch_s  reactions  reward")
    for pos in range(sim.page_size):
        item = int(out.item_ids[row, pos])
        resp = out.responses[row, pos]
        flags = "".join(f if resp[_C[name]] else "." for name, f in _FLAGS)
        preds = " ".join(f"{p:6.3f}" for p in out.predictions[row, pos])
        lines.append(
            f"{pos:>3} {item:>5} {int(cat.topic[item]):>5} {float(cat.duration_s[item]):6.1f}"
            f"  {'yes ' if cat.clickbait[item] >= 0.5 else ' no '} {preds}  {float(resp[_C['watch_time_s']]):7.1f}"
            f"  {flags}  {float(out.item_rewards[row, pos]):6.2f}"
        )
    lines.append(f"page reward {float(out.rewards[row]):.2f}" + ("  [user left]" if out.terminated[row] else ""))
    return "\n".join(lines)


def render_rgb(sim: SessionSimulator, row: int, width: int = 240, row_height: int = 24) -> np.ndarray:
    """One horizontal bar per shown item: length = watched fraction; colour = deepest reaction reached.

    grey = quick skip, amber = watched but not valid, blue = valid view, green = long view, magenta = like/follow/
    share/comment, red = hate. A black strip at the bottom shows the satisfaction level.
    """
    k = sim.page_size
    img = np.full((k * row_height + 8, width, 3), 255, dtype=np.uint8)
    out = sim.last_step
    if out is not None and out.responses is not None:
        resp = out.responses[row]
        durations = sim.catalogue.duration_s[out.item_ids[row]]
        for pos in range(k):
            r = resp[pos]
            colour = (160, 160, 160) if r[_C["quick_skip"]] else (230, 170, 40)
            if r[_C["valid_view"]]:
                colour = (60, 110, 220)
            if r[_C["long_view"]]:
                colour = (40, 170, 80)
            if r[_C["like"]] or r[_C["follow"]] or r[_C["share"]] or r[_C["comment"]]:
                colour = (200, 40, 200)
            if r[_C["hate"]]:
                colour = (220, 40, 40)
            frac = float(np.clip(r[_C["watch_time_s"]] / max(float(durations[pos]), 1e-6), 0.02, 1.0))
            top = pos * row_height + 3
            img[top : top + row_height - 6, 4 : 4 + int(frac * (width - 8))] = colour
    level = float(np.clip(0.5 + 0.25 * sim.satisfaction[row], 0.0, 1.0))
    img[-6:-2, 4 : 4 + int(level * (width - 8))] = 0
    return img
