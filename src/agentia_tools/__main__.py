"""`python -m agentia_tools` is the `agentia` command."""

from agentia_tools.cli.main import run

if __name__ == "__main__":
    run()
