"""`TransformersEngine`: transformers' `model.generate()`, with assisted generation (a draft model)
or prompt lookup, its speculative counters read by instrumenting the candidate generator."""

from __future__ import annotations

import time

from specbook.engines.base import Generation, InProcess, StopStrings, stop_string_cut


class _FirstTokenClock:
    """A `generate()` streamer that notes when the first new tokens arrive (its first `put` is the prompt)."""

    def __init__(self):
        self.start, self.first, self.puts = time.perf_counter(), None, 0

    def put(self, value):
        self.puts += 1
        if self.puts == 2:
            self.first = time.perf_counter()

    def end(self):
        pass


class _CountingCandidates:
    """Wraps transformers' candidate generator to count what assisted generation proposes and keeps,
    and which draft token each rejection replaced with which target token."""

    def __init__(self, inner, counts: Generation, prompt_length: int):
        self.inner, self.counts, self.prompt_length = inner, counts, prompt_length
        self.last, self.candidates = 0, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def get_candidates(self, input_ids, **kwargs):
        candidate_ids, candidate_logits = self.inner.get_candidates(input_ids, **kwargs)
        self.last = candidate_ids.shape[1] - input_ids.shape[1]
        self.candidates = candidate_ids[0, input_ids.shape[1] :].tolist()
        return candidate_ids, candidate_logits

    def update_candidate_strategy(self, input_ids, scores, num_matches):
        # called once the step's tokens are appended: the last one is the target's own
        n = int(num_matches)
        c = self.counts
        c.steps, c.proposed, c.accepted = c.steps + 1, c.proposed + self.last, c.accepted + n
        c.step_accepts.append(n)
        for i in range(n):
            c.accepted_at[i] += 1
            c.tested_at[i] += 1
        # fewer matches than candidates and another token: a rejection, which tested position n (at
        # an end of sequence or the length cap transformers also cuts candidates that were not refused)
        if n < self.last and self.candidates[n] != (wrote := int(input_ids[0, -1])):
            c.rejections.append((input_ids.shape[1] - 1 - self.prompt_length, self.candidates[n], wrote))
            c.tested_at[n] += 1
        return self.inner.update_candidate_strategy(input_ids, scores, num_matches)


class TransformersEngine(InProcess):
    """`model.generate()`; with `speculative`, assisted generation (draft model at a constant K,
    lossless speculative sampling when temperature > 0) or prompt lookup."""

    name = "transformers"

    def _one(self, prompt_ids, sampling, speculative, seed) -> Generation:
        import torch

        kwargs = {}
        k = speculative.k if speculative else 0
        counts = Generation("", [], "", 0.0, accepted_at=[0] * k, tested_at=[0] * k)  # counted into
        if speculative is not None and speculative.method == "draft_model":
            draft = self.draft_model(speculative)
            # a fixed K: no heuristic schedule, no early stop on the draft's confidence
            draft.generation_config.num_assistant_tokens = speculative.k
            draft.generation_config.num_assistant_tokens_schedule = "constant"
            draft.generation_config.assistant_confidence_threshold = 0.0
            kwargs["assistant_model"] = draft
        elif speculative is not None:
            kwargs.update(prompt_lookup_num_tokens=speculative.k, max_matching_ngram_size=speculative.ngram_max)
        if speculative is not None:
            original = self.model._get_candidate_generator
            self.model._get_candidate_generator = lambda *a, **kw: _CountingCandidates(original(*a, **kw), counts, len(prompt_ids))
        if sampling.stop:
            kwargs["stopping_criteria"] = [StopStrings(self.tokenizer, sampling.stop, len(prompt_ids))]
        ids = torch.tensor([prompt_ids], device=self.model.device)
        clock = _FirstTokenClock()
        torch.manual_seed(seed)
        try:
            with torch.inference_mode():
                out = self.model.generate(
                    input_ids=ids, attention_mask=torch.ones_like(ids), streamer=clock, **self._generate_kwargs(sampling), **kwargs
                )
        finally:
            if speculative is not None:
                del self.model._get_candidate_generator  # the class's method again
        end = time.perf_counter()
        new = out[0, len(prompt_ids) :].tolist()
        keep = stop_string_cut(self.tokenizer, new, sampling.stop)
        if keep is not None:  # an assisted step may have accepted tokens past the stop string
            new = new[:keep]
        finished = keep is not None or (bool(new) and new[-1] in self.eos)
        if speculative is None:
            counts.steps = len(new)
        return self._finish(
            new,
            "stop" if finished else "length",
            sampling,
            latency_s=end - clock.start,
            ttft_s=(clock.first - clock.start) if clock.first else None,
            steps=counts.steps,
            proposed=counts.proposed,
            accepted=counts.accepted,
            accepted_at=counts.accepted_at,
            tested_at=counts.tested_at,
            step_accepts=counts.step_accepts,
            rejections=counts.rejections,
        )
