"""The v1 step kernels: one per way of choosing the page, the user side shared.

* :func:`fusion_step_chunk` (``MTFSession-v1``): retrieval -> ranker -> the action's fusion -> top-K -> the page;
* :func:`slate_step_chunk` (``MTFSlate-v0``): the action *is* the page (item ids).

Both then call :func:`serve_page` (responses, reward, state, observation, leaving), so users, responses,
satisfaction, boredom and leaving exist once. A chunk is a contiguous range of rows with its own scratch; kernels
release the GIL so chunks run on several threads (:mod:`mtf_gym.threads`), and results do not depend on chunking:
all randomness is counter-based on ``(session key, request index, lane)``.
"""

from __future__ import annotations

import numpy as np

from mtf_gym.fusion import fused_top_k, fusion_params_row
from mtf_gym.rng import counter_uniform
from mtf_gym.sim.layout import (
    D_CANDIDATES,
    D_MAX_REQUESTS,
    D_PER_TOPIC,
    NUM_RESPONSES,
    UNIFORMS_PER_ITEM,
)
from mtf_gym.sim.memory import kernel_jit, prefetch_rows
from mtf_gym.sim.ranker import predict
from mtf_gym.sim.response import respond
from mtf_gym.sim.retrieval import retrieve
from mtf_gym.sim.transition import P_CLICKBAIT, P_INTERACTION, end_page, leave_probability, observe
from mtf_gym.sim.users import start_row

__all__ = ["fusion_step_chunk", "mean_embedding", "next_candidates_rows", "observe_rows", "serve_page",
           "slate_step_chunk", "start_rows"]

_F0 = np.float32(0.0)


@kernel_jit
def start_rows(rows, keys, model, users, normals):
    for j in range(rows.shape[0]):
        start_row(rows[j], keys[j], model, users, normals)


@kernel_jit
def observe_rows(model, users, obs):
    for i in range(obs.shape[0]):
        observe(i, model, users, obs[i])


@kernel_jit
def serve_page(i, key, counter, model, users, page_sum, page_topics, out):
    """Row ``i`` is shown ``out.item_ids[i]`` (topics ``page_topics``): draw the responses, write the reward and the
    item logs, move the state, observe, and decide whether the user leaves."""
    base_lane = np.uint64(model.dims[D_CANDIDATES] + 1)  # lanes 0..C belong to retrieval
    page = page_topics.shape[0]
    page_sum[:] = _F0
    reward = 0.0
    for k in range(page):
        item, tp = out.item_ids[i, k], page_topics[k]
        response = out.responses[i, k]
        lane = base_lane + np.uint64(k * UNIFORMS_PER_ITEM)
        clickbait, interaction = respond(i, item, tp, key, counter, lane, model, users, response)
        item_reward = _F0
        for f in range(NUM_RESPONSES):
            item_reward += response[f] * model.reward[f]
            page_sum[f] += response[f]
        page_sum[P_CLICKBAIT] += clickbait
        page_sum[P_INTERACTION] += interaction
        out.item_rewards[i, k] = item_reward
        reward += item_reward
    out.rewards[i] = reward
    end_page(i, model, users, page_sum, page_topics)
    observe(i, model, users, out.observations[i])
    leave_lane = base_lane + np.uint64(page * UNIFORMS_PER_ITEM)
    out.terminated[i] = counter_uniform(key, counter, leave_lane) < leave_probability(i, model, users)
    out.truncated[i] = users.request_index[i] >= model.dims[D_MAX_REQUESTS] and not out.terminated[i]


@kernel_jit
def fusion_step_row(i, actions, model, users, scratch, chunk, out):
    """Advance row ``i`` by one request chosen by fusion weights ``actions[i]``."""
    key, counter = users.keys[i], np.uint64(users.request_index[i])
    candidates, topics, preds = scratch.candidates[chunk], scratch.topics[chunk], scratch.preds[chunk]
    scores, order, powers, biases = scratch.scores[chunk], scratch.order[chunk], scratch.powers[chunk], \
        scratch.biases[chunk]
    page_topics = scratch.page_topics[chunk]
    out.clipped[i] = fusion_params_row(actions[i], model.fusion, powers, biases)
    retrieve(i, key, counter, model, users, candidates, topics)
    predict(i, model, users, candidates, topics, preds)
    fused_top_k(preds, powers, biases, scores, order)
    page = order.shape[0]
    for k in range(page):
        j = order[k]
        out.item_ids[i, k] = candidates[j]
        page_topics[k] = topics[j]
        for col in range(preds.shape[1]):
            out.predictions[i, k, col] = preds[j, col]
    serve_page(i, key, counter, model, users, scratch.page_sum[chunk], page_topics, out)


