"""Double review (DESIGN.md, Feedback loop): a share of human-decided cases, drawn by the case's hash, gets a second,
blind review by another person with the same grants; a disagreement goes to adjudication in the expert queue, whose
label supersedes both; and nothing that already acted changes."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from cases.models import Case, Queue
from cases.routing import draws_double_review
from governance.choices import AuditKind
from governance.exceptions import Conflict
from governance.models import AuditEvent, Category
from governance.services import update_policy
from reviews import services
from reviews.models import DoubleReview, Label
from tests.factories import grant_queue, login, make_case, make_category

pytestmark = pytest.mark.django_db

# Words that appear nowhere else on a page, so "not on the page" means not shown.
MODEL_SAYS = "zebra-from-the-model"
FIRST_SAYS = "quokka-from-the-first-reviewer"


# --- the draw: pure, deterministic, at its rate ---


@given(
    slug=st.text(min_size=1, max_size=20),
    external_id=st.text(min_size=1, max_size=40),
    version=st.integers(min_value=1, max_value=10_000),
    rate=st.floats(min_value=0, max_value=1),
)
def test_the_draw_is_deterministic_and_monotone_in_the_rate(slug: str, external_id: str, version: int, rate: float):
    drawn = draws_double_review(slug, external_id, version, rate)
    assert drawn == draws_double_review(slug, external_id, version, rate)
    assert not draws_double_review(slug, external_id, version, 0.0)
    assert draws_double_review(slug, external_id, version, 1.0)
    if drawn:  # a case drawn at a rate is drawn at every higher rate: raising the rate only adds cases
        assert draws_double_review(slug, external_id, version, min(1.0, rate + 0.1))


@given(rate=st.sampled_from([0.05, 0.2, 0.5]), version=st.integers(min_value=1, max_value=50))
def test_the_draw_hits_roughly_its_rate(rate: float, version: int):
    n = 4000
    hits = sum(draws_double_review("cat", f"ext-{i}", version, rate) for i in range(n))
    # Four standard deviations of a binomial: a failure here is a broken hash, not bad luck.
    assert abs(hits / n - rate) < 4 * (rate * (1 - rate) / n) ** 0.5


# --- who does what ---


@pytest.fixture
def category() -> Category:
    return make_category("dbl", auto_threshold=0.9, review_threshold=0.6, double_review_rate=1.0)


def queue(kind: str) -> Queue:
    return Queue.objects.get(slug=f"dbl-{kind}")


@pytest.fixture
def people(make_user: Any, category: Category) -> dict[str, User]:
    """ann, bob and cat work the quick and full queues; eve works the expert queue; out works nothing here."""
    found = {}
    for name in ("ann", "bob", "cat"):
        user = make_user(name, roles=["Reviewer"], is_staff=True)
        grant_queue(user, queue("quick"))
        grant_queue(user, queue("full"))
        found[name] = user
    found["eve"] = make_user("eve", roles=["Reviewer"], is_staff=True)
    grant_queue(found["eve"], queue("expert"))
    found["out"] = make_user("out", roles=["Reviewer"], is_staff=True)
    return {name: User.objects.get(pk=user.pk) for name, user in found.items()}


def decided(category: Category, user: User, *, label: str | None = None, **fields: Any) -> Case:
    """A quick-review case decided by `user`: approved, or corrected to `label`."""
    case = make_case(category, confidence=0.8, output={"label": MODEL_SAYS, "text": "model draft"}, **fields)
    if label is None:
        services.decide(case=case, user=user, action="approve")
    else:
        services.decide(case=case, user=user, action="correct", output={"label": label})
    case.refresh_from_db()
    return case


def fresh(user: User) -> User:
    """The user read again: grants are cached on the object that read them."""
    return User.objects.get(pk=user.pk)


def task_of(case: Case) -> DoubleReview:
    return DoubleReview.objects.get(case=case)


def frozen(case: Case) -> tuple[Any, ...]:
    """What acted: the case's state, which no double review may change."""
    case = Case.objects.get(pk=case.pk)
    return (case.status, case.final_output, case.decided_at, case.queue_id, case.history.count())


