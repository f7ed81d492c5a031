"""A command-runtime example: the payload arrives on stdin, stdout is the result, stderr the log."""

import sys

text = sys.stdin.read()
print(f"shouting {len(text)} characters", file=sys.stderr)
sys.stdout.write(text.upper())
