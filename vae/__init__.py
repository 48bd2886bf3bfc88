"""Variational attention for sequence-to-sequence VAEs (Bahuleyan et al., 2018), as a library.

One concept per module: `config` (typed params), `corpus` (sources and checksums),
`data` (cleaning, splitting, batching), `tokenizer`, `model/`, `objective`, `train`,
`search`, `metrics`. The DVC stages in `stages/` are thin CLIs over these.
"""


class UserError(Exception):
    """A problem with the user's input or settings: reported as one clear message, no traceback."""
