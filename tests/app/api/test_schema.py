"""Property-based API tests from the OpenAPI schema: no request gets a server error."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from app.main import create_app
from app.settings import Settings

_dir = Path(tempfile.mkdtemp(prefix="peft-planner-schema-"))
(_dir / "models").mkdir()
APP = create_app(Settings(db=str(_dir / "service.db"), models_root=_dir / "models"), run_jobs=False)
# /readyz answers 503 by design here (no job runner); it is tested in test_api_health.
schema = schemathesis.openapi.from_asgi("/openapi.json", APP).exclude(path="/readyz")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case) -> None:
    # Cross-field rules (exactly one of profile_id/problem, of name/config/path) are not
    # expressible in the schema, so schema-valid bodies may rightly get a 422.
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
