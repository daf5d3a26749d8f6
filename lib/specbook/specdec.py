"""Lossless speculative decoding for two causal LMs that share a vocabulary (Leviathan et al. 2023).

Each step the draft proposes K tokens one by one, the target scores them all in one forward pass,
and the proposals are accepted left to right with probability min(1, p(x)/q(x)). At the first
rejection one token is drawn, with a fresh random number, from the residual norm(max(0, p - q));
when all K are accepted the target's distribution after them gives one bonus token. Both models
keep their KV caches across steps and roll them back past rejected tokens.

Greedy decoding is the same algorithm with one-hot distributions: a proposal is accepted exactly
when it is the target's argmax, and the residual is the target's argmax.

Without a draft model, prompt lookup (n-gram) proposes the tokens that followed an earlier
occurrence of the latest n-gram: a certain proposal (q = 1), verified by the same rule.
"""

from __future__ import annotations

import functools
import math
import numbers
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import torch


class VocabularyMismatch(ValueError):
    pass


def check_pair(target_config, draft_config) -> None:
    """Speculation compares distributions token by token: both models need one vocabulary."""
    vt, vd = target_config.vocab_size, draft_config.vocab_size
    if vt != vd:
        raise VocabularyMismatch(
            f"target and draft vocabularies differ: target has {vt} tokens, draft has {vd}. "
            f"Use a draft trained with the target's tokenizer (same vocabulary, same ids)."
        )


