"""Package discovery only; all metadata is in pyproject.toml.

``find`` cannot discover ``ttmt_monitor.resources`` because it lives outside app/ (mapped in pyproject's
package-dir), so it is added here by name, with its folders (data, icons, sounds, styles). Those folders hold no
Python, but their names are valid package names, so Python could import them (namespace packages) and
setuptools warns "Package 'ttmt_monitor.resources.data' is absent from the `packages` configuration" for each
one a build meets; listing them says they are meant to ship (their files come in by pyproject's package-data).
"""

from pathlib import Path

from setuptools import find_packages, setup

RESOURCES = Path(__file__).resolve().parent / "resources"


def resource_packages() -> list[str]:
    names = ["ttmt_monitor.resources"]
    for folder in sorted(p for p in RESOURCES.rglob("*") if p.is_dir() and p.name != "__pycache__"):
        parts = folder.relative_to(RESOURCES).parts
        if all(part.isidentifier() for part in parts):  # e.g. not data/signal-corpus: nothing can import it
            names.append(".".join(("ttmt_monitor.resources", *parts)))
    return names


setup(packages=find_packages("app") + resource_packages())
