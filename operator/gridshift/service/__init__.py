"""The service layer: gather a snapshot, plan, re-validate, actuate, write status."""