def is_whole(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_decoding(k, max_new_tokens, temperature, top_p) -> None:
    """Refuse what the decoder cannot honour, naming the value and the range it must lie in
    (`engines.Sampling` and `generate` both call it, so every engine answers alike)."""
    if not is_whole(k) or k < 0:
        raise ValueError(f"k is {k!r}; it must be a whole number >= 0 (draft tokens per step; 0: plain decoding)")
    if not is_whole(max_new_tokens) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens is {max_new_tokens!r}; it must be a whole number >= 1")
    if not isinstance(temperature, numbers.Real) or isinstance(temperature, bool) or not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature is {temperature!r}; it must be a finite number >= 0 (0: greedy)")
    if not isinstance(top_p, numbers.Real) or isinstance(top_p, bool) or not 0 < top_p <= 1:
        raise ValueError(f"top_p is {top_p!r}; it must lie in (0, 1] (1: the whole distribution)")


def check_prompt(n_prompt: int, max_new_tokens: int, context: int | None, what: str = "the prompt") -> None:
    """A prompt must hold a token to continue from, and it and the answer must fit the model's context."""
    if n_prompt == 0:
        raise ValueError(f"{what} is empty: a model needs at least one token to continue from")
    if context is not None and n_prompt + max_new_tokens > context:
        raise ValueError(
            f"{what} has {n_prompt} tokens and max_new_tokens is {max_new_tokens}: {n_prompt + max_new_tokens} tokens, "
            f"more than the model's context of {context}; shorten the prompt or lower max_new_tokens"
        )


def context_length(config) -> int | None:
    """The longest sequence a model's config declares (max_position_embeddings), if it declares one."""
    return getattr(config, "max_position_embeddings", None)


def compiled(model: torch.nn.Module) -> torch.nn.Module:
    """`model` with its forward pass compiled by `torch.compile` (the model itself is left as it is).

    A small model decoding on a CPU spends most of a step in per-call overhead, which compiling
    cuts substantially (chapter 02 measures it). Shapes are dynamic from the start (prompt length and KV cache change every call).
    Models of one architecture and size share their compiled graphs (prompt, one token, several
    tokens), built here, before any timed call. Past the recompile limit torch would silently fall
    back to eager code and slow every number down, so that fails loudly instead.
    """
    import torch._dynamo

    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
    torch._dynamo.config.fail_on_recompile_limit_hit = True
    fast = torch.compile(model, dynamic=True)
    with torch.inference_mode():  # compile now, for every shape decoding meets, not in a timed request
        cached = CachedModel(fast)
        for n in (8, 1, 3):
            cached.forward(list(range(n)))
    return fast


def probabilities(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """The sampling distribution over the whole vocabulary (float64): one-hot argmax when
    temperature is 0, else softmax(logits / T) restricted to the top-p nucleus."""
    logits = logits.double()
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).double()
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(descending=True)
        outside = sorted_probs.cumsum(-1) - sorted_probs >= top_p  # the mass before it already reaches top_p
        sorted_probs[outside] = 0.0
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
        probs = probs / probs.sum(-1, keepdim=True)
    return probs


def residual_distribution(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """norm(max(0, p - q)). Its sum is 0 only when p == q, where rejection never happens; the
    guard returns p there rather than dividing by zero."""
    residual = (p - q).clamp_min(0.0)
    total = residual.sum()
    return residual / total if total > 0 else p


@dataclass
class SpeculativeResult:
    token_ids: list[int]
    finish_reason: str  # "stop" (EOS or a stop string) or "length"
    proposed: int = 0  # draft tokens proposed
    accepted: int = 0  # draft tokens accepted
    steps: int = 0  # target verification passes
    accepted_at: list[int] = field(default_factory=list)  # per draft position, acceptances
    tested_at: list[int] = field(default_factory=list)  # per draft position, steps that proposed it after accepting all before it
    # per target pass, the draft tokens it accepted; and every rejection as (position in the answer,
    # the draft's token, the token the target wrote there instead): what chapter 05's analysis reads
    step_accepts: list[int] = field(default_factory=list)
    rejections: list[tuple[int, int, int]] = field(default_factory=list)
    ttft_s: float = 0.0
    latency_s: float = 0.0
    # after the first step (the decoding the cost model describes): seconds inside the draft's
    # forward passes and inside the target's; the rest of the time is the decoder's own work.
    # None on a GPU, where a forward call returns before its kernels have run
    draft_s: float | None = 0.0
    target_s: float | None = 0.0


@functools.cache
def cache_argument(version: str | None = None) -> str:
    """The name under which a model's forward pass takes its KV cache: transformers 5.25 renamed
    `past_key_values` to `cache` (the old name is removed in 5.40), and the GPU environment's
    transformers (5.17) knows only the old one. `version`: transformers' own when None."""
    from packaging.version import Version

    if version is None:
        import transformers

        version = transformers.__version__
    return "cache" if Version(version) >= Version("5.25.0.dev0") else "past_key_values"


def as_ids(ids, device) -> torch.Tensor:
    """Token ids as a 1-D tensor on `device` (a list is copied there; a tensor already there is kept)."""
    if isinstance(ids, torch.Tensor):
        return ids.reshape(-1).to(device)
    return torch.tensor(ids, dtype=torch.long, device=device)


def contiguous_strides(shape) -> tuple[int, ...]:
    """The strides of a contiguous tensor of this shape, those of size-1 dimensions included."""
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return tuple(reversed(strides))


class CachedModel:
    """A model with its KV cache (a transformers `DynamicCache`, grown as tokens come) and the
    number of tokens it holds: the decoder's cache on a CPU.

    A compiled model guards on the strides of the cache tensors it is given (those of size-1
    dimensions too) and compiles a new graph for each new layout. The prompt pass, a decoding step
    and a rollback each leave their own, so graphs would be compiled in the middle of timed requests
    (seconds each). Every call therefore gets its cache in one layout, contiguous: copied where it
    differs, after the prompt pass and after a rollback."""

    def __init__(self, model):
        from transformers import DynamicCache

        self.model = model
        self.cache = DynamicCache(config=model.config)
        self.length = 0

    def forward(self, ids) -> torch.Tensor:
        """The logits at each of `ids` (a list or a 1-D tensor), fed after the tokens the cache holds."""
        for layer in self.cache.layers:
            for name in ("keys", "values") if layer.is_initialized else ():
                if (t := getattr(layer, name)).stride() != contiguous_strides(t.shape):
                    setattr(layer, name, t.clone(memory_format=torch.contiguous_format))
        ids = as_ids(ids, self.model.device)
        out = self.model(input_ids=ids[None], use_cache=True, **{cache_argument(): self.cache})
        self.length += len(ids)
        return out.logits[0]

    def keep(self, n: int) -> None:
        """Roll the cache back to its first n tokens."""
        if n < self.length:
            self.cache.crop(n - self.length)  # transformers 5: a negative count of tokens to drop
            self.length = n


class StaticCachedModel:
    """A model with a KV cache allocated once for `max_len` tokens and written by position (a
    transformers `StaticCache`, whose layers keep their length as a counter on the device): a
    rollback moves the position and copies nothing, and no pass allocates. The decoder's cache on a GPU.

    On CUDA every pass over at most GRAPH_TOKENS new tokens after the prompt (a draft step, the
    draft's catch-up of two tokens, a verify pass, a 1-token step) runs as a CUDA graph, captured
    the first time that number of tokens comes and replayed after: one launch instead of one per
    kernel, which is what a batch-1 step of a small model is made of. The prompt pass runs eagerly.
    Graph and eager passes over the same number of tokens run the same kernels. Elsewhere (a CPU)
    every pass runs eagerly through the same code."""

    GRAPH_TOKENS = 16

    def __init__(self, model, max_len: int, graphs: bool | None = None):
        from transformers import StaticCache

        self.model, self.max_len = model, max_len
        self.cache = StaticCache(config=model.config, max_cache_len=max_len)
        self.length = 0
        self.graphs = model.device.type == "cuda" if graphs is None else graphs
        self.captured: dict[int, tuple] = {}  # tokens per pass -> (graph, its input ids, its logits)
        self.pool = None  # one memory pool for all of this model's graphs

    def _pass(self, ids_2d: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids_2d, use_cache=True, **{cache_argument(): self.cache}).logits[0]

    def forward(self, ids) -> torch.Tensor:
        """The logits at each of `ids` (a list or a 1-D tensor), fed after the tokens the cache holds.
        A graph's logits are its own output buffer: read them before the next pass of that length."""
        ids = as_ids(ids, self.model.device)
        n = len(ids)
        if self.length + n > self.max_len:
            raise ValueError(f"{self.length + n} tokens do not fit this static cache of {self.max_len}; make it longer")
        if self.graphs and self.length and n <= self.GRAPH_TOKENS:
            graph, inputs, logits = self.captured.get(n) or self._capture(n)
            inputs.copy_(ids[None])
            graph.replay()
        else:
            logits = self._pass(ids[None])
        self.length += n
        return logits

    def keep(self, n: int) -> None:
        """Roll the cache back to its first n tokens: each layer's position moves back; the stale
        keys and values past it are masked until overwritten."""
        if n < self.length:
            self._move_to(n)
            self.length = n

    def _move_to(self, position: int) -> None:
        # set here, not by `cache.crop`: transformers 5.17's static layers crop by slicing their tensors
        for layer in self.cache.layers:
            if layer.is_initialized:
                layer.cumulative_length.fill_(position)

    def _capture(self, n: int) -> tuple:
        """Capture a pass over n tokens at the current position (which the graph reads from the
        device each replay, so it holds at any position). Warm-up passes on a side stream first, as
        CUDA graphs need; each is rolled back (it wrote only past the valid tokens)."""
        inputs = torch.zeros((1, n), dtype=torch.long, device=self.model.device)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):
                self._pass(inputs)
                self._move_to(self.length)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):  # recorded, not run: the position does not move
            logits = self._pass(inputs)
        self.pool = graph.pool()
        self.captured[n] = (graph, inputs, logits)
        return self.captured[n]


