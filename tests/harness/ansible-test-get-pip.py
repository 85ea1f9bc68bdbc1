"""Stand-in for the get-pip.py that ansible-test downloads from a host these machines cannot reach.

ansible-test runs this inside each fresh sanity venv (via runpy, with pip's own arguments in
sys.argv): bootstrap pip from the standard library's ensurepip, then let that pip install
the version ansible-test asked for from the package index.
"""

import subprocess
import sys

# In a child process: ensurepip points PIP_CONFIG_FILE at /dev/null in its own environment,
# which would hide the machine's pip configuration (CA bundle, indexes) from the install below.
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
arguments = [argument for argument in sys.argv[1:] if argument not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + arguments))