def test_a_drawn_verdict_opens_a_second_review_for_its_queue(category, people):
    case = decided(category, people["ann"], label=FIRST_SAYS)
    task = task_of(case)
    assert (task.status, task.first_reviewer, task.queue, task.policy_version) == (
        "second_review",
        people["ann"],
        queue("quick"),
        1,
    )
    assert task.first_label == Label.objects.get(case=case, source="correct")
    assert 0 <= task.draw < 1
    event = AuditEvent.objects.filter(case_id=case.pk, kind=AuditKind.CASE_DECIDED).get()
    assert event.payload["double_review"] == task.pk


def test_decide_opens_exactly_the_cases_the_pure_draw_picks(category, people):
    update_policy(category=category, user=None, changes={"double_review_rate": 0.5}, reason="half")
    cases = [decided(category, people["ann"]) for _ in range(30)]
    expected = {case.pk for case in cases if draws_double_review("dbl", case.external_id, 2, 0.5)}
    assert set(DoubleReview.objects.values_list("case_id", flat=True)) == expected
    assert 0 < len(expected) < 30
    assert set(DoubleReview.objects.values_list("policy_version", flat=True)) == {2}


def test_at_rate_zero_nothing_is_double_reviewed(people):
    zero = make_category("zero", auto_threshold=0.9, review_threshold=0.6, double_review_rate=0.0)
    grant_queue(people["ann"], Queue.objects.get(slug="zero-quick"))
    decided(zero, fresh(people["ann"]))
    assert not DoubleReview.objects.exists()


def test_rejects_escalations_audits_and_shadow_verdicts_are_not_double_reviewed(category, people):
    rejected = make_case(category, confidence=0.8)
    services.decide(case=rejected, user=people["ann"], action="reject", reason_code="other")
    escalated = make_case(category, confidence=0.8)
    services.decide(case=escalated, user=people["ann"], action="escalate", reason_code="needs_expert")
    services.decide(case=escalated, user=people["eve"], action="approve")  # the expert's final word
    shadow = make_category("shd", stage="shadow", double_review_rate=1.0)
    audited = make_category("aud", audit_rate=1.0, double_review_rate=1.0)
    grant_queue(people["ann"], Queue.objects.get(slug="shd-full"))
    grant_queue(people["ann"], Queue.objects.get(slug="aud-audit"))
    ann = fresh(people["ann"])
    services.decide(case=make_case(shadow), user=ann, action="approve", output={"label": "x"})
    auto = make_case(audited, confidence=0.99)
    assert auto.audit_status == "pending"
    services.decide(case=auto, user=ann, action="confirm")
    assert Label.objects.filter(source__in=["shadow", "audit_confirm", "escalation"]).count() == 3
    assert not DoubleReview.objects.exists()


def test_the_first_reviewer_is_refused_and_never_offered_the_task(category, people):
    case = decided(category, people["ann"])
    task = task_of(case)
    with pytest.raises(PermissionDenied, match="first verdict"):
        services.submit_second_review(task=task, user=people["ann"], output={"label": "x"})
    with pytest.raises(PermissionDenied, match="first verdict"):
        services.claim_double_review(task=task, user=people["ann"])
    assert not DoubleReview.objects.for_worker(people["ann"], None).exists()  # not even as a superuser would
    assert DoubleReview.objects.for_worker(people["bob"], {queue("quick").pk}).get() == task
    client = login(people["ann"])
    assert client.get(reverse("admin:reviews_work_double_task", args=[task.pk])).status_code == 404
    assert f"#{task.pk}" not in client.get(reverse("admin:reviews_work_double")).content.decode()
    task.refresh_from_db()
    assert (task.status, task.second_reviewer, task.claimed_by) == ("second_review", None, None)


def test_someone_without_the_queue_grant_is_refused(category, people):
    task = task_of(decided(category, people["ann"]))
    with pytest.raises(PermissionDenied, match="dbl-quick"):
        services.submit_second_review(task=task, user=people["out"], output={"label": "x"})
    assert login(people["out"]).get(reverse("admin:reviews_work_double_task", args=[task.pk])).status_code == 404


