"""Stand-in for the get-pip.py that ansible-test downloads to seed pip into its venvs.

ansible-test fetches get-pip.py from a host this machine cannot reach; this does the same
job from Python's bundled pip (ensurepip) and then installs the requested pip from PyPI.
It takes get-pip.py's arguments: pip install arguments plus --no-setuptools/--no-wheel.
"""

import subprocess
import sys

GET_PIP_ONLY_OPTIONS = {"--no-setuptools", "--no-wheel"}

subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True, stdout=subprocess.DEVNULL)
arguments = [argument for argument in sys.argv[1:] if argument not in GET_PIP_ONLY_OPTIONS]
sys.exit(
    subprocess.call([sys.executable, "-m", "pip", "install", "--upgrade", "--force-reinstall", *arguments])
)
