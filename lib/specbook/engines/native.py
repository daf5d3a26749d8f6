"""`NativeEngine`: the lib's own speculative decoder (`specdec`) behind the engines' interface."""

from __future__ import annotations

from typing import TYPE_CHECKING

from specbook import specdec
from specbook.engines.base import Generation, InProcess, stop_string_cut

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from specbook.engines.base import Speculative


class NativeEngine(InProcess):
    """The lib's speculative decoder; without `speculative`, plain decoding through the same loop.
    `compile=True` runs the target and every draft through `specdec.compiled` (both alike, so that
    plain and speculative runs compare like with like)."""

    name = "native"

    def __init__(self, model, tokenizer=None, compile: bool = False):
        super().__init__(model, tokenizer)
        self.compile = compile
        self._compiled_drafts: dict[int, tuple] = {}
        if compile:
            self.model = specdec.compiled(self.model)

    def draft_model(self, speculative: Speculative) -> PreTrainedModel:
        draft = super().draft_model(speculative)
        if not self.compile:
            return draft
        if id(draft) not in self._compiled_drafts:  # the entry holds the draft, so its id stays its own
            self._compiled_drafts[id(draft)] = (draft, specdec.compiled(draft))
        return self._compiled_drafts[id(draft)][1]

    def _one(self, prompt_ids, sampling, speculative, seed) -> Generation:
        draft = self.draft_model(speculative) if speculative and speculative.method == "draft_model" else None
        ngram = speculative.ngram_max if speculative and speculative.method == "ngram" else None
        stop = (lambda ids: stop_string_cut(self.tokenizer, ids, sampling.stop)) if sampling.stop else None
        r = specdec.generate(
            self.model,
            draft,
            prompt_ids,
            k=speculative.k if speculative else 0,
            max_new_tokens=sampling.max_new_tokens,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            eos_token_ids=self.eos,
            seed=seed,
            stop=stop,
            ngram_max=ngram,
        )
        return self._finish(
            r.token_ids,
            r.finish_reason,
            sampling,
            latency_s=r.latency_s,
            ttft_s=r.ttft_s,
            steps=r.steps,
            proposed=r.proposed,
            accepted=r.accepted,
            accepted_at=r.accepted_at,
            tested_at=r.tested_at,
            step_accepts=r.step_accepts,
            rejections=r.rejections,
            draft_s=r.draft_s,
            target_s=r.target_s,
        )
