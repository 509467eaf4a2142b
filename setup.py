"""Package discovery only; all metadata is in pyproject.toml.

``find`` cannot discover ``ttmt_monitor.resources`` because it lives outside app/ (mapped in pyproject's
package-dir), so it is added here by name.
"""

from setuptools import find_packages, setup

setup(packages=find_packages("app") + ["ttmt_monitor.resources"])