def test_the_second_review_page_is_blind(category, people):
    case = decided(category, people["ann"], label=FIRST_SAYS, input={"text": "Parcel never arrived at the depot"})
    task = task_of(case)
    page = login(people["bob"]).get(reverse("admin:reviews_work_double_task", args=[task.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Parcel never arrived at the depot" in html
    for hidden in (FIRST_SAYS, MODEL_SAYS, "model draft", "ann", case.external_id):
        assert hidden not in html, hidden


def test_an_agreeing_second_review_is_recorded_and_changes_no_case(category, people):
    services.certify(curator=superuser_(), reviewer=people["bob"], category=category, reason="trained")
    case = decided(category, people["ann"], label=FIRST_SAYS)
    before = frozen(case)
    task = services.submit_second_review(task=task_of(case), user=people["bob"], output={"label": FIRST_SAYS})
    assert (task.status, task.agreed, task.second_reviewer) == ("agreed", True, people["bob"])
    second = task.second_label
    assert second is not None
    assert (second.source, second.label, second.reviewer, second.decision) == ("double_review", FIRST_SAYS,
                                                                             people["bob"], None)  # fmt: skip
    assert (second.certified, second.passed_gate, second.superseded) == (True, True, True)
    first = Label.objects.get(pk=task.first_label_id)
    assert (first.superseded, first.passed_gate) == (False, False)  # ann is not certified: the gate is hers
    assert list(Label.objects.filter(case=case).current()) == [first]
    assert frozen(case) == before
    event = AuditEvent.objects.get(kind=AuditKind.CASE_DOUBLE_REVIEWED)
    assert (event.case_id, event.payload["agreed"], event.actor_username) == (case.pk, True, people["bob"].username)
    with pytest.raises(Conflict, match="already done"):
        services.submit_second_review(task=task, user=people["cat"], output={"label": "y"})


def test_a_disagreement_goes_to_adjudication_and_its_label_supersedes_both(category, people):
    root = superuser_()
    for name in ("ann", "eve"):
        services.certify(curator=root, reviewer=people[name], category=category, reason="trained")
    case = decided(category, people["ann"], label=FIRST_SAYS)
    before = frozen(case)
    first = Label.objects.get(case=case)
    assert first.passed_gate  # ann is certified

    task = services.submit_second_review(task=task_of(case), user=people["bob"], output={"label": "wombat"})
    assert (task.status, task.agreed, task.adjudication_queue) == ("adjudication", False, queue("expert"))
    first.refresh_from_db()
    assert (first.passed_gate, first.superseded) == (False, False)  # an unresolved disagreement hangs on it
    assert DoubleReview.objects.for_worker(people["eve"], {queue("expert").pk}).get() == task
    assert not DoubleReview.objects.for_worker(people["cat"], {queue("quick").pk, queue("full").pk}).exists()

    # The adjudicator's page shows what the pair said (the third person decides between them).
    html = login(people["eve"]).get(reverse("admin:reviews_work_double_task", args=[task.pk])).content.decode()
    assert FIRST_SAYS in html and "wombat" in html and MODEL_SAYS in html

    task = services.adjudicate(task=task, user=people["eve"], output={"label": "wombat"})
    adjudicated = task.adjudicated_label
    assert adjudicated is not None
    assert (task.status, task.adjudicator) == ("adjudicated", people["eve"])
    assert (adjudicated.source, adjudicated.label, adjudicated.passed_gate, adjudicated.superseded) == (
        "adjudication",
        "wombat",
        True,
        False,
    )
    assert list(Label.objects.filter(case=case).current()) == [adjudicated]
    assert set(Label.objects.filter(case=case, superseded=True).values_list("source", flat=True)) == {
        "correct",
        "double_review",
    }
    assert frozen(case) == before  # the case did what it did: only its label changed
    assert AuditEvent.objects.filter(kind=AuditKind.CASE_ADJUDICATED, case_id=case.pk).count() == 1


def test_an_uncertified_adjudicator_supersedes_without_passing_the_gate(category, people):
    task = task_of(decided(category, people["ann"], label=FIRST_SAYS))
    services.submit_second_review(task=task, user=people["bob"], output={"label": "wombat"})
    task = services.adjudicate(task=task, user=people["eve"], output={"label": FIRST_SAYS})
    assert task.adjudicated_label is not None
    assert (task.adjudicated_label.superseded, task.adjudicated_label.passed_gate) == (False, False)


def test_the_adjudicator_is_never_one_of_the_pair(category, people):
    for name in ("ann", "bob"):
        grant_queue(people[name], queue("expert"))
        people[name] = fresh(people[name])
    task = task_of(decided(category, people["ann"], label=FIRST_SAYS))
    services.submit_second_review(task=task, user=people["bob"], output={"label": "wombat"})
    with pytest.raises(PermissionDenied, match="first verdict"):
        services.adjudicate(task=task, user=people["ann"], output={"label": "x"})
    with pytest.raises(PermissionDenied, match="second verdict"):
        services.adjudicate(task=task, user=people["bob"], output={"label": "x"})
    with pytest.raises(Conflict, match="waits for adjudication"):
        services.submit_second_review(task=task, user=people["eve"], output={"label": "x"})


def test_a_verdict_without_a_label_is_refused_naming_the_output(category, people):
    task = task_of(decided(category, people["ann"]))
    with pytest.raises(ValidationError) as refused:
        services.submit_second_review(task=task, user=people["bob"], output={"label": "  "})
    assert "output" in refused.value.message_dict
    task.refresh_from_db()
    assert task.status == "second_review" and not Label.objects.filter(source="double_review").exists()


def test_only_one_of_two_people_claiming_the_same_task_gets_it(category, people):
    task = task_of(decided(category, people["ann"]))
    services.claim_double_review(task=task, user=people["bob"])
    with pytest.raises(Conflict, match="claimed by bob"):
        services.claim_double_review(task=task, user=people["cat"])
    with pytest.raises(Conflict, match="claimed by bob"):
        services.submit_second_review(task=task, user=people["cat"], output={"label": "x"})
    task.refresh_from_db()
    assert (task.claimed_by, task.second_reviewer) == (people["bob"], None)


# --- the workplace ---


def superuser_() -> User:
    return User.objects.get_or_create(username="root", defaults={"is_superuser": True, "is_staff": True})[0]


def test_a_second_reviewer_works_the_task_from_my_queues(category, people):
    case = decided(category, people["ann"], label=FIRST_SAYS)
    task = task_of(case)
    client = login(people["bob"])
    home = client.get(reverse("admin:reviews_work")).content.decode()
    assert "Second reviews: 1 waiting for you" in home
    listing = client.get(reverse("admin:reviews_work_double")).content.decode()
    assert reverse("admin:reviews_work_double_task", args=[task.pk]) in listing

    url = reverse("admin:reviews_work_double_task", args=[task.pk])
    assert client.post(url, {"action": "claim"}).status_code == 302
    task.refresh_from_db()
    assert task.claimed_by == people["bob"]
    assert login(people["cat"]).post(url, {"action": "submit", "label": "x"}).status_code == 302
    task.refresh_from_db()
    assert task.status == "second_review"  # cat was refused: bob holds it

    response = client.post(url, {"action": "submit", "label": "wombat", "text": "my own draft"}, follow=True)
    assert "it goes to adjudication in dbl-expert" in response.content.decode()
    task.refresh_from_db()
    assert (task.status, task.second_reviewer, task.claimed_by) == ("adjudication", people["bob"], None)
    assert task.second_label is not None and task.second_label.output == {"label": "wombat", "text": "my own draft"}
    assert "Second reviews:" not in client.get(reverse("admin:reviews_work")).content.decode()


def test_an_empty_label_in_the_workplace_is_refused_with_a_message(category, people):
    task = task_of(decided(category, people["ann"]))
    url = reverse("admin:reviews_work_double_task", args=[task.pk])
    response = login(people["bob"]).post(url, {"action": "submit", "label": ""}, follow=True)
    assert "non-empty `label`" in response.content.decode()
    task.refresh_from_db()
    assert task.status == "second_review"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_of_one_task_give_it_to_exactly_one_person(make_user):
    category = make_category("race", auto_threshold=0.9, review_threshold=0.6, double_review_rate=1.0)
    quick = Queue.objects.get(slug="race-quick")
    users = []
    for i in range(6):
        user = make_user(f"r{i}", roles=["Reviewer"])
        grant_queue(user, quick)
        users.append(User.objects.get(pk=user.pk))
    case = make_case(category, confidence=0.8)
    services.decide(case=case, user=users[0], action="approve")
    task = DoubleReview.objects.get(case=case)
    barrier = threading.Barrier(5)
    outcomes: list[str] = []

    def claim(user: User) -> None:
        try:
            barrier.wait(timeout=10)
            services.claim_double_review(task=task.pk, user=user)
            outcomes.append("claimed")
        except Conflict:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(user,)) for user in users[1:]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["claimed"] + ["refused"] * 4
    task.refresh_from_db()
    assert task.claimed_by in users[1:]
