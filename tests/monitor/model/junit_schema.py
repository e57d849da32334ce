"""Validating a check's JUnit XML against the xunit2 schema pytest's own tests use.

``predeploy_data/junit-10.xsd`` is vendored from pytest's repository (see its header). CI
servers that read JUnit XML with that schema reject a file that breaks it, so the check's
files must keep to it: under xunit2 ``<properties>`` may appear in ``<testsuite>`` only.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import xmlschema

SCHEMA_PATH = Path(__file__).resolve().parent / "predeploy_data" / "junit-10.xsd"
#: errors listed in a failure message (the first ones say what is wrong; the rest repeat it)
SHOWN_ERRORS = 5


@cache
def junit_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(SCHEMA_PATH))


def schema_errors(path: Path) -> list[str]:
    """Each way ``path`` breaks the xunit2 schema, as ``where: why`` (empty: it is valid)."""
    return [
        f"{error.path or '/'}: {error.reason or error.message}"
        for error in junit_schema().iter_errors(str(path))
    ]


def assert_valid_junit(path: Path) -> None:
    """Fail naming where and how ``path`` breaks the xunit2 schema."""
    errors = schema_errors(path)
    if not errors:
        return
    shown = "\n".join(f"  {e}" for e in errors[:SHOWN_ERRORS])
    more = f"\n  … and {len(errors) - SHOWN_ERRORS} more" if len(errors) > SHOWN_ERRORS else ""
    raise AssertionError(
        f"{path} is not valid xunit2 JUnit XML ({SCHEMA_PATH.name}): "
        f"{len(errors)} error{'s' if len(errors) != 1 else ''}\n{shown}{more}\n"
        "(<properties> belongs in <testsuite> only: record measurements with "
        "record_testsuite_property, never in a test's user_properties)"
    )
