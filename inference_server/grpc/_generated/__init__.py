"""Generated from protos/*.proto by protos/generate.py; do not edit."""
