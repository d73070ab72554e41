"""mtf-gym's benchmarks: the harness (``mtf-bench``), the environment studies and the speed scripts.

Run them as ``python -m mtf_bench.<script>`` (e.g. ``python -m mtf_bench.headroom``); ``docs/design.md`` lists them.
"""

# The folder is benchmarks/, the import name mtf_bench (pyproject.toml maps it): "benchmarks" is a name other
# distributions install, and importing the folder under it from the repository root would load a second copy.
if __name__ != "mtf_bench":
    raise ImportError(f"the benchmarks' import name is mtf_bench, not {__name__!r}: import it as mtf_bench "
                      "(python -m mtf_bench.<script>; the project must be installed: pip install -e .)")
