"""Bad input gets a clear error: the right status and a JSON body naming the field."""

from __future__ import annotations

import httpx

from tests.e2e.harness import deploy, wait_terminal

OK = "def handler(e, c):\n    return 'ok'\n"


def error_of(resp: httpx.Response, status: int) -> dict[str, str]:
    assert resp.status_code == status, resp.text
    return dict(resp.json()["error"])


def test_unknown_function_is_404(http: httpx.Client) -> None:
    err = error_of(http.post("/v1/functions/ghost/invocations", content=b"x"), 404)
    assert err["code"] == "function_not_found"
    assert error_of(http.get("/v1/functions/ghost"), 404)["code"] == "function_not_found"
    assert error_of(http.get("/v1/tasks/nope"), 404)["code"] == "task_not_found"


def test_invalid_config_is_422_naming_the_field(http: httpx.Client) -> None:
    cases = [
        ({"runtime": "python", "handler": "main:handler", "timeout_s": 0}, "timeout_s"),
        (
            {"runtime": "python", "handler": "main:handler", "async": {"max_retries": 9}},
            "async.max_retries",
        ),
        ({"runtime": "python"}, "handler"),
        ({"runtime": "python", "handler": "not a handler"}, "handler"),
        ({"runtime": "command"}, "command"),
        ({"runtime": "python", "handler": "m:h", "colour": "red"}, "colour"),
        (
            {"runtime": "python", "handler": "m:h", "min_instances": 5, "max_instances": 2},
            "min_instances",
        ),
    ]
    for config, field in cases:
        err = error_of(http.put("/v1/functions/f", json=config), 422)
        assert err["field"] == field, (config, err)
        assert err["message"]
    assert http.get("/v1/functions").json()["items"] == []


def test_bad_function_name_is_422(http: httpx.Client) -> None:
    err = error_of(http.put("/v1/functions/9bad!", json={"handler": "m:h"}), 422)
    assert err["field"] == "name"


def test_code_that_is_not_a_zip_is_400_and_nothing_changes(http: httpx.Client) -> None:
    deploy(http, "f", None)
    err = error_of(http.put("/v1/functions/f/code", content=b"not a zip"), 400)
    assert err["field"] == "body"
    assert http.get("/v1/functions/f").json()["code_sha256"] is None


def test_function_without_code_is_not_ready(http: httpx.Client) -> None:
    deploy(http, "f", None)
    err = error_of(http.post("/v1/functions/f/invocations", content=b"x"), 409)
    assert err["code"] == "function_not_ready"


def test_bad_headers_are_400_naming_the_header(http: httpx.Client) -> None:
    deploy(http, "f", OK)
    cases = {
        "X-Delay-Seconds": "soon",
        "X-Priority": "99",
        "X-Run-At": "tomorrow",
        "X-Task-Id": "has spaces",
        "X-Invocation-Type": "Eventually",
    }
    for header, value in cases.items():
        resp = http.post("/v1/functions/f/invocations", content=b"x", headers={header: value})
        assert error_of(resp, 400)["field"] == header
    assert http.get("/v1/tasks").json()["items"] == []


def test_duplicate_task_id_is_409_with_the_existing_task(http: httpx.Client) -> None:
    deploy(http, "f", OK)
    first = http.post("/v1/functions/f/invocations", content=b"1", headers={"X-Task-Id": "job-1"})
    assert first.status_code == 202 and first.json()["task_id"] == "job-1"
    wait_terminal(http, "job-1")
    again = http.post("/v1/functions/f/invocations", content=b"2", headers={"X-Task-Id": "job-1"})
    err = error_of(again, 409)
    assert err["code"] == "duplicate_task"
    assert err["task_id"] == "job-1" and err["status"] == "Succeeded"
    assert http.get("/v1/tasks/job-1").json()["payload"] == "1"


def test_payload_over_the_limit_is_413(http: httpx.Client) -> None:
    deploy(http, "f", OK)
    resp = http.post("/v1/functions/f/invocations", content=b"x" * ((1 << 20) + 1))
    assert error_of(resp, 413)["code"] == "payload_too_large"


def test_bad_batch_is_rejected_whole(http: httpx.Client) -> None:
    deploy(http, "f", OK)
    assert error_of(http.post("/v1/functions/f/invocations:batch", content=b"[1,"), 400)
    assert error_of(http.post("/v1/functions/f/invocations:batch", json=[]), 400)
    too_many = http.post("/v1/functions/f/invocations:batch", json=list(range(1001)))
    assert error_of(too_many, 400)["field"] == "body"
    bad_item = http.post(
        "/v1/functions/f/invocations:batch", json=[1, {"payload": 2, "priority": 50}]
    )
    assert error_of(bad_item, 422)["field"] == "[1].priority"
    assert http.get("/v1/tasks").json()["items"] == []


def test_unknown_route_uses_the_error_shape(http: httpx.Client) -> None:
    assert error_of(http.get("/v1/nothing-here"), 404)["code"] == "not_found"


def test_deleting_a_function_invalidates_its_queued_tasks(http: httpx.Client) -> None:
    deploy(http, "f", OK)
    resp = http.post(
        "/v1/functions/f/invocations", content=b"x", headers={"X-Delay-Seconds": "3600"}
    )
    task_id = resp.json()["task_id"]
    assert http.delete("/v1/functions/f").status_code == 204
    task = http.get(f"/v1/tasks/{task_id}").json()
    assert task["status"] == "Invalid"
    assert error_of(http.get("/v1/functions/f"), 404)


def test_openapi_documents_every_route_including_the_fast_path(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    for path in [
        "/v1/functions/{name}",
        "/v1/functions/{name}/code",
        "/v1/functions/{name}/invocations",
        "/v1/functions/{name}/invocations:batch",
        "/v1/tasks",
        "/v1/tasks/{task_id}",
        "/v1/tasks/{task_id}/logs",
    ]:
        assert path in paths, path


def test_invocation_of_a_nameless_path_falls_through_to_404(http: httpx.Client) -> None:
    assert error_of(http.post("/v1/functions//invocations"), 404)["code"] == "not_found"


def test_a_json_body_sent_as_a_form_is_415_naming_content_type(http: httpx.Client) -> None:
    body = b'{"function": "f", "every_s": 60}'
    form = {"Content-Type": "application/x-www-form-urlencoded"}  # what `curl -d` sends
    err = error_of(http.put("/v1/schedules/s", content=body, headers=form), 415)
    assert err["field"] == "Content-Type"
    assert "application/json" in err["message"]
    filtered = b'{"filter": {"function": "f"}, "dry_run": true}'
    assert error_of(http.post("/v1/tasks:stop", content=filtered, headers=form), 415)
    assert http.get("/v1/schedules/s").status_code == 404  # nothing was stored
    typed = http.post("/v1/tasks:stop", json={"filter": {"function": "f"}, "dry_run": True})
    assert typed.status_code == 200 and typed.json()["count"] == 0
