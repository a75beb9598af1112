"""Benchmarks of sauvegarde against restic and borg; the entry point is ``python bench/run.py`` (see its docstring).

Modules: ``run`` (command line, output files), ``steps`` (the benchmark sequence), ``tools`` (each tool's command
lines, installation, versions), ``measure`` (timing one command: wall time, peak RSS, CPU), ``report`` (JSON,
ratios, Markdown table, machine description), ``data`` (test data and file-system helpers) and ``s3`` (a private
SeaweedFS S3 server for the ``s3`` step). ``index_memory.py`` is a separate, stand-alone script.
"""
