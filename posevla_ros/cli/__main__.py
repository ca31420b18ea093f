"""`python -m posevla_ros.cli` = the `posevla` command."""
import sys

from posevla_ros.cli import main

sys.exit(main())
