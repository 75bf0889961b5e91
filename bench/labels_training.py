"""bench/labels.py's training and prediction: `train_model` on the gated labels of a scratch database of
its own, the trained predictor timed one call at a time (its lean path and scikit-learn's beside it), and what
a prediction adds to an intake request in this process (unanswered requests against answered ones).
"""

from __future__ import annotations

import argparse
import random
import time
from contextlib import nullcontext
from dataclasses import replace
from typing import Any
from unittest import mock

from common import BenchError, ScratchDatabase, migrate, use_database
from common_measure import latency_summary
from labels_data import CATEGORY_SLUG, REVIEWERS, create_fixture, generate

PREDICTION_WARMUP = 20


# --- Training and prediction ----------------------------------------------------------------------------------


def run_training(labels: int, database: ScratchDatabase, args: argparse.Namespace) -> dict[str, Any]:
    from governance.models import Category
    from governance.predictor import input_text, load_predictor
    from metrics.services.training import train_model

    database.create()
    print(f"\n=== training on {labels:,} labels: scratch database {database.name!r} created; migrating ...")
    use_database(database.name)
    migrate()
    fx = create_fixture(certified=REVIEWERS)  # every label gated: all of them are training data
    generation = generate(fx, labels, args.seed + 1)
    category = Category.objects.get(pk=fx.category_id)
    print(f"  train_model on {labels:,} gated labels ...", flush=True)
    t0 = time.perf_counter()
    result = train_model(category=category)
    seconds = time.perf_counter() - t0
    metrics = result.model_version.metrics
    print(
        f"  trained in {seconds:.1f} s (the service's own count {result.seconds:.1f} s); held-out accuracy "
        f"{metrics['accuracy']:.3f}, macro F1 {metrics['macro_f1']:.3f} on {metrics['n']:,}",
        flush=True,
    )

    t0 = time.perf_counter()
    predictor = load_predictor(result.model_version)
    load_ms = (time.perf_counter() - t0) * 1000
    if predictor.lean is None:
        raise BenchError(f"{result.model_version.label} has no lean prediction path: build_estimator changed shape?")
    sklearn_predictor = replace(predictor, lean=None)
    inputs = list(
        category.cases.order_by("-id").values_list("input", flat=True)[: args.predictions + PREDICTION_WARMUP]
    )
    pii_fields = category.pii_fields
    for value in inputs[:PREDICTION_WARMUP]:
        text = input_text(value, pii_fields=pii_fields)
        predictor.predict([text])
        sklearn_predictor.predict([text])
    # The two paths one after the other on each input, so a burst of load on the shared machine hits both.
    # The thread's CPU time beside the wall clock: on a shared machine a call descheduled mid-way shows in the
    # wall-clock tail, not in its CPU time.
    with_text_ms, predict_ms, sklearn_ms, predict_cpu_ms, sklearn_cpu_ms = [], [], [], [], []
    for value in inputs[PREDICTION_WARMUP:]:
        t0 = time.perf_counter()
        text = input_text(value, pii_fields=pii_fields)
        t1, c1 = time.perf_counter(), time.thread_time()
        predictor.predict([text])
        t2, c2 = time.perf_counter(), time.thread_time()
        sklearn_predictor.predict([text])
        t3, c3 = time.perf_counter(), time.thread_time()
        with_text_ms.append((t2 - t0) * 1000)
        predict_ms.append((t2 - t1) * 1000)
        sklearn_ms.append((t3 - t2) * 1000)
        predict_cpu_ms.append((c2 - c1) * 1000)
        sklearn_cpu_ms.append((c3 - c2) * 1000)
    prediction = latency_summary(with_text_ms, (50, 95, 99), digits=3)
    sklearn_summary = latency_summary(sklearn_ms, (50, 95, 99), digits=3)
    print(
        f"  predictor loaded in {load_ms:.0f} ms; {len(with_text_ms)} predictions (input_text + predict): "
        f"p50 {prediction['p50_ms']:.2f} ms, p99 {prediction['p99_ms']:.2f} ms, max {prediction['max_ms']:.2f} ms; "
        f"scikit-learn's predict_proba: p50 {sklearn_summary['p50_ms']:.2f} ms, p99 {sklearn_summary['p99_ms']:.2f} ms",
        flush=True,
    )
    intake = measure_intake(result.model_version, sklearn_predictor, inputs, args)
    return {
        "labels": labels,
        "database": database.name,
        "generation": generation,
        "training": {
            "seconds": round(seconds, 1),
            "service_training_seconds": result.seconds,
            "model_version": result.model_version.label,
            "n_train": metrics["n_train"],
            "n_held_out": metrics["n"],
            "accuracy": metrics["accuracy"],
            "macro_f1": metrics["macro_f1"],
            "artifact_bytes": len(bytes(result.model_version.artifact.data)),
        },
        "prediction": {
            "load_ms": round(load_ms, 1),
            "measured": "governance.predictor: input_text(input, pii_fields) + Predictor.predict([text]) on the lean "
            "path, one case a call, in this process; sklearn_predict_proba: the same predictor without its lean "
            "path (scikit-learn's predict_proba), timed right after on the same text",
            **prediction,
            "predict_only": latency_summary(predict_ms, (50, 95, 99), digits=3),
            "predict_only_cpu": latency_summary(predict_cpu_ms, (50, 95, 99), digits=3),
            "sklearn_predict_proba": sklearn_summary,
            "sklearn_predict_proba_cpu": latency_summary(sklearn_cpu_ms, (50, 95, 99), digits=3),
        },
        "intake": intake,
    }


