"""The release state machine: pure decisions from the status and the observed children.

Each transition is a pure function (no I/O); its state lives in the RagSystem's status and
in child objects, so an operator restarted at any step resumes where it stopped.
"""
