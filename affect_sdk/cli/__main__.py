"""`python -m affect_sdk.cli` (torchrun and the tests start the command line this way)."""
from affect_sdk.cli import main

main()
