"""/v1/datasets: upload a labelled dataset (JSONL text or NPZ arrays), validated and stored."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from app.bodies import AsciiJSONResponse, StrictRoute
from app.dependencies import Db, Paging
from app.errors import ApiError, found, problem_responses
from app.schemas import Page
from app.store import datasets as dataset_store
from app.store.tables import DatasetRow
from profiler.training.datasets import DatasetError, parse_dataset

router = APIRouter(prefix="/v1/datasets", tags=["datasets"], route_class=StrictRoute)
_BINARY = {"schema": {"type": "string", "format": "binary"}}


class DatasetOut(BaseModel):
    """A stored dataset: what it holds, not its bytes."""

    id: str
    name: str
    format: str
    sha256: str
    size_bytes: int
    summary: dict[str, Any]
    created_at: datetime


def dataset_out(row: DatasetRow) -> DatasetOut:
    """A stored dataset as its API representation."""
    return DatasetOut(id=row.id, name=row.name, format=row.format, sha256=row.sha256, size_bytes=row.size_bytes,
                      summary=row.summary, created_at=row.created_at)


@router.post(
    "", status_code=201, response_model=DatasetOut, responses=problem_responses(413, 422),
    summary="Upload a dataset: JSONL lines {\"text\", \"label\"} or an NPZ with arrays x, y",
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/x-ndjson": _BINARY, "application/octet-stream": _BINARY}}},
)
async def create_dataset(
    request: Request, session: Db,
    format: Annotated[Literal["jsonl", "npz"], Query(description="How the body is encoded.")] = "jsonl",
    name: Annotated[str, Query(min_length=1, max_length=200)] = "dataset",
) -> AsciiJSONResponse:
    """Validate the body (size-limited by the service's body limit) and store it; 201 with its summary."""
    body = await request.body()
    try:
        summary = parse_dataset(body, format).summary()
    except DatasetError as exc:
        raise ApiError(422, f"invalid {format} dataset: {exc}") from exc
    row = dataset_store.add(session, name, format, hashlib.sha256(body).hexdigest(), summary, body)
    response = AsciiJSONResponse(dataset_out(row).model_dump(mode="json"), status_code=201,
                                 headers={"Location": f"/v1/datasets/{row.id}"})
    session.commit()  # only once the response is built: nothing is stored that cannot be read back
    return response


@router.get("", response_model=Page[DatasetOut], responses=problem_responses(422))
def list_datasets(session: Db, paging: Paging) -> Page[DatasetOut]:
    """Stored datasets, newest first."""
    rows, total = dataset_store.page(session, paging.limit, paging.offset)
    return Page(items=[dataset_out(r) for r in rows], total=total, limit=paging.limit, offset=paging.offset)


@router.get("/{dataset_id}", response_model=DatasetOut, responses=problem_responses(404))
def get_dataset(dataset_id: str, session: Db) -> DatasetOut:
    """One stored dataset's summary."""
    return dataset_out(found(session.get(DatasetRow, dataset_id), "dataset", dataset_id))
