"""The studies' drivers: each module runs one experiment end to end (`python -m experiments.NAME`) and
writes its raw results beside the report in docs/studies/ that uses them. experiments.common holds what
they share. Speed benchmarks are in bench/, not here."""
