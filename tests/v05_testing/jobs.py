"""Top-level (picklable) jobs for the worker-pool tests."""


def square(args):
    """Report progress once, then return the square; a negative input fails."""
    x, messages = args
    messages.put(("done", x))
    if x < 0:
        raise ValueError(f"job {x} failed")
    return x * x
