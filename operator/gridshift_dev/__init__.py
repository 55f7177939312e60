"""Build-time tools of gridshift: generators and fitting that the operator never runs.

Kept out of the `gridshift` package (and out of its wheel and image): the Helm chart's derived files
(`chart`), and the shipped GPU profiles fitted from measured data (`profile_fit`). Run them with
`python -m gridshift_dev chart [--check]` (also `make chart`) and `bench/fit_default_profiles.py`.
An import-linter contract keeps `gridshift` from importing this package.
"""
