"""The env file, read as the real guardrails eval reads it.

Each `KEY=VALUE` line (stripped; blank lines, `#` lines and lines without `=` skipped) sets KEY,
unless KEY is already in the environment. The value is stripped, then single and double quotes are
stripped from both ends. Nothing else: an inline `# comment` stays in the value and an `export `
prefix stays in the key, exactly as the real CLI does (python-dotenv would read both differently).
"""

import os


def read_env_file(path):
    """KEY -> VALUE of the file, in the eval's reading; {} when there is no file."""
    values = {}
    if not path or not os.path.isfile(path):
        return values
    with open(path, encoding="utf-8") as handle:
        for raw_line in handle.read().splitlines():
            line = raw_line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, value = line.split("=", 1)
            key = key.strip()
            value = value.strip().strip("'").strip('"')
            if key and key not in values:  # the first line of a key wins: it set the variable
                values[key] = value
    return values


def load_env_file(path):
    """Sets every variable of the file that is not already set."""
    for key, value in read_env_file(path).items():
        if key not in os.environ:
            os.environ[key] = value
