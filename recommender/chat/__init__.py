"""The chat room, pure and model-free except where a writer is passed in.

Message understanding (``understanding``: text -> ``Refinement``; its parts ``text``, ``slips``,
``years``, ``counts`` (with ``MAX_K``, the most cards one turn shows), ``title_cues``, ``fragments``,
and every word list in ``lexicon``), conversation state and templated replies (``state``), the reply
gate (``replies``) and the LLM reply written behind it (``writing``), card explanations (``cards``),
and one chat turn end to end (``turn``: recommend, reply, feedback). The Gradio page in
``recommender.ui`` only wires widgets to ``turn``.
"""
