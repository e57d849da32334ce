"""The mutation harness: plants one realistic regression at a time in a scratch copy of the
project and proves that the quick check, the full gate and the live monitor's rules each
catch it, naming the cause. Run with ``python -m tests.mutation`` (not part of pytest)."""
