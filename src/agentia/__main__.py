"""`python -m agentia` is the `agentia` command."""

from agentia.cli.main import run

if __name__ == "__main__":
    run()
