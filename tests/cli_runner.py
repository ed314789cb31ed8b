"""The command line run in the test's own process (the embedded model stays loaded between tests)."""

from selfcascade.ui.cli import main


def run_cli(capsys, *arguments) -> tuple[int, str, str]:
    """`python -m selfcascade generate ...` in this process: (exit code, stdout, stderr)."""
    try:
        code = main(["generate", *map(str, arguments)])
    except SystemExit as exit_:  # argparse's errors
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err