# Each model's static cache and graphs, kept from request to request (a graph holds its buffers'
# addresses); by role, since one model may be both target and draft. Dropped with the model.
_static_caches: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def static_cached(model, role: str, need: int) -> StaticCachedModel:
    """`model`'s static cache for `role`, emptied, holding at least `need` tokens (a longer one,
    rounded up to 256 tokens, replaces one too short)."""
    caches = _static_caches.setdefault(model, {})
    if role not in caches or caches[role].max_len < need:
        caches[role] = StaticCachedModel(model, -(-need // 256) * 256)
    caches[role].keep(0)
    return caches[role]


@dataclass(frozen=True)
class Step:
    """One verification of a recorded run: the draft tokens the target accepted, the draft's first
    rejected proposal (None when none was rejected), and the target's own token that ended the step
    (the correction after a rejection, else the bonus; None when the answer ended inside the accepted run)."""

    accepted: list[int]
    rejected: int | None
    target: int | None


def steps(token_ids: list[int], step_accepts: list[int], rejections: list) -> list[Step]:
    """Rebuild a run's steps from what it records (`SpeculativeResult` or a saved request): the
    answer's tokens, how many proposals each step accepted, and each rejection's (position, draft's
    token, target's token)."""
    rejected_at = {position: drafted for position, drafted, _ in rejections}
    out, position = [], 0
    for n in step_accepts:
        if position >= len(token_ids):
            break
        accepted = list(token_ids[position : position + n])
        position += n
        if position >= len(token_ids):
            out.append(Step(accepted, None, None))
            break
        out.append(Step(accepted, rejected_at.get(position), token_ids[position]))
        position += 1
    return out


def greedy_accepted(proposals: list[int], choices: list[int]) -> int:
    """How many proposals greedy verification accepts: those that equal the target's argmax at
    their position, left to right, up to the first that does not."""
    n = 0
    while n < len(proposals) and proposals[n] == choices[n]:
        n += 1
    return n


def ngram_proposals(seq: list[int], k: int, ngram_max: int) -> list[int]:
    """Prompt lookup (draft-free): the up to k tokens that followed the first earlier occurrence of
    the sequence's last n tokens, trying n = ngram_max down to 1, as transformers' prompt lookup
    does; [] when no n-gram recurs."""
    for n in range(min(ngram_max, len(seq) - 1), 0, -1):
        suffix = seq[-n:]
        for start in range(len(seq) - n):
            if seq[start : start + n] == suffix:
                return seq[start + n : start + n + k]
    return []


@torch.inference_mode()
def generate(
    target,
    draft,
    prompt_ids: list[int],
    k: int,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    eos_token_ids: set[int] | frozenset = frozenset(),
    seed: int | torch.Generator = 0,
    stop: Callable[[list[int]], int | None] | None = None,
    ngram_max: int | None = None,
    static_cache: bool | None = None,
) -> SpeculativeResult:
    """Speculative decoding of one prompt. k=0 (or no draft and no `ngram_max`) is plain target
    decoding through the same code path, so that speedups compare like with like. `draft`: a model,
    or None with `ngram_max` for prompt lookup (`ngram_proposals`; its proposals are certain, q = 1,
    so a token is accepted with probability p(x)). `seed`: a number (the request's own random
    stream) or a generator whose stream continues across calls (many samples drawn as one
    sequence, as a statistical test wants), on the model's device. `stop(new_ids)`, if given, returns how many of the new
    tokens to keep once a stop condition (a stop string) is met, else None. `static_cache`: each
    model's cache allocated once and rolled back by position (`StaticCachedModel`, with CUDA graphs
    on a GPU) rather than grown as tokens come (`CachedModel`); None: static on CUDA. Greedy steps
    wait for the device once, when the target's choices are compared with the proposals.

    Greedy decoding takes a shortcut with the same result as the one-hot distributions: argmaxes
    compared directly, no distributions built and no random numbers drawn (per-token work the
    cost model of chapter 00 does not count, and which chapter 04 measures as lost efficiency)."""
    check_decoding(k, max_new_tokens, temperature, top_p)
    check_prompt(len(prompt_ids), max_new_tokens, context_length(target.config))
    if draft is not None and ngram_max is not None:
        raise ValueError("give a draft model or ngram_max (prompt lookup), not both")
    if draft is None and ngram_max is None:
        k = 0
    elif draft is not None:
        check_pair(target.config, draft.config)
    device = target.device
    if isinstance(seed, torch.Generator):
        if seed.device.type != device.type:
            raise ValueError(
                f"the generator is on {seed.device.type} and the model on {device.type}: make it with torch.Generator(device=...)"
            )
        rng = seed
    else:
        rng = torch.Generator(device=device).manual_seed(seed)  # drawn on the model's device, where the distributions are
    greedy = temperature == 0
    static = device.type == "cuda" if static_cache is None else static_cache
    timed = device.type == "cpu"  # elsewhere a forward call returns before its kernels have run

    def draw(dist: torch.Tensor) -> torch.Tensor:
        return torch.multinomial(dist, 1, generator=rng)  # a 1-token tensor, left on the device

    def cached(model, role):
        return static_cached(model, role, len(prompt_ids) + max_new_tokens) if static else CachedModel(model)

    tgt, drf = cached(target, "target"), (cached(draft, "draft") if k and draft is not None else None)
    seq, n_prompt = list(prompt_ids), len(prompt_ids)
    result = SpeculativeResult(token_ids=[], finish_reason="length", accepted_at=[0] * k, tested_at=[0] * k)
    if not timed:
        result.draft_s = result.target_s = None
    start = time.perf_counter()
    while (room := max_new_tokens - (len(seq) - n_prompt)) > 0:
        kk = min(k, room - 1)  # never propose tokens that could not be emitted
        unread = as_ids(seq[tgt.length :], device)  # the tokens the target has not read yet (one or two, or the prompt)
        started = time.perf_counter()
        q_dists, drafted = [], []
        if kk and drf is None:
            drafted = [as_ids(ngram_proposals(seq, kk, ngram_max), device)]
        elif kk:
            logits = drf.forward(seq[drf.length :])[-1]
            for i in range(kk):  # proposals stay on the device: no waiting on the GPU between draft steps
                if greedy:
                    drafted.append(logits.argmax(-1, keepdim=True))
                else:
                    q_dists.append(probabilities(logits, temperature, top_p))
                    drafted.append(draw(q_dists[-1]))
                if i < kk - 1:
                    logits = drf.forward(drafted[-1])[-1]
        proposed = torch.cat(drafted) if drafted else unread[:0]
        n = len(proposed)
        drafted_at = time.perf_counter()
        logits = tgt.forward(torch.cat([unread, proposed]))[-(n + 1) :]
        if result.steps and timed:  # not the first step, which also reads the prompt
            result.draft_s += drafted_at - started
            result.target_s += time.perf_counter() - drafted_at
        n_accepted, token = 0, None
        if greedy:  # a proposal is accepted exactly when it is the target's argmax
            both = torch.cat([proposed, logits.argmax(-1)]).tolist()  # the step's one wait for the device
            proposals, choices = both[:n], both[n:]
            n_accepted = greedy_accepted(proposals, choices)
            token = choices[n_accepted]
            if n_accepted < n:
                result.rejections.append((len(seq) - n_prompt + n_accepted, proposals[n_accepted], token))
        else:
            proposals = proposed.tolist()
            p_dists = probabilities(logits, temperature, top_p)
            for i, x in enumerate(proposals):
                q = q_dists[i] if q_dists else torch.nn.functional.one_hot(proposed[i], p_dists.shape[-1]).double()
                ratio = (p_dists[i, x] / q[x]).item()
                if torch.rand((), generator=rng, dtype=torch.float64, device=device).item() < min(1.0, ratio):
                    n_accepted += 1
                else:
                    token = int(draw(residual_distribution(p_dists[i], q)))  # a fresh draw
                    result.rejections.append((len(seq) - n_prompt + i, x, token))
                    break
            if token is None:
                token = int(draw(p_dists[n]))  # all accepted: the bonus token
        for i in range(n_accepted):
            result.accepted_at[i] += 1
        for i in range(min(n_accepted + 1, n)):  # a position is tested when proposed and all before it were accepted
            result.tested_at[i] += 1
        result.steps += 1
        result.step_accepts.append(n_accepted)
        result.proposed += n
        result.accepted += n_accepted
        tgt.keep(len(seq) + n_accepted)
        if drf is not None:
            drf.keep(len(seq) + n_accepted)
        emitted = proposals[:n_accepted] + [token]
        for j, t in enumerate(emitted):
            if t in eos_token_ids:
                emitted, result.finish_reason = emitted[: j + 1], "stop"
                break
        seq += emitted
        if result.steps == 1:
            result.ttft_s = time.perf_counter() - start
        if stop is not None and (keep := stop(seq[n_prompt:])) is not None:
            del seq[n_prompt + keep :]
            result.finish_reason = "stop"
        if result.finish_reason == "stop":
            break
    result.latency_s = time.perf_counter() - start
    result.token_ids = seq[n_prompt:]
    return result
