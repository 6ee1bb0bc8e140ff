"""Scripts run by the tests in the tritonclient virtualenv (never imported by our code)."""
