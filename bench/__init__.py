"""Quality and speed benchmarks that print tables (run each as ``python -m bench.<name>``)."""