@kernel_jit(nogil=True)
def fusion_step_chunk(chunk, num_chunks, restart, restart_keys, actions, model, users, scratch, out):
    """Advance the rows of one chunk (``restart[i]``: start a new session from ``restart_keys[i]`` instead)."""
    n = restart.shape[0]
    for i in range(chunk * n // num_chunks, (chunk + 1) * n // num_chunks):
        if restart[i]:
            start_row(i, restart_keys[i], model, users, scratch.normals[chunk])
            observe(i, model, users, out.observations[i])
        else:
            fusion_step_row(i, actions, model, users, scratch, chunk, out)


@kernel_jit
def next_candidates_row(i, model, users, scratch, chunk, candidates_out, predictions_out):
    """The production pipeline's work for row ``i``'s next request: its retrieved candidates and their predictions
    (the same draws ``MTFSession-v1`` would make for that request)."""
    key, counter = users.keys[i], np.uint64(users.request_index[i])
    retrieve(i, key, counter, model, users, candidates_out[i], scratch.topics[chunk])
    predict(i, model, users, candidates_out[i], scratch.topics[chunk], predictions_out[i])


@kernel_jit
def mean_embedding(embeddings, item_ids, out):
    """``out[:] = embeddings[item_ids].mean(axis=0)``, summed in page order in float32 as NumPy does (bit-identical
    to it, tested)."""
    for c in range(out.shape[0]):
        out[c] = embeddings[item_ids[0], c]
    for k in range(1, item_ids.shape[0]):
        for c in range(out.shape[0]):
            out[c] += embeddings[item_ids[k], c]
    count = np.float32(item_ids.shape[0])
    for c in range(out.shape[0]):
        out[c] = out[c] / count


@kernel_jit(nogil=True)
def slate_step_chunk(chunk, num_chunks, restart, restart_keys, actions, model, users, scratch, out, expose,
                     candidates_out, predictions_out, embeddings, page_embeddings):
    """Advance the rows of one chunk with pages given as item ids (``actions``: ``(N, K)`` int64, validated by the
    caller). With ``expose``, also write each row's next candidates and their predictions. ``page_embeddings[i]``
    receives the mean of ``embeddings`` over row ``i``'s page (zeros for a restarted row: no page yet).

    At large catalogues the item rows miss every cache, so the rows of the next row's page are prefetched while
    this row computes (the next page is known: it is the action)."""
    n = restart.shape[0]
    per_topic = model.dims[D_PER_TOPIC]
    first, stop = chunk * n // num_chunks, (chunk + 1) * n // num_chunks
    if first < stop:
        prefetch_rows(model.items, actions[first])
        prefetch_rows(embeddings, actions[first])
    for i in range(first, stop):
        if i + 1 < stop:
            prefetch_rows(model.items, actions[i + 1])
            prefetch_rows(embeddings, actions[i + 1])
        if restart[i]:
            start_row(i, restart_keys[i], model, users, scratch.normals[chunk])
            observe(i, model, users, out.observations[i])
            page_embeddings[i, :] = _F0
        else:
            key, counter = users.keys[i], np.uint64(users.request_index[i])
            page_topics = scratch.page_topics[chunk]
            for k in range(page_topics.shape[0]):
                out.item_ids[i, k] = actions[i, k]
                page_topics[k] = actions[i, k] // per_topic
            # The ranker's scores of the shown items, for the item logs (offline metrics need them).
            preds = scratch.preds[chunk]
            predict(i, model, users, out.item_ids[i], page_topics, preds)
            for k in range(page_topics.shape[0]):
                for col in range(preds.shape[1]):
                    out.predictions[i, k, col] = preds[k, col]
            serve_page(i, key, counter, model, users, scratch.page_sum[chunk], page_topics, out)
            mean_embedding(embeddings, actions[i], page_embeddings[i])
        if expose:
            next_candidates_row(i, model, users, scratch, chunk, candidates_out, predictions_out)


@kernel_jit
def next_candidates_rows(model, users, scratch, candidates_out, predictions_out):
    """:func:`next_candidates_row` for every row (at reset)."""
    for i in range(candidates_out.shape[0]):
        next_candidates_row(i, model, users, scratch, 0, candidates_out, predictions_out)