def measure_intake(version: Any, sklearn_predictor: Any, inputs: list[Any], args: argparse.Namespace) -> dict[str, Any]:
    """What a prediction adds to intake: the trained version promoted to active, then for each of
    `--intake-requests` inputs, in this process through Django's test client, POST /api/v1/cases/ three times on
    fresh external ids: without an answer (the lean path predicts), without one again with scikit-learn's
    predict_proba predicting, and with the answer the model would give sent by the client (the same label and
    confidence, so the case is routed the same way). Each request's time less the answered one's, per input."""
    from django.contrib.auth.models import User
    from django.test import Client
    from guardian.shortcuts import assign_perm
    from rest_framework.authtoken.models import Token

    from cases.services.intake import router as intake_router
    from cases.services.prediction import predictor_for
    from governance.predictor import input_text
    from governance.services import promote_model_version

    version = promote_model_version(model_version=version, status="active", user=None, reason="bench: predict")
    user = User.objects.create_user(username="bench-integration")
    assign_perm("governance.submit_case", user, version.category)
    client = Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}", HTTP_HOST="127.0.0.1")
    lean = predictor_for(version)
    pii_fields = version.category.pii_fields
    sent = inputs[PREDICTION_WARMUP:][: args.intake_requests]
    answers = [lean.predict([input_text(value, pii_fields=pii_fields)])[0] for value in sent]

    def post(body: dict[str, Any]) -> float:
        t0 = time.perf_counter()
        response = client.post("/api/v1/cases/", body, content_type="application/json")
        elapsed = (time.perf_counter() - t0) * 1000
        if response.status_code != 201:
            raise BenchError(f"POST /api/v1/cases/ answered {response.status_code}: {response.content[:300]!r}")
        return elapsed

    def body(i: int, kind: str, value: Any) -> dict[str, Any]:
        return {"category": CATEGORY_SLUG, "external_id": f"predict-{kind}-{i:05d}", "input": value}

    def sklearn_for(wanted: Any) -> Any:
        return sklearn_predictor

    # Intake's own prediction step (the router's _answer_unanswered: check the version, the texts, predict), timed
    # inside each request: on a loaded machine a whole request varies by far more than a prediction costs.
    step_ms: list[float] = []
    answer_unanswered = intake_router.Router._answer_unanswered

    def timed_step(router: Any, items: Any) -> Any:
        t0 = time.perf_counter()
        answered_items = answer_unanswered(router, items)
        step_ms.append((time.perf_counter() - t0) * 1000)
        return answered_items

    def timed_post(request: dict[str, Any]) -> tuple[float, float]:
        step_ms.clear()
        with mock.patch.object(intake_router.Router, "_answer_unanswered", timed_step):
            elapsed = post(request)
        return elapsed, sum(step_ms)

    for i, value in enumerate(inputs[:PREDICTION_WARMUP]):  # one-off lookups (content types, caches) uncounted
        post(body(i, "warm", value))
    rng = random.Random(args.seed)
    kinds = ["lean", "sklearn", "answered"]
    timings: dict[str, list[float]] = {kind: [] for kind in kinds}
    steps: dict[str, list[float]] = {kind: [] for kind in kinds}
    for i, (value, (label, confidence)) in enumerate(zip(sent, answers, strict=True)):
        rng.shuffle(kinds)  # no kind always first after the previous input's requests
        for kind in kinds:
            request = body(i, kind, value)
            if kind == "answered":
                request.update(output={"label": label}, confidence=confidence, model_version=version.label)
            with mock.patch.object(intake_router, "predictor_for", sklearn_for) if kind == "sklearn" else nullcontext():
                elapsed, step = timed_post(request)
            timings[kind].append(elapsed)
            steps[kind].append(step)
    added = {
        path: [a - b for a, b in zip(timings[path], timings["answered"], strict=True)] for path in ("lean", "sklearn")
    }
    step_added = {
        path: [a - b for a, b in zip(steps[path], steps["answered"], strict=True)] for path in ("lean", "sklearn")
    }
    result: dict[str, Any] = {
        "measured": "POST /api/v1/cases/ in this process (Django test client, token auth), a category whose active "
        "version is built-in: without output (lean path; scikit-learn's path) and with the model's own answer "
        "sent, on the same input one after the other; added = unanswered less answered, per input",
        "requests": len(sent),
        "answered": latency_summary(timings["answered"], (50, 99), digits=3),
        **{f"unanswered_{path}": latency_summary(timings[path], (50, 99), digits=3) for path in added},
        **{f"added_{path}": latency_summary(ms, (50, 99), digits=3) for path, ms in added.items()},
        "prediction_step": "time inside each request in intake's prediction step (cases.services.intake.router "
        "Router._answer_unanswered), unanswered less answered (where the step returns at once)",
        **{f"step_added_{path}": latency_summary(ms, (50, 99), digits=3) for path, ms in step_added.items()},
    }
    print(
        f"  intake, {len(sent)} requests each: answered p50 {result['answered']['p50_ms']:.2f} ms; a prediction adds "
        + "; ".join(
            f"{path} p50 {result[f'added_{path}']['p50_ms']:.2f} / p99 {result[f'added_{path}']['p99_ms']:.2f} ms "
            f"(its step in intake p50 {result[f'step_added_{path}']['p50_ms']:.2f} / "
            f"p99 {result[f'step_added_{path}']['p99_ms']:.2f} ms)"
            for path in added
        ),
        flush=True,
    )
    return result
