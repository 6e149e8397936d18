"""Property-based API tests from the OpenAPI schema: no request gets a server error.

Path parameters are replaced by ids of stored rows (a profile, a plan of it, a dataset, a job), so the
routes behind them run on real data rather than answering 404.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from app.main import create_app
from app.settings import Settings
from tests.app.service_helpers import store_profile, synthetic_profile

_dir = Path(tempfile.mkdtemp(prefix="peft-planner-schema-"))
(_dir / "models").mkdir()
SETTINGS = Settings(db=str(_dir / "service.db"), models_root=_dir / "models")
APP = create_app(SETTINGS, run_jobs=False)
# /readyz answers 503 by design here (no job runner); it is tested in test_health.
schema = schemathesis.openapi.from_asgi("/openapi.json", APP).exclude(path="/readyz")


def _stored_ids() -> dict[str, str]:
    profile_id = store_profile(SETTINGS.db, synthetic_profile())
    with TestClient(APP) as client:
        plan = client.post("/v1/plans", json={"profile_id": profile_id, "budget": {"params": "50%"}}).json()
        rows = "\n".join(f'{{"text": "text {i}", "label": {i % 2}}}' for i in range(8))
        dataset = client.post("/v1/datasets", content=rows, headers={"content-type": "application/x-ndjson"}).json()
        job = client.post(f"/v1/profiles/{profile_id}/gains", json={"source": "prior"}).json()
    return {"profile_id": profile_id, "plan_id": plan["id"], "dataset_id": dataset["id"], "job_id": job["id"]}


STORED = _stored_ids()


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case) -> None:
    for name in case.path_parameters or {}:
        if name in STORED:
            case.path_parameters[name] = STORED[name]
    # Cross-field rules (exactly one of profile_id/problem, of name/config/path) are not
    # expressible in the schema, so schema-valid bodies may rightly get a 422.
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
