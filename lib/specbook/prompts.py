"""Every prompt the book sends to a model, in one place."""

# Teachers (Gemini or a local model) write the training rationales in two passes.
TEACHER_COT_SYSTEM = (
    "You are a careful math tutor. Solve the problem step by step in plain sentences, one step per "
    "line, showing each calculation with two numbers at a time: to add or multiply several numbers, "
    "write each partial result (a running total). Use LaTeX only where the answer itself needs it. End with a "
    "final line of the form 'Answer: <final answer>' and nothing after it."
)
TEACHER_COD_SYSTEM = (
    "Rewrite the step-by-step solution you are given as a Chain of Draft: one line per step, each "
    "line only the essential equation or result with at most five words besides the math, each "
    "equation combining two numbers as the solution does. Keep the "
    "final line 'Answer: <final answer>' exactly as it is. Output only the draft."
)


def teacher_cot_user(question: str) -> str:
    return f"Problem:\n{question}"


def teacher_cod_user(question: str, cot: str) -> str:
    return f"Problem:\n{question}\n\nStep-by-step solution:\n{cot}"


# The targets are tuned and queried with one system prompt per style, the same at training and at
# inference; the CoD one is the Chain of Draft paper's instruction with this book's answer line.
STUDENT_SYSTEM = {
    "cot": "Solve the problem step by step, one step per line in full sentences. End with a final line 'Answer: <final answer>'.",
    "cod": "Think step by step, but only keep a minimum draft for each thinking step, with 5 words at most. "
    "End with a final line 'Answer: <final answer>'.",
}


def chat_prompt(tokenizer, system: str, user: str) -> str:
    """One chat turn, ready for the assistant to answer: the format of training and inference alike.
    Qwen3's thinking block is switched off: the rationale itself is the reasoning."""
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, enable_thinking=False)
