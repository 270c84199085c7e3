"""The chat room: message understanding (``understanding``: text -> constraints, pure and
model-free), conversation state and templated replies (``state``), and one chat turn end to end
(``turn``: recommend, reply, feedback). The Gradio page in ``recommender.ui`` only wires widgets
to ``turn``.
"""
