"""Benchmarks of sauvegarde against restic and borg; the entry point is ``python bench/run.py`` (see its docstring).

Modules: ``run`` (command line, output files), ``steps`` (the benchmark sequence), ``tools`` (each tool's command
lines, installation, versions), ``measure`` (timing one command: wall time, peak RSS, CPU), ``report`` (JSON,
ratios, Markdown table, machine description), ``data`` (test data and file-system helpers) and ``s3`` (a private
SeaweedFS S3 server for the ``s3`` step). Separate entry points: ``python -m bench.scale`` (time and memory from
1k to 1M files, 1k to 10M chunks, and a long ``--stdin`` stream; it drives ``index_memory``) and
``python -m bench.guard`` (the ransomware guard's detection and false-alarm rates, and its cost in backup time).
"""
