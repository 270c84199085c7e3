"""The LLM room: loading a causal LM (+ LoRA adapter) (``loading``), rendering prompts
(``prompting``, pure), the ranking-prompt objects that render a history and candidates and read
the scorer's outputs back (``ranking_prompts``, pure), the evidence those prompts show
(``evidence``) and the forward passes (``scoring``). Importing this package loads nothing:
torch is imported by ``loading`` and ``scoring`` only.
"""
