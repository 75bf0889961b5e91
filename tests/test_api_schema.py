"""The OpenAPI schema is valid, lists every endpoint with its refusals, and the docs are served offline."""

from __future__ import annotations

import pytest
import yaml
from drf_spectacular.validation import validate_schema

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_the_schema_is_valid_openapi(schema):
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")


@pytest.mark.parametrize(
    ("path", "method", "codes"),
    [
        ("/api/v1/cases/", "post", {"200", "201", "400", "401", "403", "413"}),
        ("/api/v1/cases/bulk/", "post", {"200", "400", "401", "413"}),
        ("/api/v1/cases/{id}/", "get", {"200", "401", "404"}),
        ("/api/v1/categories/", "post", {"201", "400", "401", "403"}),
        ("/api/v1/categories/{slug}/policy/", "patch", {"200", "400", "403", "404"}),
        ("/api/v1/categories/{slug}/pause/", "post", {"200", "400", "403", "404", "409"}),
        ("/api/v1/categories/{slug}/resume/", "post", {"200", "400", "403", "404", "409"}),
        ("/api/v1/model-versions/", "post", {"201", "400", "403", "409"}),
        ("/api/v1/model-versions/{id}/promote/", "post", {"200", "400", "403", "404"}),
        ("/api/v1/queues/", "get", {"200", "401"}),
        ("/api/v1/audit/", "get", {"200", "400", "401"}),
    ],
)
def test_each_endpoint_documents_its_error_responses(schema, path, method, codes):
    responses = set(schema["paths"][path][method]["responses"])
    assert codes <= responses, f"{method.upper()} {path} documents {sorted(responses)}"


def test_the_docs_page_is_served_without_internet(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    # Assets come from drf-spectacular-sidecar (our own static files), never from a CDN.
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html
    assert "/static/drf_spectacular_sidecar/" in html
